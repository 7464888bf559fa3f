"""`replay` gives the same bytes whichever way it reads and replays.

The reference is the way replay worked before its fast paths, written out here: the general
JSON reader (`JsonStream` with its JSON Lines fast path off), each record through `records`
and the decoders, then the replay loop with one `ingest` per event and one `evaluate` and
`drain` per instant. Against it: the command without workers (orjson for JSON Lines, the
replay loop that drains only when there can be decisions), and with worker processes (blocks
of lines parsed and decoded elsewhere, the general path from the first block that is not JSON
Lines, the replay under way while files are read, started over if the archive turns out to be
out of order). Inputs: the sample set (bad records, every envelope, pretty-printed JSON), a
generated two days with pauses, auto-resumes, SES's own pauses and resumes, would_pause,
warnings that clear and duplicates; the same as JSON Lines with broken and odd lines; a
truncated gzip; files out of time order; a shuffled month.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gzip
import io
import json
import random
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_replay import make_month, sqs_dump

from monitor import replay
from monitor.core.decode import DecodeError
from monitor.core.decode.envelope import decode_body, decode_object
from monitor.core.engine import MessageResult
from monitor.core.events import Event
from monitor.core.state import Decision
from monitor.core.windows import OUTCOME_SLOTS, SLOTS
from monitor.replay import cli, reading, replayer, report, workers
from monitor.replay.replayer import Replayer
from monitor.rulesfile import load_rules_dir, write_rules_dir
from monitor.sandbox.traffic import TenantProfile, Traffic, sns

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "tests" / "data" / "samples"
START = 1_717_200_000.0  # 2024-06-01T00:00:00Z
HOUR = 3600.0
RULES = """\
policies:
  small:
    window: 24h
    min_volume: 30
    email:
      bounce:    {warn: 0.025, pause: 0.05}
      complaint: {warn: 0.0005, pause: 0.001}
    sms:
      failure:   {warn: 0.10, pause: 0.20}
      opt_out:   {warn: 0.01, pause: 0.02}
  auto:
    window: 6h
    min_volume: 20
    email:
      bounce:    {warn: 0.03, pause: 0.06}
    auto_resume: 2h
    actions: [ses_tenant]
  watch:
    window: 12h
    min_volume: 20
    email:
      bounce:    {warn: 0.02, pause: 0.04}
      complaint: {warn: 0.001, pause: 0.002}
    actions: []
default_policy: small
tenants:
  "auto-*": {policy: auto}
  "watch-*": {policy: watch}
"""


@pytest.fixture(scope="module")
def rules_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_rules_dir(tmp_path_factory.mktemp("rules"), {"test.yaml": RULES})


# -- the reference -----------------------------------------------------------------------------


def reference_read(r: Replayer, path: Path) -> str | None:
    """`Replayer.read_file` as it was."""
    r.stats.files += 1
    try:
        with reading.open_text(path) as f:
            stream = reading.JsonStream(f.read, fast_lines=False)
            for value in stream:
                for rec in reading.records(value):
                    r.stats.records += 1
                    if isinstance(rec, DecodeError):
                        decoded: list[Any] | DecodeError = rec
                    elif isinstance(rec, str):
                        decoded = decode_body(rec)
                    else:
                        decoded = decode_object(rec)
                    if isinstance(decoded, DecodeError):
                        r.stats.undecodable[decoded.reason.value] += 1
                    else:
                        r.events.extend(decoded)
    except (OSError, EOFError, zlib.error, UnicodeError) as e:
        r.stats.unreadable_files += 1
        return f"replay: {path}: cannot read ({reading.why(e)}); records before the problem kept"
    if stream.not_json:
        r.stats.skipped_files += 1
        return None
    if stream.errors:
        (line, col), more = stream.errors[0], len(stream.errors) - 1
        return (
            f"replay: {path}:{line}: invalid JSON at column {col}"
            + (f" (and {more} more records)" if more else "")
            + "; skipped to the next record"
        )
    return None


def reference_run(r: Replayer) -> None:
    """`Replayer.run` as it was: per instant, each event ingested alone, then one evaluate
    and one drain; peaks sampled; a tick every TICK_S of event time; prunes."""
    engine = r.engine
    events = sorted(r.events, key=lambda e: e.time)
    r.stats.events = n = len(events)
    last_tick = last_prune = events[0].time if events else 0.0
    i = 0
    while i < n:
        now = events[i].time
        j = i + 1
        while j < n and events[j].time == now:
            j += 1
        if now - last_tick >= replayer.TICK_S:
            if engine.tick(now):
                r._emit(sorted(engine.drain().decisions, key=lambda d: (d.tenant, d.channel)))
            last_tick = now
        touched: dict[tuple[str, Any], None] = {}
        for ev in events[i:j]:
            result = engine.ingest((ev,), now, now)
            if result is MessageResult.DUPLICATE:
                r.stats.duplicates += 1
            elif result is MessageResult.LATE:
                r.stats.late += 1
            elif isinstance(ev, Event):
                tenant = engine.resolver.resolve(ev.hints)
                rep = r._report(tenant)
                rep.events += 1
                slots = OUTCOME_SLOTS.get(ev.outcome)
                if slots:
                    totals = rep.totals.setdefault(ev.channel, [0] * SLOTS)
                    for s in slots:
                        totals[s] += ev.count
                    touched[(tenant, ev.channel)] = None
        engine.evaluate(now)
        r._emit(engine.drain().decisions)
        for tenant, channel in touched:
            r._sample(tenant, channel, now)
        if now - last_prune >= r.rules.max_window_s:
            engine.prune(now)
            last_prune = now
        i = j


def reference(
    monkeypatch: pytest.MonkeyPatch, rules_dir: Path, paths: list[Path]
) -> tuple[str, str]:
    """(stdout, stderr) of `replay --json` as it was."""
    out, err = io.StringIO(), io.StringIO()

    def emit(d: Decision) -> None:
        out.write(report.decision_line(d) + "\n")

    with monkeypatch.context() as m:
        m.setattr(reading, "TAIL_CHARS", -1)  # the json module always given the whole buffer
        r = Replayer(load_rules_dir(rules_dir), on_decision=emit)
        files, missing = reading.expand([str(p) for p in paths])
        assert not missing
        for f in files:
            warning = reference_read(r, f)
            if warning:
                err.write(warning + "\n")
        assert r.stats.records
        reference_run(r)
    rows = r.tenant_rows()
    for row in rows:
        out.write(json.dumps(row) + "\n")
    err.write(r.stats.line(len(rows)) + "\n")
    return out.getvalue(), err.getvalue()


def command(rules_dir: Path, paths: list[Path], *args: str) -> tuple[str, str]:
    """(stdout, stderr) of `replay --json`, exit 0."""
    parser = argparse.ArgumentParser(prog="reputation-monitor")
    replay.add_parser(parser.add_subparsers(dest="command", required=True))
    ns = parser.parse_args(["replay", "--json", "--rules", str(rules_dir), *args, *map(str, paths)])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = ns.func(ns)
    assert code == 0, err.getvalue()
    return out.getvalue(), err.getvalue()


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Blocks of a few lines, frequent releases with little slack: every path of the worker
    reader and of the early replay is taken on small inputs. Yields the events released."""
    monkeypatch.setattr(reading, "CHUNK_CHARS", 4096)
    monkeypatch.setattr(replayer, "RELEASE_EVERY", 50)
    monkeypatch.setattr(replayer, "MIN_SLACK_S", 60.0)
    released: list[int] = []
    feed = Replayer._feed

    def spy(self: Replayer, events: list[Any]) -> None:
        if self._speculation is not None:
            released.append(len(events))
        feed(self, events)

    monkeypatch.setattr(Replayer, "_feed", spy)
    yield released


def check_all_paths(
    monkeypatch: pytest.MonkeyPatch,
    rules_dir: Path,
    paths: list[Path],
    released: list[int],
    *,
    early: bool | None = None,
) -> str:
    """The command without and with workers gives the reference's bytes; returns stdout.
    `early`: whether events must (or must not) have been replayed while reading."""
    expected = reference(monkeypatch, rules_dir, paths)
    assert command(rules_dir, paths, "--workers", "0") == expected
    released.clear()
    assert command(rules_dir, paths, "--workers", "2") == expected
    if early is not None:
        assert bool(released) is early
    return expected[0]


# -- inputs ------------------------------------------------------------------------------------


def tenant_status(t: float, tenant: str, enabled: bool) -> dict[str, Any]:
    """SES pausing or reinstating a tenant (EventBridge, as in samples/)."""
    name = "enabled-reinstated" if enabled else "disabled-aws"
    rec: dict[str, Any] = json.loads(
        (SAMPLES / f"ses-eventbridge-tenant-sending-{name}.json").read_text()
    )
    rec["id"] = f"{tenant}-{t}"
    rec["resources"] = [f"arn:aws:ses:us-east-1:111122223333:tenant/{tenant}/tn-{int(t)}"]
    stamp = datetime.fromtimestamp(t, UTC)
    rec["time"] = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    rec["detail"]["data"]["record"]["lastUpdatedTimestamp"] = [
        *stamp.timetuple()[:6],
        stamp.microsecond * 1000,
    ]
    return rec


def sms_record(rng: random.Random, t: float, tenant: str, failed: bool) -> dict[str, Any]:
    return {
        "eventType": "TEXT_BLOCKED" if failed else "TEXT_DELIVERED",
        "eventVersion": "1.0",
        "eventTimestamp": int(t * 1000),
        "isFinal": True,
        "messageId": f"sms-{rng.getrandbits(64):016x}",
        "messageStatus": "BLOCKED" if failed else "DELIVERED",
        "destinationPhoneNumber": f"+1425555{rng.randrange(10_000):04d}",
        "context": {"tenant": tenant},
    }


def two_days(seed: int = 5) -> list[dict[str, Any]]:
    """Two days of traffic, nearly in time order (as Firehose writes it): good tenants; `bad`
    pauses for good; `auto-bad` pauses and is resumed by the tick after 2 h, over and over;
    `watch-bad` has no actions (would_pause, warnings that clear); `ses-paused` is paused and
    reinstated by SES; `texter` sends SMS; some records arrive twice."""
    rng = random.Random(seed)
    profiles = [
        TenantProfile("good-a", bounce=0.003, complaint=0.0),
        TenantProfile("good-b", bounce=0.004, complaint=0.0, weight=0.5),
        TenantProfile("bad", bounce=0.02, complaint=0.0, weight=0.5),
        TenantProfile("auto-bad", bounce=0.05, complaint=0.0, weight=0.7),
        TenantProfile("watch-bad", bounce=0.03, complaint=0.0008, weight=0.7),
        TenantProfile("ses-paused", bounce=0.005, complaint=0.0, weight=0.3),
    ]
    traffic = Traffic(profiles, seed=seed)
    records: list[tuple[float, dict[str, Any]]] = []
    t = START
    while t < START + 48 * HOUR:
        t += rng.expovariate(1 / 40.0)
        if rng.random() < 0.15:
            records.append((t, sms_record(rng, t, "texter", rng.random() < 0.12)))
            continue
        mail = traffic.mail(round(t, 3))
        bad = mail.tenant.name == "bad" and t > START + 20 * HOUR
        for rec in traffic.records(mail, round(t, 3)):
            if bad and rec["eventType"] == "Delivery" and rng.random() < 0.1:
                bounce = copy.deepcopy(rec)  # a bounce instead, with the delivery's identity
                bounce["eventType"] = "Bounce"
                bounce["bounce"] = {
                    "bounceType": "Permanent",
                    "bounceSubType": "General",
                    "bouncedRecipients": [{"emailAddress": rec["delivery"]["recipients"][0]}],
                    "timestamp": bounce.pop("delivery")["timestamp"],
                }
                records.append((t, bounce))
            else:
                records.append((t, rec))
    for at, enabled in ((10, False), (13, True), (30, False), (31, True)):
        records.append((START + at * HOUR, tenant_status(START + at * HOUR, "ses-paused", enabled)))
    records.sort(key=lambda x: x[0])
    # Firehose's order is arrival order: a little behind event time now and then.
    for i in range(0, len(records) - 5, 7):
        j = i + rng.randrange(1, 5)
        records[i], records[j] = records[j], records[i]
    out = [rec for _, rec in records]
    for _ in range(len(out) // 50):  # redelivered, a little later
        i = rng.randrange(len(out) - 20)
        out.insert(i + rng.randrange(1, 20), out[i])
    return out


def jsonl(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)


def messy_lines(records: list[dict[str, Any]]) -> str:
    """The records as JSON Lines, with everything else a line can be."""
    lines = [json.dumps(r, separators=(",", ":")) for r in records]
    n = len(lines)
    odd = {
        n // 9: "",  # blank lines
        n // 9 + 1: "   \t ",
        n // 8: lines[n // 8] + "\r",  # CRLF
        n // 7: "  " + lines[n // 7],  # leading whitespace
        n // 6: '{"eventType": "Send", "mail": {"broken',  # broken: resync at the next line
        n // 5: "[1, 2, 3]",  # not an object
        n // 4: lines[n // 4] + lines[n // 4 + 1],  # two records on one line
        n // 3: json.dumps(records[n // 3], indent=2),  # pretty-printed
        n // 2: lines[n // 2][:-1] + ',"extra":12345678901234567890123456}',  # a big integer
        n // 2 + 3: json.dumps({"Messages": [{"Body": sns(records[n // 2 + 3])}]}),  # SQS dump
        n // 2 + 5: json.dumps(json.dumps(records[n // 2 + 5])),  # an SQS body (a string)
        n // 2 + 7: '{"deep": ' + "[" * 600 + "]" * 600 + "}",
        n // 2 + 9: '{"eventType": NaN}',  # the json module reads it, orjson does not
    }
    out = [odd.get(i, line) for i, line in enumerate(lines)]
    return "\ufeff" + "\n".join(out) + "\n"


# -- tests ---------------------------------------------------------------------------------------


def test_the_sample_set(
    monkeypatch: pytest.MonkeyPatch, rules_dir: Path, small_blocks: list[int], tmp_path: Path
) -> None:
    lines = []
    for p in sorted(SAMPLES.glob("*.json")):
        try:
            lines.append(json.dumps(json.loads(p.read_text())))
        except ValueError:
            lines.append(p.read_text().replace("\n", " "))  # broken: as one line
    (tmp_path / "b.jsonl").write_text("\n".join(lines) + "\n")
    out = check_all_paths(monkeypatch, rules_dir, [SAMPLES, tmp_path], small_blocks)
    assert '"type": "tenant"' in out


def test_two_days_as_gzip_json_lines(
    monkeypatch: pytest.MonkeyPatch, rules_dir: Path, small_blocks: list[int], tmp_path: Path
) -> None:
    path = tmp_path / "events.jsonl.gz"
    path.write_bytes(gzip.compress(jsonl(two_days()).encode(), compresslevel=1))
    out = check_all_paths(monkeypatch, rules_dir, [path], small_blocks, early=True)
    lines = [json.loads(line) for line in out.splitlines()]
    kinds = {(d["tenant"], d["decision"]) for d in lines if d["type"] == "decision"}
    for expected in [
        ("bad", "pause"),
        ("auto-bad", "pause"),
        ("auto-bad", "resume"),
        ("watch-bad", "would_pause"),
        ("ses-paused", "pause"),
        ("ses-paused", "resume"),
    ]:
        assert expected in kinds, (expected, sorted(kinds))
    assert any(d == "clear" for _, d in kinds) and any(d == "warn" for _, d in kinds)


def test_odd_lines_among_json_lines(
    monkeypatch: pytest.MonkeyPatch, rules_dir: Path, small_blocks: list[int], tmp_path: Path
) -> None:
    records = two_days(seed=6)
    messy = tmp_path / "messy.jsonl"
    messy.write_text(messy_lines(records), encoding="utf-8")
    bad_utf8 = tmp_path / "bad-utf8.jsonl"
    data = jsonl(records[:2000]).encode()
    bad_utf8.write_bytes(data[:50_000] + b'{"a": "\xff"}\n' + data[50_000:])
    check_all_paths(monkeypatch, rules_dir, [messy], small_blocks)
    check_all_paths(monkeypatch, rules_dir, [bad_utf8], small_blocks)


def test_a_truncated_gzip(
    monkeypatch: pytest.MonkeyPatch, rules_dir: Path, small_blocks: list[int], tmp_path: Path
) -> None:
    data = gzip.compress(jsonl(two_days()).encode(), compresslevel=1)
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) * 2 // 3])
    out = check_all_paths(monkeypatch, rules_dir, [path], small_blocks)
    assert out


def test_files_out_of_time_order_and_a_shuffled_month(
    monkeypatch: pytest.MonkeyPatch, rules_dir: Path, small_blocks: list[int], tmp_path: Path
) -> None:
    records = two_days(seed=7)
    d = tmp_path / "by-name"
    d.mkdir()
    half = len(records) // 2
    (d / "1.jsonl").write_text(jsonl(records[half:]))  # the second day first
    (d / "2.jsonl").write_text(jsonl(records[:half]))
    check_all_paths(monkeypatch, rules_dir, [d], small_blocks)
    month = tmp_path / "month.jsonl"
    month.write_text(jsonl(make_month().records))
    check_all_paths(monkeypatch, rules_dir, [month], small_blocks, early=False)


def test_mixed_formats_and_duplicates_across_files(
    monkeypatch: pytest.MonkeyPatch, rules_dir: Path, small_blocks: list[int], tmp_path: Path
) -> None:
    records = two_days(seed=8)[:3000]
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(jsonl(records[:1500]).encode()))
    (tmp_path / "b-firehose").write_text("".join(json.dumps(r) for r in records[1000:2000]))
    (tmp_path / "c.json").write_text(json.dumps(records[1800:2500], indent=1))
    (tmp_path / "d-sqs.json").write_text(sqs_dump([sns(r) for r in records[2400:]]))
    (tmp_path / "e.jsonl").write_text(jsonl(records[2900:]) + "not json\n")
    (tmp_path / "f.txt").write_text("# notes\n")
    check_all_paths(monkeypatch, rules_dir, [tmp_path], small_blocks)


def test_decoders_read_an_integer_beyond_64_bits_as_they_read_its_float() -> None:
    """The fast paths parse JSON Lines with orjson, which reads an integer beyond 64 bits as
    the nearest float, where the general path's json module reads an int: the output is the
    same because the decoders read both alike. Each value of each sample record (and the
    record itself) is replaced in turn by such an integer and decoded both ways."""
    mark = "\x00big\x00"
    cases = 0
    for sample_path in sorted(SAMPLES.glob("*.json")):
        try:
            rec = json.loads(sample_path.read_text())
        except ValueError:
            continue  # bad-truncated.json
        for path in value_paths(rec):
            for big in ("123456789012345678901234567890", "-98765432109876543210"):
                text = json.dumps(replace_at(rec, path, mark)).replace(json.dumps(mark), big)
                by_orjson, by_json = reading.Decoded(), reading.Decoded()
                by_orjson.add_value(orjson.loads(text))
                by_json.add_value(json.loads(text))
                assert (by_orjson.undecodable, by_orjson.events) == (
                    by_json.undecodable,
                    by_json.events,
                ), (sample_path.name, path, big)
                cases += 1
    assert cases > 1000


def value_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict | list):
        for k, v in value.items() if isinstance(value, dict) else enumerate(value):
            yield from value_paths(v, (*path, k))


def replace_at(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    out = copy.deepcopy(value)
    parent = out
    for k in path[:-1]:
        parent = parent[k]
    parent[path[-1]] = new
    return out


def test_workers_by_default_only_for_enough_input(tmp_path: Path) -> None:
    small = tmp_path / "small.jsonl"
    small.write_text("{}\n")
    assert cli.default_workers([small]) == 0
    with small.open("r+b") as f:
        f.truncate(workers.PARALLEL_MIN_BYTES)
    assert cli.default_workers([small]) in range(1024)

"""`replay`: every input format, a synthetic month, determinism, and the command's exit codes."""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import os
import random
import subprocess
import sys
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from monitor import replay
from monitor.replay import reading, report
from monitor.replay.replayer import Replayer
from monitor.rulesfile import load_rules_dir, write_rules_dir
from monitor.sandbox.traffic import TenantProfile, Traffic, iso, sns

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "tests" / "data" / "samples"
DAY = 86_400.0
START = 1_717_200_000.0  # 2024-06-01T00:00:00Z
GRID_S = 10  # every mail at its own instant, ≥ one tick apart
MIN_VOLUME = 30
TEST_RULES = f"""\
policies:
  small:                      # the standard thresholds at a volume a test can reach
    window: 24h
    min_volume: {MIN_VOLUME}
    email:
      bounce:    {{warn: 0.025, pause: 0.05}}
      complaint: {{warn: 0.0005, pause: 0.001}}
    sms:
      failure:   {{warn: 0.10, pause: 0.20}}
      opt_out:   {{warn: 0.01, pause: 0.02}}
default_policy: small
"""


@pytest.fixture(scope="module")
def rules_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_rules_dir(tmp_path_factory.mktemp("rules"), {"test.yaml": TEST_RULES})


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The command as `__main__` runs it, through the parser `add_parser` builds."""
    parser = argparse.ArgumentParser(prog="reputation-monitor")
    replay.add_parser(parser.add_subparsers(dest="command", required=True))
    ns = parser.parse_args(["replay", *args])
    code: int = ns.func(ns)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


# -- a synthetic month -------------------------------------------------------------------------


def sms_record(rng: random.Random, t: float, tenant: str, failed: bool) -> dict[str, Any]:
    """An End User Messaging SMS event-destination record (see tests/data/samples/sms-*)."""
    return {
        "eventType": "TEXT_BLOCKED" if failed else "TEXT_DELIVERED",
        "eventVersion": "1.0",
        "eventTimestamp": int(t * 1000),
        "isFinal": True,
        "originationPhoneNumber": "+12065550123",
        "destinationPhoneNumber": f"+1425555{rng.randrange(10_000):04d}",
        "messageId": str(uuid.UUID(int=rng.getrandbits(128))),
        "messageStatus": "BLOCKED" if failed else "DELIVERED",
        "messageStatusDescription": "blocked by the handset" if failed else "accepted",
        "configurationSetName": f"{tenant}-sms",
        "context": {"tenant": tenant},
    }


@dataclass
class Month:
    records: list[dict[str, Any]]  # shuffled, as archives interleave them
    expected_pause: float  # the first instant bad's 24 h bounce rate is ≥ 5 % at ≥ MIN_VOLUME
    sms_final: int


def make_month(seed: int = 11) -> Month:
    """Three good SES tenants, one SMS tenant, and `bad`, whose bounces jump in week 3."""
    rng = random.Random(seed)
    goods = [TenantProfile(f"good-{c}", bounce=0.002, complaint=0.0) for c in "abc"]
    bad_early = TenantProfile("bad", bounce=0.004, complaint=0.0)
    bad_late = TenantProfile("bad", bounce=0.15, complaint=0.0)
    traffic = Traffic([*goods, bad_early], seed=seed)
    tenants = [*goods, bad_early, "texter"]
    instants = sorted(rng.sample(range(int(30 * DAY / GRID_S)), 4000))
    records: list[dict[str, Any]] = []
    bad_counts: list[tuple[float, int, int]] = []  # (time, sent, permanent bounces)
    sms_final = 0
    for k in instants:
        t = START + k * GRID_S
        who = rng.choice(tenants)
        if who == "texter":
            records.append(sms_record(rng, t, "texter", rng.random() < 0.05))
            sms_final += 1
            continue
        assert isinstance(who, TenantProfile)
        if who is bad_early and t >= START + 14 * DAY:
            who = bad_late
        mail = traffic.mail(t, who)
        recs = traffic.records(mail, t)
        records.extend(recs)
        if who.name == "bad":
            bounced = sum(
                len(r["bounce"]["bouncedRecipients"])
                for r in recs
                if r["eventType"] == "Bounce" and r["bounce"]["bounceType"] == "Permanent"
            )
            bad_counts.append((t, len(mail.recipients), bounced))
    rng.shuffle(records)
    return Month(
        records, reference_pause(bad_counts, [START + k * GRID_S for k in instants]), sms_final
    )


def reference_pause(counts: list[tuple[float, int, int]], instants: list[float]) -> float:
    """The windows' own rule, written out: 96 buckets of 15 min; at `now` the rate covers the
    buckets from the one holding now − 24 h."""
    width = DAY / 96
    buckets: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    pending = iter(counts)
    nxt = next(pending, None)
    for now in instants:
        while nxt is not None and nxt[0] <= now:
            b = buckets[int(nxt[0] // width)]
            b[0] += nxt[1]
            b[1] += nxt[2]
            nxt = next(pending, None)
        first = int((now - DAY) // width)
        sent = sum(v[0] for i, v in buckets.items() if i >= first)
        bounced = sum(v[1] for i, v in buckets.items() if i >= first)
        if sent >= MIN_VOLUME and bounced / sent >= 0.05:
            return now
    raise AssertionError("the bad tenant never crosses 5 %")


def sqs_dump(bodies: list[str]) -> str:
    """`aws sqs receive-message` output, ten messages a call, appended to one file."""
    out = []
    for i in range(0, len(bodies), 10):
        msgs = [
            {
                "MessageId": str(uuid.uuid4()),
                "ReceiptHandle": "AQEB" + uuid.uuid4().hex,
                "MD5OfBody": "0" * 32,
                "Body": b,
            }
            for b in bodies[i : i + 10]
        ]
        out.append(json.dumps({"Messages": msgs}, indent=4))
    return "\n".join(out) + "\n"


@dataclass
class MonthFiles:
    month: Month
    files: dict[str, Path]  # encoding → file
    outputs: dict[str, tuple[int, str, str]]  # encoding → replay --json (code, out, err)


def run_quiet(*args: str) -> tuple[int, str, str]:
    """`run` for module fixtures, where capsys is not available."""
    out, err = io.StringIO(), io.StringIO()
    parser = argparse.ArgumentParser(prog="reputation-monitor")
    replay.add_parser(parser.add_subparsers(dest="command", required=True))
    ns = parser.parse_args(["replay", *args])
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code: int = ns.func(ns)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def month_files(tmp_path_factory: pytest.TempPathFactory, rules_dir: Path) -> MonthFiles:
    """One month in four encodings, each replayed once with --json."""
    d = tmp_path_factory.mktemp("month")
    month = make_month()
    recs = month.records
    files = {
        "gz": d / "events.jsonl.gz",
        "firehose": d / "ses-events-1-2024-06-01-00-00-00-0a1b2c3d",  # no extension
        "array": d / "events.json",
        "sqs": d / "sqs-dump.json",
    }
    lines_ = "".join(json.dumps(r) + "\n" for r in recs)
    files["gz"].write_bytes(gzip.compress(lines_.encode(), compresslevel=1))
    files["firehose"].write_text("".join(json.dumps(r, separators=(",", ":")) for r in recs))
    files["array"].write_text(json.dumps(recs))
    files["sqs"].write_text(sqs_dump([sns(r) for r in recs]))
    outputs = {k: run_quiet("--json", "--rules", str(rules_dir), str(f)) for k, f in files.items()}
    return MonthFiles(month, files, outputs)


def decisions(out: str) -> list[dict[str, Any]]:
    return [e for e in lines(out) if e["type"] == "decision"]


def tenants(out: str) -> dict[str, dict[str, Any]]:
    return {e["tenant"]: e for e in lines(out) if e["type"] == "tenant"}


def test_the_bad_tenant_is_paused_at_the_event_that_crosses_and_no_good_one_is(
    month_files: MonthFiles,
) -> None:
    code, out, err = month_files.outputs["gz"]
    assert code == 0, err
    pauses = [d for d in decisions(out) if d["decision"] in ("pause", "would_pause")]
    assert [(d["tenant"], d["channel"], d["actor"]) for d in pauses] == [("bad", "email", "policy")]
    [pause] = pauses
    assert pause["time"] == month_files.month.expected_pause
    assert START + 14 * DAY <= pause["time"] < START + 21 * DAY  # in week 3
    ev = pause["evidence"]
    assert ev["counts"]["sent"] >= MIN_VOLUME and ev["rates"]["email.bounce"] >= 0.05
    assert ev["policy"] == "small" and ev["window"] == "24h"
    assert pause["actions"] == [{"action": "ses_tenant", "result": "not_run"}]

    rows = tenants(out)
    assert sorted(rows) == ["bad", "good-a", "good-b", "good-c", "texter"]
    assert rows["bad"]["status"] == "paused" and rows["bad"]["paused_channels"] == ["email"]
    assert rows["bad"]["first_pause"] == pause["time"]
    assert rows["bad"]["peak_rates"]["email.bounce"] >= 0.05
    for name in ("good-a", "good-b", "good-c", "texter"):
        assert rows[name]["first_pause"] is None and rows[name]["status"] != "paused"
    assert rows["texter"]["volume"] == {"email": 0, "sms": month_files.month.sms_final}
    assert rows["texter"]["peak_rates"]["sms.failure"] is not None  # reached min_volume
    assert rows["good-a"]["volume"]["sms"] == 0 and rows["good-a"]["volume"]["email"] > 500
    assert f"{len(month_files.month.records)} records read" in err
    assert "0 duplicates, 0 late), 0 undecodable, 5 tenants" in err


def test_the_four_encodings_of_one_month_give_the_same_output(month_files: MonthFiles) -> None:
    outs = {k: v[1] for k, v in month_files.outputs.items()}
    assert decisions(outs["gz"])  # not vacuous
    assert outs["firehose"] == outs["gz"]
    assert outs["array"] == outs["gz"]
    assert outs["sqs"] == outs["gz"]


def test_same_input_same_bytes_every_time(
    capsys: pytest.CaptureFixture[str], rules_dir: Path, month_files: MonthFiles
) -> None:
    args = ("--rules", str(rules_dir), str(month_files.files["firehose"]))
    assert run(capsys, "--json", *args) == month_files.outputs["firehose"]

    # Another process, another hash seed: no set order leaks into the output.
    script = (
        "import argparse, sys\n"
        "from monitor import replay\n"
        "p = argparse.ArgumentParser()\n"
        "replay.add_parser(p.add_subparsers(dest='c', required=True))\n"
        "ns = p.parse_args(sys.argv[1:])\n"
        "sys.exit(ns.func(ns))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", script, "replay", "--json", *args],
        capture_output=True,
        text=True,
        env=os.environ
        | {"PYTHONHASHSEED": "1" if os.environ.get("PYTHONHASHSEED") != "1" else "2"},
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == month_files.outputs["firehose"][1]


def test_duplicates_across_files_count_once(
    capsys: pytest.CaptureFixture[str], rules_dir: Path, month_files: MonthFiles, tmp_path: Path
) -> None:
    both = tmp_path / "both"
    both.mkdir()
    (both / "a.jsonl.gz").write_bytes(month_files.files["gz"].read_bytes())
    (both / "b").write_bytes(month_files.files["firehose"].read_bytes())
    code, out, err = run(capsys, "--json", "--rules", str(rules_dir), str(both))
    assert code == 0
    assert out == month_files.outputs["gz"][1]
    events = len(month_files.month.records)  # one event per record here
    assert f"{2 * events} events ({events} duplicates, 0 late)" in err


def test_the_table(
    capsys: pytest.CaptureFixture[str], rules_dir: Path, month_files: MonthFiles
) -> None:
    args = ("--rules", str(rules_dir), str(month_files.files["array"]))
    code, out, _ = run(capsys, *args)
    assert code == 0
    assert run(capsys, *args) == (code, out, "")  # byte-identical again
    header, columns, *rows, summary = out.splitlines()
    assert header.startswith("# peak rates: highest over the moments the window held")
    assert columns.split() == list(report.TABLE_COLUMNS)
    by_tenant = {r.split()[0]: r.split() for r in rows}
    assert sorted(by_tenant) == ["bad", "good-a", "good-b", "good-c", "texter"]
    bad = by_tenant["bad"]
    assert bad[2] == "paused"
    assert bad[-1] == iso(month_files.month.expected_pause)[:19] + "Z"
    assert bad[4].endswith("%") and float(bad[4][:-1]) >= 5.0
    assert by_tenant["good-a"][-1] == "-"
    assert summary.startswith("replay: 1 files, ")


# -- each input format -------------------------------------------------------------------------


def sample(name: str) -> dict[str, Any]:
    rec: dict[str, Any] = json.loads((SAMPLES / name).read_text())
    return rec


SEND = sample("ses-event-send.json")
BOUNCE = sample("ses-event-bounce-permanent.json")
SMS = sample("sms-event-text-delivered.json")
BLOCKED = sample("sms-event-text-blocked.json")
FOUR = [SEND, BOUNCE, SMS, BLOCKED]


def read(rules_dir: Path, path: Path) -> Replayer:
    r = Replayer(load_rules_dir(rules_dir))
    assert r.read_file(path) is None
    return r


def compact(rec: dict[str, Any]) -> str:
    return json.dumps(rec, separators=(",", ":"))


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("pretty.json", "\n".join(json.dumps(r, indent=2) for r in FOUR)),  # as in samples/
        ("array.json", json.dumps(FOUR, indent=2)),
        ("lines.jsonl", "".join(compact(r) + "\n" for r in FOUR)),
        ("crlf.jsonl", "".join(compact(r) + "\r\n" for r in FOUR)),
        ("firehose-flat", "".join(compact(r) for r in FOUR)),
        ("firehose-lines", "".join(compact(r) + "\n" for r in FOUR)),
        ("sns-wrapped.jsonl", "".join(sns(r) + "\n" for r in FOUR)),
        ("sqs-dump.json", sqs_dump([sns(r) for r in FOUR])),
        ("bodies.jsonl", "".join(json.dumps(compact(r)) + "\n" for r in FOUR)),  # jq .Body
    ],
)
def test_each_format_reads_the_same_four_events(
    rules_dir: Path, tmp_path: Path, name: str, content: str
) -> None:
    path = tmp_path / name
    path.write_text("\ufeff" + content if name == "pretty.json" else content)
    r = read(rules_dir, path)
    assert r.stats.records == 4 and not r.stats.undecodable
    assert [(e.channel.value, e.outcome.value) for e in r.events] == [  # type: ignore[union-attr]
        ("email", "send"),
        ("email", "bounce_permanent"),
        ("sms", "sms_delivered"),
        ("sms", "sms_failed"),
    ]
    gz = tmp_path / (name + ".gz")
    gz.write_bytes(gzip.compress(content.encode()))
    assert [e.key for e in read(rules_dir, gz).events] == [e.key for e in r.events]


def test_a_record_split_across_read_chunks(
    rules_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reading, "CHUNK_CHARS", 7)  # every record straddles many chunks
    path = tmp_path / "firehose"
    path.write_text("".join(compact(r) for r in FOUR) + "\n" + json.dumps(FOUR))
    r = read(rules_dir, path)
    assert r.stats.records == 8 and not r.stats.undecodable


def test_undecodable_records_are_counted_by_reason_and_the_rest_is_read(
    capsys: pytest.CaptureFixture[str], rules_dir: Path, tmp_path: Path
) -> None:
    unknown = {"hello": "world"}
    no_mail = sample("bad-bounce-without-mail.json")
    flat = tmp_path / "flat"  # Firehose, no newlines: resumes at the next `}{`
    flat.write_text(compact(SEND) + compact(unknown) + '{"eventType": [1, 2' + "}" + compact(SMS))
    lined = tmp_path / "lined.jsonl"  # resumes at the next line
    lined.write_text(
        compact(BOUNCE) + "\nnot json at all\n" + compact(no_mail) + '\n{"a": \n' + compact(BLOCKED)
    )
    array = tmp_path / "array.json"  # resumes at the next element
    array.write_text(
        f"[{json.dumps(sample('ses-event-delivery.json'))}, "
        + '{"eventType": [1, 2}, '
        + f"{json.dumps(sample('sms-event-text-spam.json'))}]"
    )
    code, out, err = run(
        capsys, "--json", "--rules", str(rules_dir), str(flat), str(lined), str(array)
    )
    assert code == 0
    assert f"replay: {flat}:1: invalid JSON at column " in err
    assert f"replay: {lined}:2: invalid JSON at column 1 (and 1 more records)" in err
    assert f"replay: {array}:1: invalid JSON at column " in err
    summary = err.strip().splitlines()[-1]
    assert summary.startswith(
        "replay: 3 files, 12 records read, 6 events (0 duplicates, 0 late), "
        "6 undecodable (invalid_json 4, missing_field 1, unknown_shape 1), 1 tenants"
    )
    assert tenants(out)["acme"]["events"] == 6


def test_invalid_utf8_and_not_json_files(
    capsys: pytest.CaptureFixture[str], rules_dir: Path, tmp_path: Path
) -> None:
    d = tmp_path / "archive"
    (d / "2024" / "06").mkdir(parents=True)
    (d / "README.md").write_text("# what these files are\n")
    (d / "2024" / "06" / "x.jsonl").write_bytes(
        compact(SEND).encode() + b"\n" + compact(BOUNCE).encode().replace(b"General", b"Gen\xff")
    )
    (d / ".hidden.json").write_text(compact(SMS))
    code, _, err = run(capsys, "--json", "--rules", str(rules_dir), str(d))
    assert code == 0
    assert "2 files, 2 records read, 1 events" in err
    assert "1 undecodable (invalid_utf8 1)" in err and "1 files skipped (not JSON)" in err


# -- the command ---------------------------------------------------------------------------------


def test_broken_rules_exit_1_with_file_and_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "x.yaml").write_text("policies:\n  p: {email: {bounce: {warn: 0.2, pause: 0.1}}}\n")
    data = tmp_path / "e.json"
    data.write_text(compact(SEND))
    code, out, err = run(capsys, "--rules", str(rules), str(data))
    assert code == 1 and out == ""
    assert f"{rules}/x.yaml:2: policies.p.email.bounce: warn 0.2 is above pause 0.1" in err


def test_missing_path_or_nothing_to_read_exit_1(
    capsys: pytest.CaptureFixture[str], rules_dir: Path, tmp_path: Path
) -> None:
    code, out, err = run(capsys, "--rules", str(rules_dir), str(tmp_path / "nope"))
    assert (code, out) == (1, "")
    assert f"replay: {tmp_path / 'nope'}: no such file or directory" in err
    (tmp_path / "empty").mkdir()
    code, out, err = run(capsys, "--rules", str(rules_dir), str(tmp_path / "empty"))
    assert (code, out) == (1, "")
    assert "no records read" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        run(capsys)  # no PATH
    assert e.value.code == 2


def test_default_rules_dir_is_rules(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    data = tmp_path / "e.jsonl"
    data.write_text("".join(compact(r) + "\n" for r in FOUR))
    code, out, _ = run(capsys, "--json", str(data))
    assert code == 0
    assert tenants(out)["acme"]["policy"] == "standard"

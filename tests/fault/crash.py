"""Crash harness: the real daemon as a subprocess, SIGKILLed at random moments and restarted.

One trial: a known event set (SNS-wrapped SES records for five tenants, two of which cross the
pause threshold, about a tenth of the records sent twice, some of the copies through another
envelope) goes through a paced producer into a fresh moto queue while `python -m monitor run`
is started, killed with SIGKILL after a seeded random delay, and started again, until the event
set is consumed; a last run is left to finish and is stopped with SIGTERM. Every other kill
lands a random delay after the spawn (start-up included), the others a random delay after the
run logged `daemon_started` (mid-batch, mostly). Then:

* every tenant's window counts in the SQLite state, read back through `SqliteStore.load` and
  `Engine.restore` (what the next start would see), equal the counts computed from the event
  set, slot by slot; and the store holds one dedupe key per distinct record;
* the queue is empty (visible + in flight);
* the SES stand-in saw exactly one DISABLED call per crossing tenant and no call for the others;
  the audit log holds one pause per crossing tenant and no pending action. A second DISABLED
  call for a tenant with one pause decision, made by a run that re-ran pending actions at start,
  is the known outbox defect (a kill between SES applying a pause and the outbox recording it):
  it is reported apart (`TrialResult.resent`), not as a failure of the counts.

Used by `tests/fault/test_crash.py` (3 trials) and `bench/crash_trials.py` (20), and by the
SIGTERM test for its subprocess plumbing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiobotocore.session import get_session

from monitor.core.engine import Engine
from monitor.core.events import Channel
from monitor.core.windows import E_BOUNCE, E_BOUNCE_OTHER, E_COMPLAINT, E_DELIVERED, E_SENT
from monitor.rulesfile import load_rules_dir, write_rules_dir
from monitor.sandbox import Sandbox
from monitor.sandbox.moto_server import queue_depth
from monitor.sandbox.traffic import ACCOUNT, Mail, TenantProfile, Traffic, sns
from monitor.store.sqlite import SqliteStore

# The standard thresholds at a volume a test reaches (tests/conftest.py's TEST_RULES).
RULES = """\
policies:
  small:
    window: 24h
    min_volume: 60
    email:
      bounce:    {warn: 0.025, pause: 0.05}
      complaint: {warn: 0.0005, pause: 0.001}
default_policy: small
"""
MIN_VOLUME = 60
PAUSE_BOUNCE = 0.05
PAUSE_COMPLAINT = 0.001

# Short, so a message handed to a killed daemon (or to an abandoned long poll) comes back
# within the trial; long enough that a live daemon finishes a batch well inside it.
VISIBILITY_TIMEOUT_S = 3
QUEUE_DEPTH = 40  # the producer keeps at most this many visible messages (moto slows with depth)
PRODUCER_POLL_S = 0.05  # how often a blocked producer looks at the queue depth again
DEADLINE_POLL_S = 0.05  # how often a deadline wait looks again
KILL_AFTER_S = (0.3, 3.0)  # a kill lands this long after the spawn (start-up takes ~1.2 s)
SERVING_KILL_S = (0.0, 1.5)  # ... or this long after `daemon_started`
MAX_KILLS = 6
DRAIN_TIMEOUT_S = 60.0  # the last run empties the queue within this
SHUTDOWN_TIMEOUT_S = 10  # REPMON_SHUTDOWN_TIMEOUT of every run
POLLERS = 4

# window slot → the name used in expected counts
SLOTS = {
    "sent": E_SENT,
    "delivered": E_DELIVERED,
    "bounce": E_BOUNCE,
    "bounce_other": E_BOUNCE_OTHER,
    "complaint": E_COMPLAINT,
}
DETAIL_TYPES = {
    "Send": "Email Sent",
    "Delivery": "Email Delivered",
    "Bounce": "Email Bounced",
    "Complaint": "Email Complaint Received",
}
ENVELOPES = ("sns", "raw", "eventbridge")


# -- the event set -------------------------------------------------------------------------


@dataclass
class EventSet:
    bodies: list[str]  # SQS bodies in send order: every record once, plus the copies
    records: int  # distinct source records
    copies: Counter[str]  # extra copies by envelope
    expected: dict[str, dict[str, int]]  # tenant → slot name → count
    crossing: list[str]  # tenants whose final rates are at or above a pause threshold
    tenants: list[str]

    @property
    def duplicates(self) -> int:
        return sum(self.copies.values())


def record_identity(rec: dict[str, Any]) -> tuple[str, str, tuple[str, ...], str]:
    """The contract's identity of an SES record: message id, type, recipients, event time."""
    et = rec["eventType"]
    if et == "Send":
        rcpts, when = rec["mail"]["destination"], rec["mail"]["timestamp"]
    elif et == "Delivery":
        rcpts, when = rec["delivery"]["recipients"], rec["delivery"]["timestamp"]
    elif et == "Bounce":
        b = rec["bounce"]
        rcpts, when = [r["emailAddress"] for r in b["bouncedRecipients"]], b["timestamp"]
    elif et == "Complaint":
        c = rec["complaint"]
        rcpts, when = [r["emailAddress"] for r in c["complainedRecipients"]], c["timestamp"]
    else:
        raise ValueError(f"no identity for {et}")
    return rec["mail"]["messageId"], et, tuple(sorted(rcpts)), when


def count_record(rec: dict[str, Any], into: dict[str, int]) -> None:
    et = rec["eventType"]
    if et == "Send":
        into["sent"] += len(rec["mail"]["destination"])
    elif et == "Delivery":
        into["delivered"] += len(rec["delivery"]["recipients"])
    elif et == "Bounce":
        slot = "bounce" if rec["bounce"]["bounceType"] == "Permanent" else "bounce_other"
        into[slot] += len(rec["bounce"]["bouncedRecipients"])
    elif et == "Complaint":
        into["complaint"] += len(rec["complaint"]["complainedRecipients"])


def eventbridge(rec: dict[str, Any], rng: random.Random) -> str:
    """The record as an EventBridge `aws.ses` email event delivers it to an SQS target."""
    cs = rec["mail"]["tags"]["ses:configuration-set"][0]
    return json.dumps(
        {
            "version": "0",
            "id": str(uuid.UUID(int=rng.getrandbits(128))),
            "detail-type": DETAIL_TYPES[rec["eventType"]],
            "source": "aws.ses",
            "account": ACCOUNT,
            "time": rec["mail"]["timestamp"][:19] + "Z",
            "region": "us-east-1",
            "resources": [f"arn:aws:ses:us-east-1:{ACCOUNT}:configuration-set/{cs}"],
            "detail": rec,
        },
        separators=(",", ":"),
    )


def build_events(
    names: Sequence[str],
    *,
    seed: int,
    now: float,
    crossing: int = 2,
    good_mails: int = 15,
    crossing_sent: int = 80,
    copy_fraction: float = 0.1,
) -> EventSet:
    """SNS-wrapped SES traffic: the first `crossing` tenants bounce (and one complains) far
    above the pause thresholds; the others never bounce permanently or complain, so nothing
    in any processing order can pause them."""
    profiles = [
        TenantProfile(n, bounce=0.15, complaint=0.02 if i == 1 else 0.0, transient=0.0)
        if i < crossing
        else TenantProfile(n, bounce=0.0, complaint=0.0, transient=0.03)
        for i, n in enumerate(names)
    ]
    traffic = Traffic(profiles, seed=seed)
    rng = traffic.rng
    records: list[dict[str, Any]] = []
    for i, p in enumerate(profiles):
        sent = mails = 0
        while (sent < crossing_sent) if i < crossing else (mails < good_mails):
            mail = _mail(traffic, now, p)
            records.extend(traffic.records(mail, now))
            sent += len(mail.recipients)
            mails += 1

    expected: dict[str, dict[str, int]] = {n: dict.fromkeys(SLOTS, 0) for n in names}
    seen: set[tuple[str, str, tuple[str, ...], str]] = set()
    for rec in records:
        ident = record_identity(rec)
        if ident not in seen:  # the same record twice in the set counts once
            seen.add(ident)
            count_record(rec, expected[rec["mail"]["tags"]["tenant"][0]])
    crossers = [
        n
        for n, c in expected.items()
        if c["sent"] >= MIN_VOLUME
        and (
            c["bounce"] / c["sent"] >= PAUSE_BOUNCE or c["complaint"] / c["sent"] >= PAUSE_COMPLAINT
        )
    ]
    quiet = [n for n in names if n not in crossers]
    if crossers != list(names[:crossing]) or any(
        expected[n]["bounce"] or expected[n]["complaint"] for n in quiet
    ):
        raise AssertionError(f"seed {seed} does not give {crossing} clear crossings: {expected}")

    bodies = [sns(r) for r in records]
    rng.shuffle(bodies)
    copies: Counter[str] = Counter()
    for k, rec in enumerate(rng.sample(records, round(copy_fraction * len(records)))):
        envelope = ENVELOPES[k % len(ENVELOPES)]
        if envelope == "sns":  # a new SNS notification id: SNS delivered it twice
            body = sns(rec)
        elif envelope == "raw":
            body = json.dumps(rec, separators=(",", ":"))
        else:
            body = eventbridge(rec, rng)
        bodies.insert(rng.randrange(len(bodies) + 1), body)
        copies[envelope] += 1
    return EventSet(bodies, len(seen), copies, expected, crossers, list(names))


def _mail(traffic: Traffic, now: float, profile: TenantProfile) -> Mail:
    # Distinct recipients within a mail, so a record's recipient count is unambiguous.
    while True:
        mail = traffic.mail(now, profile)
        if len(set(mail.recipients)) == len(mail.recipients):
            return mail


# -- SQS -----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def sqs_client(sandbox: Sandbox) -> AsyncIterator[Any]:
    """An SQS client straight to moto (never through a fault proxy)."""
    env = sandbox.env()
    async with get_session().create_client(
        "sqs",
        region_name=sandbox.region,
        endpoint_url=sandbox.moto.url,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    ) as client:
        yield client


async def create_queue(
    sqs: Any, prefix: str, *, visibility_timeout: int = VISIBILITY_TIMEOUT_S
) -> str:
    url: str = (
        await sqs.create_queue(
            QueueName=f"{prefix}-{uuid.uuid4().hex[:8]}",
            Attributes={"VisibilityTimeout": str(visibility_timeout)},
        )
    )["QueueUrl"]
    return url


async def produce(
    sqs: Any,
    queue: str,
    bodies: Sequence[str],
    *,
    depth: int = QUEUE_DEPTH,
    interval: float = 0.0,
    timeout: float = 120,
) -> int:
    """Send in batches of ten, waiting (with a deadline) while `depth` messages are visible;
    `interval` paces the batches (a steady stream rather than a burst)."""
    deadline = time.monotonic() + timeout
    sent = 0
    for i in range(0, len(bodies), 10):
        if i and interval:
            await asyncio.sleep(interval)
        while await queue_depth(sqs, queue, visible_only=True) >= depth:
            if time.monotonic() > deadline:
                raise AssertionError(f"producer: queue stayed at ≥ {depth} for {timeout}s")
            await asyncio.sleep(PRODUCER_POLL_S)
        chunk = bodies[i : i + 10]
        resp = await sqs.send_message_batch(
            QueueUrl=queue,
            Entries=[{"Id": str(j), "MessageBody": b} for j, b in enumerate(chunk)],
        )
        if resp.get("Failed"):
            raise AssertionError(f"producer: send failed: {resp['Failed']}")
        sent += len(chunk)
    return sent


async def wait_empty(sqs: Any, queue: str, *, timeout: float = DRAIN_TIMEOUT_S) -> None:
    """Until no message is visible or in flight (in-flight copies handed to a killed daemon or
    an abandoned poll come back after the visibility timeout and are consumed too)."""
    deadline = time.monotonic() + timeout
    while (n := await queue_depth(sqs, queue)) != 0:
        if time.monotonic() > deadline:
            raise AssertionError(f"queue not empty after {timeout}s: {n} messages left")
        await asyncio.sleep(DEADLINE_POLL_S)


# -- the daemon as a subprocess ------------------------------------------------------------


def write_rules(workdir: Path) -> Path:
    return write_rules_dir(workdir / "rules", {"test.yaml": RULES})


def daemon_env(
    sandbox: Sandbox, *, queue: str, state: Path, rules_dir: Path, **settings: str
) -> dict[str, str]:
    """The process environment of `python -m monitor run` against the sandbox."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REPMON_", "AWS_"))}
    env |= sandbox.env()
    env |= {
        "REPMON_QUEUE_URLS": queue,
        "REPMON_STATE_URL": f"sqlite:///{state.resolve()}",
        "REPMON_RULES_DIR": str(rules_dir),
        "REPMON_HTTP_HOST": "127.0.0.1",
        # Port 0: the kernel picks a free one; `daemon_started` logs where it listens.
        "REPMON_HTTP_PORT": "0",
        "REPMON_LOG_FORMAT": "json",
        "REPMON_LOG_LEVEL": "info",
        "REPMON_POLLERS": str(POLLERS),
        "REPMON_SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT_S),
    }
    env |= {f"REPMON_{k.upper()}": v for k, v in settings.items()}
    return env


class DaemonProcess:
    """One `python -m monitor run`; its JSON log lines (stderr) go to a file."""

    def __init__(self, proc: asyncio.subprocess.Process, log_path: Path) -> None:
        self.proc = proc
        self.log_path = log_path

    @classmethod
    async def spawn(cls, env: dict[str, str], workdir: Path, name: str) -> DaemonProcess:
        log_path = workdir / f"{name}.log"
        with log_path.open("wb") as log:  # the child keeps its own descriptor
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "monitor",
                "run",
                env=env,
                cwd=workdir,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        return cls(proc, log_path)

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def lines(self) -> list[dict[str, Any]]:
        """The log so far, parsed; a line that is not JSON (a traceback, a line cut by a
        kill) is kept as {"event": "<raw>", "raw": text}."""
        out: list[dict[str, Any]] = []
        for raw in self.log_path.read_text(errors="replace").splitlines():
            try:
                line = json.loads(raw)
            except ValueError:
                line = None
            out.append(line if isinstance(line, dict) else {"event": "<raw>", "raw": raw})
        return out

    def events(self, name: str) -> list[dict[str, Any]]:
        return [x for x in self.lines() if x.get("event") == name]

    def tail(self, n: int = 15) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    async def wait_logged(self, event: str, *, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.events(event)
            if found:
                return found[0]
            if self.returncode is not None:
                raise AssertionError(
                    f"daemon exited {self.returncode} before {event!r}:\n{self.tail()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"no {event!r} within {timeout}s:\n{self.tail()}")
            await asyncio.sleep(DEADLINE_POLL_S)

    async def http_url(self, *, timeout: float = 30.0) -> str:
        started = await self.wait_logged("daemon_started", timeout=timeout)
        return str(started["http"])

    async def wait(self, timeout: float) -> int | None:
        """The exit code, or None if still running after `timeout`."""
        try:
            return await asyncio.wait_for(asyncio.shield(self.proc.wait()), timeout)
        except TimeoutError:
            return None

    async def kill(self) -> int:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)
        return await self.proc.wait()

    async def terminate(self, *, timeout: float) -> tuple[int | None, float]:
        """SIGTERM; the exit code (None if it did not exit in time) and seconds taken."""
        t0 = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        code = await self.wait(timeout)
        took = time.monotonic() - t0
        if code is None:
            await self.kill()
        return code, took


# -- reading the outcome -------------------------------------------------------------------


@dataclass
class Stored:
    counts: dict[str, dict[str, int]]  # tenant → slot name → count (email window)
    keys: int  # dedupe keys
    pauses: dict[str, int]  # tenant → pause decisions in the audit log
    pause_results: dict[str, list[list[dict[str, Any]]]]  # tenant → action results per pause
    pending: int  # outbox entries not yet acted on


async def read_store(state: Path, rules_dir: Path, tenants: Sequence[str]) -> Stored:
    """What the next start would load: the store through `Engine.restore`."""
    store = SqliteStore(state)
    try:
        now = time.time()
        loaded = await store.load(since=0.0, keys_since=0.0, max_keys=10**9)
        engine = Engine(load_rules_dir(rules_dir))
        engine.restore(states=loaded.states, buckets=loaded.buckets, keys=loaded.keys, now=now)
        counts: dict[str, dict[str, int]] = {}
        pauses: dict[str, int] = {}
        results: dict[str, list[list[dict[str, Any]]]] = {}
        for t in tenants:
            rec = engine.tenants.get(t)
            snap = rec.snapshot(Channel.EMAIL, now).counts if rec else None
            counts[t] = {k: (snap[i] if snap else 0) for k, i in SLOTS.items()}
            audit = await store.audit(tenant=t, limit=10_000)
            ps = [e for e in audit if e["decision"] == "pause"]
            pauses[t] = len(ps)
            results[t] = [e["actions"] for e in ps]
        pending = len(await store.pending_actions())
        return Stored(counts, len(loaded.keys), pauses, results, pending)
    finally:
        await store.close()


def disabled_calls(sandbox: Sandbox, arn: str) -> list[str]:
    """The SendingStatus of every UpdateReputationEntityCustomerManagedStatus call on `arn`."""
    return [
        str(c.params.get("SendingStatus"))
        for c in sandbox.ses.calls_to("UpdateReputationEntityCustomerManagedStatus")
        if c.params.get("ReputationEntityReference") == arn
    ]


def resent_calls(
    events: EventSet, stored: Stored, sandbox: Sandbox, arns: dict[str, str]
) -> dict[str, int]:
    """Crossing tenants with one pause decision whose DISABLED call SES saw more than once:
    tenant → extra calls. The signature of a committed pause whose action a killed run had
    made but not yet recorded, made again from the outbox at the next start."""
    out: dict[str, int] = {}
    for t in events.crossing:
        calls = disabled_calls(sandbox, arns[t])
        if stored.pauses[t] == 1 and len(calls) > 1 and set(calls) == {"DISABLED"}:
            out[t] = len(calls) - 1
    return out


def check_outcome(
    events: EventSet,
    stored: Stored,
    sandbox: Sandbox,
    arns: dict[str, str],
    *,
    resent: dict[str, int] | None = None,
) -> list[str]:
    """Every way the outcome differs from the event set, one line each (empty: exact).
    `resent`: extra DISABLED calls to tolerate per tenant (see `resent_calls`)."""
    failures: list[str] = []
    for t in events.tenants:
        if stored.counts[t] != events.expected[t]:
            failures.append(f"{t}: counts {stored.counts[t]} != expected {events.expected[t]}")
        calls = disabled_calls(sandbox, arns[t])
        want_calls = ["DISABLED"] * (1 + (resent or {}).get(t, 0)) if t in events.crossing else []
        if calls != want_calls:
            failures.append(f"{t}: SES status calls {calls} != {want_calls}")
        want_pauses = 1 if t in events.crossing else 0
        if stored.pauses[t] != want_pauses:
            failures.append(f"{t}: {stored.pauses[t]} pause decisions != {want_pauses}")
        for results in stored.pause_results[t]:
            if [r.get("result") for r in results] != ["ok"]:
                failures.append(f"{t}: pause action results {results}")
    if stored.keys != events.records:
        failures.append(f"{stored.keys} dedupe keys stored != {events.records} distinct records")
    if stored.pending:
        failures.append(f"{stored.pending} actions still pending in the outbox")
    return failures


# -- one trial -----------------------------------------------------------------------------


@dataclass
class TrialResult:
    seed: int
    kills: int = 0
    runs: int = 0
    messages: int = 0
    records: int = 0
    duplicates: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    kill_delays: list[float] = field(default_factory=list)
    kills_serving: int = 0  # kills that landed after the run logged `daemon_started`
    resent: dict[str, int] = field(default_factory=dict)  # tenant → pause calls made again

    @property
    def exact(self) -> bool:
        """Passed, and SES saw exactly one call per crossing."""
        return self.passed and not self.resent

    @property
    def passed(self) -> bool:
        return not self.failures


async def run_trial(
    sandbox: Sandbox,
    workdir: Path,
    *,
    seed: int,
    kill_after: tuple[float, float] = KILL_AFTER_S,
    max_kills: int = MAX_KILLS,
    tenants: int = 5,
) -> TrialResult:
    """Kill and restart the daemon until the event set is consumed; compare the outcome."""
    t0 = time.monotonic()
    rng = random.Random(seed)
    result = TrialResult(seed)
    tag = f"crash{seed}-{uuid.uuid4().hex[:6]}"  # the sandbox may be shared: unique names
    names = [f"{tag}-t{i}" for i in range(tenants)]
    arns = {n: sandbox.ses.add_tenant(n) for n in names}
    events = build_events(names, seed=seed, now=time.time())
    result.messages, result.records = len(events.bodies), events.records
    result.duplicates = events.duplicates
    rules_dir = write_rules(workdir)
    state = workdir / "state.db"
    runs: list[DaemonProcess] = []

    async with sqs_client(sandbox) as sqs:
        queue = await create_queue(sqs, tag)
        env = daemon_env(sandbox, queue=queue, state=state, rules_dir=rules_dir)
        producer = asyncio.create_task(produce(sqs, queue, events.bodies))
        try:
            while result.kills < max_kills:
                d = await DaemonProcess.spawn(env, workdir, f"run-{len(runs) + 1}")
                runs.append(d)
                # Every other run is killed at a moment after it is serving (mid-batch, most
                # likely); the others at a moment after the spawn, start-up included.
                if len(runs) % 2:
                    await d.wait_logged("daemon_started")
                    delay = rng.uniform(*SERVING_KILL_S)
                else:
                    delay = rng.uniform(*kill_after)
                result.kill_delays.append(round(delay, 3))
                code = await d.wait(delay)
                if code is not None:
                    raise AssertionError(
                        f"run {len(runs)} exited {code} before its kill:\n{d.tail()}"
                    )
                await d.kill()
                result.kills += 1
                result.kills_serving += bool(d.events("daemon_started"))
                if producer.done() and await queue_depth(sqs, queue) == 0:
                    break
            # The last run is not killed: it consumes what is left, then stops gracefully.
            last = await DaemonProcess.spawn(env, workdir, f"run-{len(runs) + 1}")
            runs.append(last)
            await producer
            await wait_empty(sqs, queue)
            # SIGTERM before the daemon installed its handler would just kill it.
            await last.wait_logged("daemon_started")
            code, _ = await last.terminate(timeout=SHUTDOWN_TIMEOUT_S + 5)
            if code != 0:
                result.failures.append(f"last run: exit {code} after SIGTERM:\n{last.tail()}")
        except AssertionError as e:
            result.failures.append(str(e))
        finally:
            producer.cancel()
            with contextlib.suppress(BaseException):
                await producer
            for d in runs:
                if d.returncode is None:
                    await d.kill()
            result.runs = len(runs)

    for i, d in enumerate(runs, 1):
        for line in d.lines():
            if line.get("level") in ("critical", "error"):
                result.failures.append(f"run {i} logged {line}")
    stored = await read_store(state, rules_dir, names)
    # A repeated pause call is the known at-least-once window of the outbox (see
    # test_crash.py::test_kill_while_the_pause_call_is_in_flight); reported apart, and only
    # when as many later runs re-ran pending actions at start.
    resent = resent_calls(events, stored, sandbox, arns)
    resumed = sum(bool(d.events("actions_resumed")) for d in runs)
    if sum(resent.values()) <= resumed:
        result.resent = resent
    result.failures.extend(check_outcome(events, stored, sandbox, arns, resent=result.resent))
    result.seconds = round(time.monotonic() - t0, 2)
    return result

"""Processes for the end-to-end benches: local AWS, the daemon, a bare consumer, a producer.

Every process is a `multiprocessing` child (spawn) on 127.0.0.1, driven through a pipe, so
each one's CPU can be measured on its own (psutil) and none shares a GIL with another:

- `moto`: moto's server (SQS) in its own process;
- `ses`: the SES stand-in in its own process (its call log is read over the pipe; its times are
  `time.monotonic()`, the one system-wide clock every process here shares);
- `daemon`: `monitor.app.Daemon` as `reputation-monitor run` runs it;
- `bare`: the least any consumer must do: the same pollers, long polls and batch sizes, and
  DeleteMessageBatch of what it received, with no processing at all.

Pipe commands are `(name, argument)` tuples; each gets exactly one reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

CTX = mp.get_context("spawn")
REGION = "us-east-1"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
}


class Child:
    """A spawned process and its end of the pipe."""

    def __init__(self, target: Callable[..., None], *args: Any, name: str) -> None:
        self.conn, child_conn = CTX.Pipe()
        self._lock = threading.Lock()  # one question at a time, from any thread
        self.process = CTX.Process(target=target, args=(child_conn, *args), name=name, daemon=True)
        self.process.start()
        child_conn.close()

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def ask(self, command: str, argument: Any = None, timeout: float = 60.0) -> Any:
        with self._lock:
            self.conn.send((command, argument))
            return self.receive(timeout)

    def receive(self, timeout: float = 60.0) -> Any:
        if not self.conn.poll(timeout):
            raise TimeoutError(f"{self.process.name}: no answer in {timeout}s")
        reply = self.conn.recv()
        if isinstance(reply, BaseException):
            raise RuntimeError(f"{self.process.name} failed") from reply
        return reply

    def stop(self, timeout: float = 30.0) -> Any:
        try:
            return self.ask("stop", timeout=timeout)
        finally:
            self.process.join(5)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(5)


# --- local AWS ------------------------------------------------------------------------------


def _moto_main(conn: Connection) -> None:
    from monitor.sandbox import MotoServer

    _speed_up_moto()
    server = MotoServer()
    conn.send(server.start())
    _serve_commands(conn, {})
    server.stop()


def _speed_up_moto() -> None:
    """Two hot spots of moto 5.2's SQS, replaced by equivalents so that moto stops being the
    bottleneck of a comparison between consumers (which are untouched):

    - each message handed out is checked against the retention period by computing every
      attribute of its queue, which counts the queue's messages: an O(depth) scan per message;
      the same check reads the one attribute it needs;
    - the clock it reads per message per scan (`unix_time`) goes through naive-datetime
      arithmetic; `time.time()` is the same value, several times faster.
    """
    import time as _time

    import moto.sqs.models as sqs_models
    from moto.sqs.models import Message, SQSBackend

    def unix_time() -> float:
        return _time.time()

    def unix_time_millis() -> float:
        return _time.time() * 1000.0

    def is_message_valid_based_on_retention_period(
        self: SQSBackend, queue_name: str, message: Message
    ) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)
        return retention + message.sent_timestamp / 1000 > unix_time()  # type: ignore[operator]

    sqs_models.unix_time = unix_time  # type: ignore[assignment]
    sqs_models.unix_time_millis = unix_time_millis  # type: ignore[assignment]
    SQSBackend.is_message_valid_based_on_retention_period = (  # type: ignore[method-assign]
        is_message_valid_based_on_retention_period
    )


def _ses_main(conn: Connection, tenants: Sequence[str]) -> None:
    from monitor.sandbox import ThreadedSesStandIn

    ses = ThreadedSesStandIn(region=REGION)
    url = ses.start()
    for t in tenants:
        ses.add_tenant(t)
    conn.send(url)

    def calls(_: Any) -> list[tuple[str, dict[str, Any], float, int]]:
        return [(c.operation, c.params, c.time, c.status) for c in ses.calls]

    _serve_commands(
        conn, {"calls": calls, "add_tenants": lambda ts: [ses.add_tenant(t) for t in ts]}
    )
    ses.stop()


def _serve_commands(conn: Connection, handlers: dict[str, Callable[[Any], Any]]) -> None:
    while True:
        command, argument = conn.recv()
        if command == "stop":
            conn.send(None)
            return
        try:
            conn.send(handlers[command](argument))
        except Exception as e:
            conn.send(e)


@dataclass
class LocalAws:
    """moto (SQS) and the SES stand-in, each in its own process."""

    tenants: Sequence[str] = ()
    moto: Child | None = None
    ses: Child | None = None
    env: dict[str, str] = field(default_factory=dict)

    def start(self) -> LocalAws:
        self.moto = Child(_moto_main, name="moto")
        self.ses = Child(_ses_main, list(self.tenants), name="ses-standin")
        moto_url, ses_url = self.moto.receive(), self.ses.receive()
        self.env = {
            "AWS_ENDPOINT_URL": moto_url,
            "AWS_ENDPOINT_URL_SQS": moto_url,
            "AWS_ENDPOINT_URL_SESV2": ses_url,
            **CREDENTIALS,
        }
        return self

    def stop(self) -> None:
        for child in (self.ses, self.moto):
            if child is not None:
                with contextlib.suppress(Exception):
                    child.stop()

    def __enter__(self) -> LocalAws:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- consumers ------------------------------------------------------------------------------


def _daemon_main(
    conn: Connection, env: dict[str, str], settings: dict[str, Any], rules_dir: str, log: str
) -> None:
    os.environ.update(env)
    sys.stderr = open(log, "a", buffering=1)  # noqa: SIM115 (the process's stderr until exit)
    from monitor import logs

    logs.configure(settings.get("log_level", "info"), "json")
    profile = os.environ.get("REPMON_BENCH_PROFILE")  # a path: cProfile the event loop's thread
    try:
        if profile:
            import cProfile

            cProfile.runctx(
                "asyncio.run(_daemon(conn, settings, rules_dir))", globals(), locals(), profile
            )
        else:
            asyncio.run(_daemon(conn, settings, rules_dir))
    except BaseException as e:
        conn.send(e)
        raise


async def _daemon(conn: Connection, settings: dict[str, Any], rules_dir: str) -> None:
    from monitor.app import Daemon
    from monitor.rulesfile import load_rules_dir
    from monitor.settings import load_settings

    daemon = Daemon(load_settings(**settings), load_rules_dir(rules_dir), stop=asyncio.Event())
    task = asyncio.create_task(daemon.run())
    started = asyncio.create_task(daemon.started.wait())
    await asyncio.wait({task, started}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        started.cancel()
        task.result()

    def stats() -> dict[str, Any]:
        assert daemon.pipeline is not None and daemon.committer is not None
        return {
            "events": daemon.pipeline.events,
            "deleted": sum(s.deleted for s in daemon.sources),
            "requests": sum(s.requests for s in daemon.sources),
            "commits": daemon.committer.commits,
        }

    await _command_loop(conn, stats, daemon.stop, ready={"pid": os.getpid()})
    await task
    conn.send(stats())


def _bare_main(
    conn: Connection, env: dict[str, str], queue_url: str, pollers: int, wait_s: int
) -> None:
    os.environ.update(env)
    try:
        asyncio.run(_bare(conn, queue_url, pollers, wait_s))
    except BaseException as e:
        conn.send(e)
        raise


async def _bare(conn: Connection, queue_url: str, pollers: int, wait_s: int) -> None:
    """Receive and delete, nothing else: what any consumer of the queue must spend."""
    from monitor.aws import client_config, session

    counts = {"events": 0, "deleted": 0, "requests": 0, "commits": 0}
    stop = asyncio.Event()
    async with session().create_client(
        "sqs", region_name=REGION, config=client_config(read_timeout=wait_s + 10)
    ) as client:

        async def poll() -> None:
            while not stop.is_set():
                counts["requests"] += 1
                resp = await client.receive_message(
                    QueueUrl=queue_url,
                    MaxNumberOfMessages=10,
                    WaitTimeSeconds=wait_s,
                    MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
                )
                messages = resp.get("Messages") or []
                if not messages:
                    continue
                counts["events"] += len(messages)
                counts["requests"] += 1
                done = await client.delete_message_batch(
                    QueueUrl=queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(messages)
                    ],
                )
                counts["deleted"] += len(done.get("Successful") or [])

        tasks = [asyncio.create_task(poll()) for _ in range(pollers)]
        await _command_loop(conn, lambda: dict(counts), stop, ready={"pid": os.getpid()})
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    conn.send(dict(counts))


async def _command_loop(
    conn: Connection, stats: Callable[[], dict[str, Any]], stop: asyncio.Event, ready: Any
) -> None:
    """Answer `stats` from the event loop until `stop` (whose reply is sent by the caller)."""
    loop = asyncio.get_running_loop()
    stopping = loop.create_future()

    def on_command() -> None:
        command, _ = conn.recv()
        if command == "stats":
            conn.send(stats())
        elif command == "stop" and not stopping.done():
            stop.set()
            stopping.set_result(None)

    loop.add_reader(conn.fileno(), on_command)
    conn.send(ready)
    try:
        await stopping
    finally:
        loop.remove_reader(conn.fileno())


def start_daemon(env: dict[str, str], settings: dict[str, Any], rules_dir: str, log: str) -> Child:
    child = Child(_daemon_main, env, settings, rules_dir, log, name="daemon")
    child.receive(timeout=120)
    return child


def start_bare(env: dict[str, str], queue_url: str, pollers: int, wait_s: int) -> Child:
    child = Child(_bare_main, env, queue_url, pollers, wait_s, name="bare-consumer")
    child.receive(timeout=60)
    return child


# --- producer -------------------------------------------------------------------------------


async def produce(
    client: Any,
    queue_url: str,
    bodies: Sequence[str],
    *,
    consumed: Callable[[], int],
    max_depth: int = 100,
    senders: int = 4,
) -> None:
    """SendMessageBatch in tens, keeping sent − consumed under `max_depth` (moto's cost grows
    with the depth of a queue, and a real queue that is keeping up is shallow)."""
    next_batch = 0
    sent = 0

    async def sender() -> None:
        nonlocal next_batch, sent
        while next_batch < len(bodies):
            if sent - consumed() >= max_depth:
                await asyncio.sleep(0.005)
                continue
            i = next_batch
            next_batch += 10
            chunk = bodies[i : i + 10]
            await client.send_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(j), "MessageBody": b} for j, b in enumerate(chunk)],
            )
            sent += len(chunk)

    await asyncio.gather(*(sender() for _ in range(senders)))


class Counters:
    """A consumer's counters, refreshed in the background every `every_s` (the pipe is asked
    from a thread, so the producer's loop never waits on it)."""

    def __init__(self, child: Child, every_s: float = 0.05) -> None:
        self.child = child
        self.every_s = every_s
        self.latest: dict[str, Any] = child.ask("stats")
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Counters:
        self._task = asyncio.create_task(self._refresh())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _refresh(self) -> None:
        while True:
            self.latest = await asyncio.to_thread(self.child.ask, "stats")
            await asyncio.sleep(self.every_s)

    def deleted(self) -> int:
        return int(self.latest["deleted"])

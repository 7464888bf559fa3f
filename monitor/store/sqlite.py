"""Embedded state in SQLite (WAL), one writer thread.

Every call runs on one dedicated thread that owns the connection, so the event loop never
blocks on disk and SQLite never sees two threads. A commit is one transaction: buckets,
states, dedupe keys and audit entries land together or not at all.

Dedupe keys are appended, one row per commit holding all of its keys as one blob (and their
event times as another), rather than one B-tree entry per key: the keys are random digests, so
per-key rows dirtied a leaf page (and one of the time index) per key and commit, most of a
commit's cost. A row is pruned once its newest key is past the horizon; older keys in a row
that is kept are skipped at load, so what loads is the same set.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from monitor.core.engine import Changes
from monitor.core.state import TenantState
from monitor.core.windows import SLOTS
from monitor.store.base import Loaded, PendingAction, StoreError

T = TypeVar("T")
_COUNTS = struct.Struct(f"<{SLOTS}q")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS buckets (
    tenant TEXT NOT NULL, channel TEXT NOT NULL, start REAL NOT NULL, counts BLOB NOT NULL,
    PRIMARY KEY (tenant, channel, start)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS buckets_start ON buckets (start);
CREATE TABLE IF NOT EXISTS tenants (tenant TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS seen_keys (
    id INTEGER PRIMARY KEY,   -- commit order
    newest REAL NOT NULL,     -- the latest event time among the row's keys
    width INTEGER NOT NULL,   -- bytes per key
    keys BLOB NOT NULL,       -- the keys, concatenated
    times BLOB NOT NULL       -- their event times, float64 little-endian, in the same order
);
CREATE INDEX IF NOT EXISTS seen_keys_newest ON seen_keys (newest);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL, tenant TEXT NOT NULL, channel TEXT NOT NULL, decision TEXT NOT NULL,
    actor TEXT NOT NULL, reason TEXT NOT NULL, evidence TEXT,
    actions TEXT NOT NULL DEFAULT '[]',  -- results: [{"action", "result", ...}]
    pending TEXT                          -- outbox: action names still to run, or NULL
);
CREATE INDEX IF NOT EXISTS audit_tenant_time ON audit (tenant, time);
CREATE INDEX IF NOT EXISTS audit_time ON audit (time);
CREATE INDEX IF NOT EXISTS audit_pending ON audit (id) WHERE pending IS NOT NULL;
"""
SCHEMA_VERSION = "2"
# 1 → 2: dedupe keys from `seen` (one row per key) to `seen_keys` (one row per commit).
_MIGRATE_1_TO_2 = 10_000  # keys per migrated row


def key_rows(keys: Sequence[tuple[bytes, float]]) -> list[tuple[float, int, bytes, bytes]]:
    """`seen_keys` rows (newest, width, keys, times) for one commit's keys: one row, or one per
    key length should keys of several lengths come together."""
    if not keys:
        return []
    width = len(keys[0][0])
    if all(len(k) == width for k, _ in keys):
        groups = [keys]
    else:
        by_width: dict[int, list[tuple[bytes, float]]] = {}
        for kt in keys:
            by_width.setdefault(len(kt[0]), []).append(kt)
        groups = list(by_width.values())
    rows = []
    for group in groups:
        times = [t for _, t in group]
        rows.append(
            (
                max(times),
                len(group[0][0]),
                b"".join([k for k, _ in group]),
                struct.pack(f"<{len(times)}d", *times),
            )
        )
    return rows


def _row_keys(width: int, keys: bytes, times: bytes) -> Iterator[tuple[bytes, float]]:
    """One `seen_keys` row's (key, time) pairs, in the order they were committed."""
    ts = struct.unpack(f"<{len(times) // 8}d", times)
    if width <= 0 or len(keys) != width * len(ts):
        raise StoreError(f"seen_keys row of {len(keys)} bytes for {len(ts)} keys of {width}")
    return zip([keys[i : i + width] for i in range(0, len(keys), width)], ts, strict=True)


def newest_keys(
    rows: Iterable[tuple[int, bytes, bytes]], *, since: float, limit: int
) -> list[tuple[bytes, float]]:
    """The last `limit` distinct keys committed whose time is `since` or later, oldest first
    (the order the in-memory set adds and evicts them in). `rows`: (width, keys, times) of
    `seen_keys`, newest commit first."""
    out: dict[bytes, float] = {}
    if limit <= 0:
        return []
    for width, keys, times in rows:
        for key, t in reversed(list(_row_keys(width, keys, times))):
            if t >= since and key not in out:
                out[key] = t
                if len(out) >= limit:
                    return list(reversed(out.items()))
    return list(reversed(out.items()))


def path_from_url(url: str) -> Path:
    """`sqlite:///relative.db` or `sqlite:////abs/path.db` → a Path."""
    if not url.startswith("sqlite:///"):
        raise ValueError("must look like sqlite:///PATH")
    rest = url[len("sqlite:///") :]
    if not rest:
        raise ValueError("names no file")
    return Path(rest)


def _migrate_1_to_2(db: sqlite3.Connection) -> None:
    """Schema 1 kept one `seen` row per key: move them into `seen_keys` rows (in time order,
    so the newest stay the newest) in one transaction, and drop the old table."""
    db.execute("BEGIN IMMEDIATE")
    try:
        old = db.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name='seen'"
        ).fetchone()
        if old is not None:
            cur = db.execute("SELECT key, time FROM seen ORDER BY time")
            while chunk := cur.fetchmany(_MIGRATE_1_TO_2):
                db.executemany(
                    "INSERT INTO seen_keys (newest, width, keys, times) VALUES (?, ?, ?, ?)",
                    key_rows([(bytes(k), t) for k, t in chunk]),
                )
            db.execute("DROP TABLE seen")
        db.execute("UPDATE meta SET value=? WHERE key='schema'", (SCHEMA_VERSION,))
        db.execute("COMMIT")
    except sqlite3.Error as e:
        db.execute("ROLLBACK")
        raise StoreError(f"sqlite schema migration 1 → 2 failed: {e}") from e


def _entry(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "time": row["time"],
        "tenant": row["tenant"],
        "channel": row["channel"],
        "decision": row["decision"],
        "actor": row["actor"],
        "reason": row["reason"],
        "evidence": json.loads(row["evidence"]) if row["evidence"] else None,
        "actions": json.loads(row["actions"]),
    }


class SqliteStore:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._db: sqlite3.Connection | None = None

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            if self._db is None:
                self._db = self._connect()
            return fn(self._db)

        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    def _connect(self) -> sqlite3.Connection:
        if self.path.parent != Path():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before it returns, and only then are its messages deleted
        # from SQS, so a power loss or a node crash loses no counts, keys or audit rows.
        # (NORMAL would leave the latest commits in the page cache until a checkpoint: gone
        # with the node while their messages are deleted.) Group commit keeps the fsyncs few:
        # ~0.5 ms and ~0.1 ms of CPU a commit here, of dozens of events.
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA busy_timeout=5000")
        db.executescript(SCHEMA)
        row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None:
            db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        elif row[0] == "1":
            _migrate_1_to_2(db)
        elif row[0] != SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: schema version {row[0]}, this build reads {SCHEMA_VERSION}"
            )
        return db

    async def load(self, *, since: float, keys_since: float, max_keys: int) -> Loaded:
        def load(db: sqlite3.Connection) -> Loaded:
            out = Loaded()
            for tenant, state in db.execute("SELECT tenant, state FROM tenants"):
                out.states.append((tenant, TenantState.from_dict(tenant, json.loads(state))))
            for tenant, channel, start, counts in db.execute(
                "SELECT tenant, channel, start, counts FROM buckets WHERE start >= ?", (since,)
            ):
                out.buckets.append((tenant, channel, start, _COUNTS.unpack(counts)))
            # The newest keys, oldest first, so the in-memory set evicts in the same order.
            rows = db.execute(
                "SELECT width, keys, times FROM seen_keys WHERE newest >= ? ORDER BY id DESC",
                (keys_since,),
            )
            out.keys = newest_keys(rows, since=keys_since, limit=max_keys)
            return out

        return await self._run(load)

    async def commit(self, changes: Changes) -> list[int]:
        pack = _COUNTS.pack

        def commit(db: sqlite3.Connection) -> list[int]:
            ids: list[int] = []
            try:
                db.execute("BEGIN IMMEDIATE")
                for tenant, channel in changes.resets:
                    db.execute(
                        "DELETE FROM buckets WHERE tenant=? AND channel=?", (tenant, channel)
                    )
                if changes.buckets:
                    # An upsert rewrites the row in place; REPLACE would delete and re-insert
                    # it, and touch the `start` index for nothing.
                    db.executemany(
                        "INSERT INTO buckets VALUES (?, ?, ?, ?) ON CONFLICT"
                        " (tenant, channel, start) DO UPDATE SET counts = excluded.counts",
                        [(t, c, s, pack(*counts)) for t, c, s, counts in changes.buckets],
                    )
                if changes.states:
                    db.executemany(
                        "INSERT OR REPLACE INTO tenants VALUES (?, ?)",
                        [(t, json.dumps(st.to_dict())) for t, st in changes.states],
                    )
                if changes.keys:
                    db.executemany(
                        "INSERT INTO seen_keys (newest, width, keys, times) VALUES (?, ?, ?, ?)",
                        key_rows(changes.keys),
                    )
                for d in changes.decisions:
                    cur = db.execute(
                        "INSERT INTO audit (time, tenant, channel, decision, actor, reason,"
                        " evidence, pending) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            d.time,
                            d.tenant,
                            d.channel.value,
                            d.kind.value,
                            d.actor,
                            d.reason,
                            json.dumps(d.evidence.to_dict()) if d.evidence else None,
                            json.dumps(list(d.actions)) if d.actions else None,
                        ),
                    )
                    ids.append(int(cur.lastrowid or 0))
                if changes.evicted:
                    gone = [(t,) for t in changes.evicted]
                    db.executemany("DELETE FROM tenants WHERE tenant=?", gone)
                    db.executemany("DELETE FROM buckets WHERE tenant=?", gone)
                db.execute("COMMIT")
            except sqlite3.Error as e:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise StoreError(f"sqlite commit failed: {e}") from e
            return ids

        return await self._run(commit)

    async def record_actions(
        self, audit_id: int, results: list[dict[str, str]], *, done: bool
    ) -> None:
        def record(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE audit SET actions=?, pending=CASE WHEN ? THEN NULL ELSE pending END"
                " WHERE id=?",
                (json.dumps(results), done, audit_id),
            )

        await self._run(record)

    async def pending_actions(self) -> list[PendingAction]:
        def pending(db: sqlite3.Connection) -> list[PendingAction]:
            rows = db.execute("SELECT *, pending FROM audit WHERE pending IS NOT NULL ORDER BY id")
            return [
                PendingAction(r["id"], _entry(r), tuple(json.loads(r["pending"]))) for r in rows
            ]

        return await self._run(pending)

    async def audit(
        self, *, tenant: str | None = None, since: float | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        def query(db: sqlite3.Connection) -> list[dict[str, Any]]:
            where: list[str] = ["1=1"]
            args: list[str | float] = []
            if tenant is not None:
                where.append("tenant = ?")
                args.append(tenant)
            if since is not None:
                where.append("time >= ?")
                args.append(since)
            rows = db.execute(
                # Only fixed fragments are joined in; values are bound parameters.
                f"SELECT * FROM audit WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",  # noqa: S608
                (*args, limit),
            ).fetchall()
            return [_entry(r) for r in reversed(rows)]

        return await self._run(query)

    async def prune(self, *, before: float, keys_before: float) -> None:
        def prune(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM buckets WHERE start < ?", (before,))
            # A row goes once its newest key is past; older keys in a kept row are skipped at
            # load, so what a restart loads is the same as if each key were pruned alone.
            db.execute("DELETE FROM seen_keys WHERE newest < ?", (keys_before,))

        await self._run(prune)

    async def close(self) -> None:
        def close(db: sqlite3.Connection) -> None:
            db.close()

        if self._db is not None:
            await self._run(close)
            self._db = None
        self._pool.shutdown(wait=True)

"""Embedded state in SQLite (WAL), one writer thread.

Every call runs on one dedicated thread that owns the connection, so the event loop never
blocks on disk and SQLite never sees two threads. A commit is one transaction: buckets,
states, dedupe keys and audit entries land together or not at all.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import struct
from collections.abc import Callable
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
CREATE TABLE IF NOT EXISTS seen (key BLOB PRIMARY KEY, time REAL NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_time ON seen (time);
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
SCHEMA_VERSION = "1"


def path_from_url(url: str) -> Path:
    """`sqlite:///relative.db` or `sqlite:////abs/path.db` → a Path."""
    if not url.startswith("sqlite:///"):
        raise ValueError("must look like sqlite:///PATH")
    rest = url[len("sqlite:///") :]
    if not rest:
        raise ValueError("names no file")
    return Path(rest)


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
        # NORMAL in WAL mode: a power loss may drop the last commits but never corrupts; the
        # messages behind them were not deleted from SQS yet, so they are simply redelivered.
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=5000")
        db.executescript(SCHEMA)
        row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None:
            db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
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
                "SELECT key, time FROM seen WHERE time >= ? ORDER BY time DESC LIMIT ?",
                (keys_since, max_keys),
            ).fetchall()
            out.keys = [(bytes(k), t) for k, t in reversed(rows)]
            return out

        return await self._run(load)

    async def commit(self, changes: Changes) -> list[int]:
        def commit(db: sqlite3.Connection) -> list[int]:
            ids: list[int] = []
            try:
                db.execute("BEGIN IMMEDIATE")
                for tenant, channel in changes.resets:
                    db.execute(
                        "DELETE FROM buckets WHERE tenant=? AND channel=?", (tenant, channel)
                    )
                db.executemany(
                    "INSERT OR REPLACE INTO buckets VALUES (?, ?, ?, ?)",
                    [(t, c, s, _COUNTS.pack(*counts)) for t, c, s, counts in changes.buckets],
                )
                db.executemany(
                    "INSERT OR REPLACE INTO tenants VALUES (?, ?)",
                    [(t, json.dumps(st.to_dict())) for t, st in changes.states],
                )
                db.executemany("INSERT OR IGNORE INTO seen VALUES (?, ?)", changes.keys)
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
                db.executemany(
                    "DELETE FROM tenants WHERE tenant=?", [(t,) for t in changes.evicted]
                )
                db.executemany(
                    "DELETE FROM buckets WHERE tenant=?", [(t,) for t in changes.evicted]
                )
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
            db.execute("DELETE FROM seen WHERE time < ?", (keys_before,))

        await self._run(prune)

    async def close(self) -> None:
        def close(db: sqlite3.Connection) -> None:
            db.close()

        if self._db is not None:
            await self._run(close)
            self._db = None
        self._pool.shutdown(wait=True)

"""SqliteStore on a real file: append-only dedupe rows, bucket upserts, the schema 1 → 2 move."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from monitor.core.engine import Changes
from monitor.core.windows import SLOTS
from monitor.store.sqlite import SCHEMA_VERSION, SqliteStore, key_rows, newest_keys

ALL = {"since": 0.0, "keys_since": 0.0, "max_keys": 10**9}


def key(i: int) -> bytes:
    return hashlib.blake2b(str(i).encode(), digest_size=16).digest()


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


async def test_each_commit_appends_one_row_and_load_restores_every_key(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = SqliteStore(db)
    commits = [[(key(c * 10 + i), 1000.0 + c * 10 + i) for i in range(10)] for c in range(5)]
    try:
        for keys in commits:
            await store.commit(Changes(keys=keys))
        loaded = await store.load(**ALL)
    finally:
        await store.close()
    assert loaded.keys == [kt for keys in commits for kt in keys]  # oldest first
    assert rows(db, "SELECT count(*), sum(length(keys)) FROM seen_keys") == [(5, 5 * 10 * 16)]


async def test_a_key_committed_twice_loads_once_with_its_latest_time(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    try:
        await store.commit(Changes(keys=[(key(1), 10.0), (key(2), 11.0)]))
        # Forgotten in memory (capacity, restart) and counted again: stored again.
        await store.commit(Changes(keys=[(key(1), 12.0), (key(3), 13.0)]))
        loaded = await store.load(**ALL)
    finally:
        await store.close()
    assert loaded.keys == [(key(2), 11.0), (key(1), 12.0), (key(3), 13.0)]


async def test_prune_and_load_since_give_the_set_per_key_pruning_gave(tmp_path: Path) -> None:
    """Rows go whole once their newest key is stale; stale keys left in a kept row (events
    arrive out of order) are not loaded: exactly the keys with time >= the horizon."""
    db = tmp_path / "s.db"
    store = SqliteStore(db)
    times = [[5.0, 50.0, 7.0], [1.0, 2.0, 3.0], [90.0, 4.0, 95.0], [8.0, 9.0, 6.0]]
    keys = [[(key(c * 10 + i), t) for i, t in enumerate(ts)] for c, ts in enumerate(times)]
    try:
        for ks in keys:
            await store.commit(Changes(keys=ks))
        await store.prune(before=0.0, keys_before=10.0)
        assert rows(db, "SELECT count(*) FROM seen_keys") == [(2,)]  # rows 1 and 3 all stale
        loaded = await store.load(since=0.0, keys_since=10.0, max_keys=100)
    finally:
        await store.close()
    expected = [kt for ks in keys for kt in ks if kt[1] >= 10.0]
    assert loaded.keys == expected == [(key(1), 50.0), (key(20), 90.0), (key(22), 95.0)]


async def test_max_keys_keeps_the_last_committed(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    keys = [(key(i), float(i)) for i in range(30)]
    try:
        for i in range(0, 30, 10):
            await store.commit(Changes(keys=keys[i : i + 10]))
        loaded = await store.load(since=0.0, keys_since=0.0, max_keys=15)
    finally:
        await store.close()
    assert loaded.keys == keys[15:]


async def test_commits_are_synced_to_disk_before_they_return(tmp_path: Path) -> None:
    """Messages are deleted after their commit: it must survive a power loss, not just a
    crash of the process (synchronous=FULL; NORMAL syncs the WAL only at checkpoints)."""
    store = SqliteStore(tmp_path / "s.db")
    try:
        level = await store._run(lambda db: db.execute("PRAGMA synchronous").fetchone()[0])
    finally:
        await store.close()
    assert level == 2  # FULL


def test_key_rows_split_keys_of_different_lengths() -> None:
    keys = [(b"a" * 16, 1.0), (b"bb", 2.0), (b"c" * 16, 3.0)]
    out = key_rows(keys)
    assert [(newest, width) for newest, width, _, _ in out] == [(3.0, 16), (2.0, 2)]
    restored = newest_keys([(w, k, t) for _, w, k, t in reversed(out)], since=0.0, limit=10)
    assert sorted(restored) == sorted(keys)


async def test_a_bucket_committed_again_holds_its_latest_counts(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    first, second = tuple(range(SLOTS)), tuple(range(10, 10 + SLOTS))
    try:
        await store.commit(Changes(buckets=[("t1", "email", 3600.0, first)]))
        await store.commit(Changes(buckets=[("t1", "email", 3600.0, second)]))
        loaded = await store.load(**ALL)
    finally:
        await store.close()
    assert loaded.buckets == [("t1", "email", 3600.0, second)]


SCHEMA_1_SEEN = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('schema', '1');
CREATE TABLE seen (key BLOB PRIMARY KEY, time REAL NOT NULL) WITHOUT ROWID;
CREATE INDEX seen_time ON seen (time);
"""


async def test_a_schema_1_file_moves_its_keys_and_loads_the_same(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    keys = [(key(i), 100.0 + (i * 7) % 50) for i in range(200)]
    con = sqlite3.connect(db)
    con.executescript(SCHEMA_1_SEEN)
    con.executemany("INSERT INTO seen VALUES (?, ?)", keys)
    con.commit()
    con.close()

    store = SqliteStore(db)
    try:
        loaded = await store.load(since=0.0, keys_since=120.0, max_keys=10**6)
        await store.commit(Changes(keys=[(key(1000), 200.0)]))
        again = await store.load(since=0.0, keys_since=120.0, max_keys=10**6)
    finally:
        await store.close()
    # Schema 1 loaded the keys at or after keys_since, oldest first.
    expected = sorted((kt for kt in keys if kt[1] >= 120.0), key=lambda kt: kt[1])
    assert [t for _, t in loaded.keys] == [t for _, t in expected]
    assert set(loaded.keys) == set(expected)
    assert again.keys == [*loaded.keys, (key(1000), 200.0)]
    assert rows(db, "SELECT value FROM meta WHERE key='schema'") == [(SCHEMA_VERSION,)]
    assert rows(db, "SELECT name FROM sqlite_master WHERE name LIKE 'seen%' ORDER BY 1") == [
        ("seen_keys",),
        ("seen_keys_newest",),
    ]


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    con = sqlite3.connect(db)
    con.executescript("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);")
    con.execute("INSERT INTO meta VALUES ('schema', '99')")
    con.commit()
    con.close()
    store = SqliteStore(db)
    try:
        with pytest.raises(Exception, match="schema version 99"):
            await store.load(**ALL)
    finally:
        await store.close()

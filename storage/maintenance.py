"""Upkeep of a DuckLake written in many small commits: every chunk a run stores is one commit, one
snapshot and one small Parquet file per table it wrote, so that after many runs a query opens thousands
of files and the catalog lists thousands of snapshots.

`maintain` merges each table's small adjacent files into few (time travel still works: a merged file
records which snapshot wrote each row), expires the snapshots older than the retention, and deletes the
files that no snapshot uses any more, reporting the lake's files, bytes and snapshots before and after.

It is safe while runs write: each step is its own short DuckLake transaction (the merge one table at a
time), and a step that loses a race with a writer's commit is rolled back whole and tried again, as
storage/db.py retries writes, so that a merge never loses or repeats a row. On a SQLite catalog a commit
fails while another connection is inside a transaction ("database is locked"), so a merge commits in the
pauses between a run's chunks; under commits without pause it is retried until wait_s and then fails
(the steps done before stay done, and no row is touched). Files are deleted once they have been unused
for `grace_minutes`, counted from when they fell out of use: a query or write begun before the merge (or
the expiry) may still read them. The files a call merges away are therefore deleted by the next call (the
weekly deployment's next run), unless grace_minutes is 0.

A DuckDB file needs none of this (DuckDB checkpoints it as each write closes it): `maintain` refuses it
with NotALake.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from adforge.storage import lake

T = TypeVar("T")
META = "__ducklake_metadata_lake"
DEFAULT_GRACE_MINUTES = 60.0
# DuckLake's default target_file_size (about 512 MB): the merge combines files smaller than the lake's own.
TARGET_FILE_SIZE = 512 * 2**20


class NotALake(ValueError):
    """`db` is a DuckDB file (or anything but a ducklake: URL)."""


@dataclass(frozen=True)
class LakeState:
    """What a lake holds, from its catalog."""

    live_files: int  # data files the latest snapshot reads: what a query opens
    files: int  # data and delete files some snapshot uses
    bytes: int  # their size
    awaiting_deletion: int  # files no snapshot uses, not deleted yet
    snapshots: int


LABELS = {
    "live_files": "data files read by the latest snapshot",
    "files": "files kept for all snapshots (data and deletes)",
    "bytes": "bytes of those files",
    "awaiting_deletion": "files no snapshot uses, awaiting deletion",
    "snapshots": "snapshots",
}


@dataclass(frozen=True)
class Upkeep:
    """What one `maintain` call found and did. In a dry run `after` is `before`, and the counts are
    what a real call would do now (`merged`: at most)."""

    before: LakeState
    after: LakeState
    merged: int  # data files combined into others
    expired: int  # snapshots expired
    deleted: int  # files deleted
    retention_days: float
    grace_minutes: float
    dry_run: bool
    seconds: float

    def rows(self) -> list[list[str]]:
        """The before/after table, with a header row (a dry run has one column: now)."""
        states = [self.before] if self.dry_run else [self.before, self.after]
        head = ["measure", "now"] if self.dry_run else ["measure", "before", "after"]
        return [head, *([label, *(f"{getattr(s, k):,}" for s in states)] for k, label in LABELS.items())]

    def summary(self) -> str:
        """One line: what was (or, in a dry run, would be) done."""
        older = f"older than {self.retention_days:g} days"
        unused = f"unused for {self.grace_minutes:g} min"
        if self.dry_run:
            return (
                f"dry run, nothing changed: would merge up to {self.merged:,} small files, expire "
                f"{self.expired:,} snapshots {older} and delete {self.deleted:,} files {unused}"
            )
        return (
            f"merged {self.merged:,} data files, expired {self.expired:,} snapshots {older}, deleted "
            f"{self.deleted:,} files {unused} ({self.seconds:.1f} s)"
        )

    def markdown(self, db: str) -> str:
        """The table and the summary as Markdown (for the Prefect artifact); `db` names the lake."""
        rows = self.rows()
        lines = [f"# Lake upkeep of `{db}`", "", f"| {' | '.join(rows[0])} |", "|---" * len(rows[0]) + "|"]
        lines += [f"| {' | '.join(r)} |" for r in rows[1:]]
        return "\n".join([*lines, "", self.summary()])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def maintain(
    url: str,
    retention_days: float,
    dry_run: bool = False,
    grace_minutes: float = DEFAULT_GRACE_MINUTES,
    wait_s: float = 60.0,
) -> Upkeep:
    """Merge the lake's small files, expire its snapshots older than retention_days and delete the files
    unused for grace_minutes; with dry_run, only say what would be done. A step that loses a race with
    another writer is tried again for up to wait_s seconds."""
    if retention_days < 0 or grace_minutes < 0:
        raise ValueError(
            f"retention days and grace minutes cannot be negative ({retention_days:g}, {grace_minutes:g})"
        )
    if not lake.is_lake(url):
        raise NotALake(
            f"{url}: not a DuckLake (db = ducklake:...); a DuckDB file needs no upkeep, DuckDB checkpoints "
            "it as each write closes it"
        )
    catalog = url.removeprefix(lake.PREFIX)
    if catalog.startswith(("sqlite:", "duckdb:")) and not Path(catalog.split(":", 1)[1]).exists():
        raise FileNotFoundError(f"{url}: no lake yet (no catalog file); run `adforge run` first")
    started = time.perf_counter()
    session = _Session(url, wait_s)
    try:
        before = session.run(state)
        if dry_run:
            merged = session.run(mergeable)
            expired = session.run(partial(_expire, retention_days=retention_days, dry_run=True))
            deleted = session.run(partial(_cleanup, grace_minutes=grace_minutes, dry_run=True))
            return Upkeep(before, before, merged, expired, deleted, retention_days, grace_minutes, True,
                          time.perf_counter() - started)  # fmt: skip
        # Rows a lake created with DATA_INLINING_ROW_LIMIT keeps in its catalog go to Parquet files first.
        session.run(lambda c: c.execute("CALL ducklake_flush_inlined_data('lake')").fetchall())
        merged = 0
        for schema, table in session.run(_tables):  # one table per transaction: writers wait less
            merged += session.run(partial(_merge, schema=schema, table=table))
        # Both count back from when they run: with 0, the snapshots and files of the merges just made go too.
        expired = session.run(partial(_expire, retention_days=retention_days, dry_run=False))
        deleted = session.run(partial(_cleanup, grace_minutes=grace_minutes, dry_run=False))
        after = session.run(state)
    finally:
        session.close()
    return Upkeep(before, after, merged, expired, deleted, retention_days, grace_minutes, False,
                  time.perf_counter() - started)  # fmt: skip


def state(con: duckdb.DuckDBPyConnection) -> LakeState:
    """The lake's files, bytes and snapshots, as its catalog lists them."""
    counts = [
        f"SELECT count(*) FROM {META}.ducklake_data_file WHERE end_snapshot IS NULL",
        f"SELECT (SELECT count(*) FROM {META}.ducklake_data_file) "
        f"+ (SELECT count(*) FROM {META}.ducklake_delete_file)",
        f"SELECT (SELECT coalesce(sum(file_size_bytes), 0) FROM {META}.ducklake_data_file) "
        f"+ (SELECT coalesce(sum(file_size_bytes), 0) FROM {META}.ducklake_delete_file)",
        f"SELECT count(*) FROM {META}.ducklake_files_scheduled_for_deletion",
        f"SELECT count(*) FROM {META}.ducklake_snapshot",
    ]
    row = con.execute(f"SELECT {', '.join(f'({c})' for c in counts)}").fetchone()
    assert row is not None
    return LakeState(*(int(v) for v in row))


def mergeable(con: duckdb.DuckDBPyConnection) -> int:
    """The latest snapshot's data files below the target file size, in tables that have two or more of
    them: at most what a merge would combine."""
    size = con.execute(
        "SELECT value FROM ducklake_options('lake') "
        "WHERE option_name = 'target_file_size' AND scope = 'GLOBAL'"
    ).fetchone()
    limit = _bytes(str(size[0])) if size else TARGET_FILE_SIZE
    row = con.execute(
        f"SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM {META}.ducklake_data_file "
        "WHERE end_snapshot IS NULL AND file_size_bytes < ? GROUP BY table_id, partition_id HAVING n > 1)",
        [limit],
    ).fetchone()
    return int(row[0]) if row else 0


def _bytes(text: str) -> int:
    """A size option as DuckLake stores it (bytes, "10000000")."""
    return int(text) if text.isdigit() else TARGET_FILE_SIZE


def _tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    return [
        (str(s), str(t))
        for s, t in con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'lake' ORDER BY 1, 2"
        ).fetchall()
    ]


def _merge(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> int:
    """One table's small adjacent files merged, in one transaction of its own; returns how many fewer
    files the table has (less any a writer added meanwhile)."""

    def files() -> int:
        row = con.execute(
            "SELECT coalesce(sum(file_count), 0) FROM ducklake_table_info('lake') WHERE table_name = ?",
            [table],
        ).fetchone()
        return int(row[0]) if row else 0

    before = files()
    con.execute("CALL ducklake_merge_adjacent_files('lake', ?, schema => ?)", [table, schema]).fetchall()
    return max(before - files(), 0)


def _expire(con: duckdb.DuckDBPyConnection, retention_days: float, dry_run: bool) -> int:
    """Expire the snapshots older than retention_days (never the latest); returns how many.

    They are named by id: DuckLake's own older_than compares the times as text in a SQLite catalog,
    where '2026-05-03 23:00:00+00' < '2026-05-03T01:00:00+00', so that it would expire every snapshot of
    the cutoff's day, some younger than the retention."""
    before = datetime.now(UTC) - timedelta(days=retention_days)
    ids = [
        int(r[0])
        for r in con.execute(
            f"SELECT snapshot_id FROM {META}.ducklake_snapshot WHERE snapshot_time::TIMESTAMPTZ < ? "
            f"AND snapshot_id < (SELECT max(snapshot_id) FROM {META}.ducklake_snapshot)",
            [before],
        ).fetchall()
    ]
    if not ids:
        return 0
    expired = con.execute(
        "CALL ducklake_expire_snapshots('lake', dry_run => ?, versions => ?)", [dry_run, ids]
    ).fetchall()
    return len(expired)


def _cleanup(con: duckdb.DuckDBPyConnection, grace_minutes: float, dry_run: bool) -> int:
    """Delete the files unused (scheduled for deletion) for grace_minutes, never one unused for less;
    returns how many.

    DuckLake's older_than has the same flaw as in _expire (in a SQLite catalog a file scheduled at any
    time of the cutoff's day counts as older), and files have no ids to name: the cutoff handed to it is
    checked first with a dry run, and moved back to the end of the day before until it picks no file
    unused for less. What that leaves is deleted by a later call."""
    unused_since = datetime.now(UTC) - timedelta(minutes=grace_minutes)
    data_path = lake.stored_data_path(con)
    due = {
        data_path + str(path) if relative else str(path)
        for path, relative in con.execute(
            f"SELECT path, path_is_relative FROM {META}.ducklake_files_scheduled_for_deletion "
            "WHERE schedule_start::TIMESTAMPTZ < ?",
            [unused_since],
        ).fetchall()
    }
    if not due:
        return 0
    cutoff = unused_since
    for _ in range(3):
        picked = _old_files(con, cutoff, dry_run=True)
        if picked and set(picked) <= due:
            return len(picked if dry_run else _old_files(con, cutoff, dry_run=False))
        day = cutoff.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        cutoff = day - timedelta(microseconds=1)
    return 0


def _old_files(con: duckdb.DuckDBPyConnection, older_than: datetime, dry_run: bool) -> list[str]:
    rows = con.execute(
        "CALL ducklake_cleanup_old_files('lake', dry_run => ?, older_than => ?)", [dry_run, older_than]
    ).fetchall()
    return [str(r[0]) for r in rows]


def _conflict(e: Exception) -> bool:
    """A step that lost a race with another writer: its commit failed (DuckLake rolled it back), or the
    catalog (SQLite) was locked by another process's commit."""
    text = str(e)
    return isinstance(e, duckdb.Error) and ("Failed to commit" in text or "database is locked" in text)


class _Session:
    """One connection to the lake, opened again after a step that lost a race (so that nothing of the
    failed transaction is left on it), and steps tried again for up to wait_s seconds each."""

    def __init__(self, url: str, wait_s: float):
        self.url, self.wait_s = url, wait_s
        self.con: duckdb.DuckDBPyConnection | None = None

    def run(self, step: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        deadline = time.monotonic() + self.wait_s
        delay = 0.05
        while True:
            try:
                if self.con is None:
                    self.con = lake.connect(self.url)
                    self.con.execute("SET enable_progress_bar = false")  # the merge's would go to stdout
                return step(self.con)
            except Exception as e:
                if not _conflict(e) or time.monotonic() >= deadline:
                    raise
                self.close()
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def close(self) -> None:
        if self.con is not None:
            self.con.close()
            self.con = None

"""The DuckDB database: short write transactions through Arrow, read-only queries."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

import duckdb
import pyarrow as pa

from adforge.storage import lake
from adforge.storage.faults import fault_point
from adforge.storage.schema import migrate

Rows: TypeAlias = pa.Table | Sequence[Any]  # an Arrow table, or dicts or dataclass records
T = TypeVar("T")


class DatabaseBusy(Exception):
    """Another process held the database for longer than we were willing to wait."""


def open_db(path: str | Path, read_only: bool = False, wait_s: float = 60.0, **config: Any):
    """Connect, waiting up to wait_s while another process holds the file (DuckDB allows one writer).
    A `ducklake:` path connects to that DuckLake instead, which takes many writers."""
    if lake.is_lake(path):
        return lake.connect(str(path), read_only, **config)
    try:
        return retrying(
            lambda: duckdb.connect(str(path), read_only=read_only, config=config), _locked, wait_s
        )
    except duckdb.IOException as e:
        if not _locked(e):
            raise
        raise DatabaseBusy(f"{path}: still in use by another process after {wait_s:.0f} s ({e})") from None


def retrying(attempt: Callable[[], T], retriable: Callable[[Exception], bool], wait_s: float) -> T:
    """Run attempt, and again while it fails with an error `retriable` accepts, for up to wait_s
    seconds (waits double from 50 ms to 1 s); then its last error is raised."""
    deadline = time.monotonic() + wait_s
    delay = 0.05
    while True:
        try:
            return attempt()
        except Exception as e:
            if not retriable(e) or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


def _locked(e: Exception) -> bool:
    """Another process holds the DuckDB file."""
    return isinstance(e, duckdb.IOException) and "lock" in str(e).lower()


def _lost_commit(e: Exception) -> bool:
    """A DuckLake commit lost a race with another writer (it is rolled back, so it can be tried again)."""
    return isinstance(e, duckdb.TransactionException) and "Failed to commit" in str(e)


class Store:
    """One DuckDB file, or a DuckLake. Each write is one short transaction, and the connection is
    closed at once after use (or `linger_s` later, see `lingering`), so the file is never held for long:
    concurrent runs or queries wait for one short transaction, or one burst of writes, at a time. On
    a DuckLake, writers do not wait for each other: a commit that lost a race is tried again."""

    def __init__(self, path: str | Path, wait_s: float = 60.0, lake_data: str = ""):
        self.lake = lake.is_lake(path)
        self.path: str | Path = str(path) if self.lake else Path(path)
        self.wait_s = wait_s
        self.linger_s = 0.0
        self._con: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.RLock()
        self._closer: threading.Timer | None = None
        if self.lake:
            with lake.connect(str(path), data_path=lake.new_data_path(str(path), lake_data)) as con:
                self._retry(lambda: lake.sync_schema(con))
            return
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with self.connect() as con:
            migrate(con)

    def _retry(self, attempt: Callable[[], T]) -> T:
        """Run attempt again while DuckLake reports a commit that lost to another writer."""
        return retrying(attempt, _lost_commit, self.wait_s) if self.lake else attempt()

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The store's connection, opened if need be; closed `linger_s` after its last use (opening and
        closing cost tens of milliseconds, so writes that follow each other closely may share one)."""
        with self._lock:
            if self._closer:
                self._closer.cancel()
            if self._con is None:
                self._con = open_db(self.path, False, self.wait_s)
            try:
                yield self._con
            except BaseException:
                self.close()  # a connection left inside a failed transaction is not used again
                raise
            finally:
                if self.linger_s <= 0:
                    self.close()
                elif self._con is not None:
                    self._closer = threading.Timer(self.linger_s, self.close)
                    self._closer.daemon = True
                    self._closer.start()

    @contextmanager
    def lingering(self, seconds: float) -> Iterator[None]:
        """Within the block, keep the connection `seconds` after each use; closed when the block ends."""
        self.linger_s = seconds
        try:
            yield
        finally:
            self.linger_s = 0.0
            self.close()

    def close(self) -> None:
        """Close the connection now (it is opened again when needed)."""
        with self._lock:
            if self._closer:
                self._closer.cancel()
            if self._con is not None:
                self._con.close()
                self._con = None

    def write(self, tables: dict[str, Rows]) -> dict[str, int]:
        """Insert rows into several tables in one transaction; rows whose key exists are skipped."""
        return self._retry(lambda: self._write(tables))

    def _write(self, tables: dict[str, Rows]) -> dict[str, int]:
        counts = {}
        with self.connect() as con:
            con.execute("BEGIN")
            for table, rows in tables.items():
                arrow = (
                    rows if isinstance(rows, pa.Table) else pa.Table.from_pylist([_columns(r) for r in rows])
                )
                if arrow.num_rows == 0:
                    counts[table] = 0
                    continue
                con.register("incoming", arrow)
                sql = (
                    lake.insert_sql(table, arrow.column_names)
                    if self.lake
                    else f"INSERT OR IGNORE INTO {table} BY NAME SELECT * FROM incoming"
                )
                inserted = con.execute(sql).fetchone()
                counts[table] = int(inserted[0]) if inserted else 0
                con.unregister("incoming")
            fault_point("db-commit")
            con.execute("COMMIT")
        return counts

    def by_ids(self, table: str, column: str, ids: list[str], columns: str = "*") -> list[dict[str, Any]]:
        """The rows of table whose column holds one of these ids."""
        if not ids:
            return []
        with self.connect() as con:
            con.register("wanted", pa.table({"id": pa.array(ids, pa.string())}))
            sql = f"SELECT {columns} FROM {table} WHERE {column} IN (SELECT id FROM wanted)"
            return _dicts(con.execute(sql))

    def existing(self, table: str, column: str, ids: list[str]) -> set[str]:
        """Which of these ids are already stored in table.column."""
        return {row[column] for row in self.by_ids(table, column, ids, column)}

    def pending(self, table: str, column: str, ids: list[str], retried: Sequence[str]) -> set[str]:
        """Which of these ids are still to make: not stored in table.column, and not failed for good
        (a failure whose kind is not one of the `retried` kinds)."""
        if not ids:
            return set()
        with self.connect() as con:
            con.register("wanted", pa.table({"id": pa.array(ids, pa.string())}))
            rows = con.execute(
                f"SELECT id FROM wanted WHERE id NOT IN (SELECT {column} FROM {table}) AND id NOT IN "
                "(SELECT item_id FROM failures WHERE NOT list_contains(?, kind))",
                [list(retried)],
            ).fetchall()
        return {r[0] for r in rows}

    def failed_briefs(self, run_id: str, kinds: Sequence[str]) -> set[str]:
        """Briefs that have a failure of one of these kinds in this run."""
        rows = self.fetch(
            "SELECT DISTINCT brief_id FROM failures WHERE run_id = ? AND list_contains(?, kind)",
            [run_id, list(kinds)],
        )
        return {r["brief_id"] for r in rows}

    def images_with_copy(self, image_ids: list[str]) -> list[dict[str, Any]]:
        """These stored images, each with the channel, headline and call to action of its copy."""
        if not image_ids:
            return []
        with self.connect() as con:
            con.register("wanted", pa.table({"id": pa.array(image_ids, pa.string())}))
            return _dicts(con.execute(
                "SELECT i.image_id, i.copy_id, i.brief_id, i.path, c.channel, c.headline, c.cta "
                "FROM images i JOIN copies c USING (copy_id) WHERE i.image_id IN (SELECT id FROM wanted) "
                "ORDER BY i.image_id"
            ))  # fmt: skip

    def fetch(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        """Rows of a query as dicts (for the pipeline's own reads)."""
        with self.connect() as con:
            return _dicts(con.execute(sql, params or []))

    def ingested(self, settings_hash: str) -> dict[str, str]:
        """Brief files already processed with these output settings: file hash → where and by which run."""
        rows = self.fetch(
            "SELECT file_hash, path, run_id FROM ingested_files WHERE settings_hash = ?", [settings_hash]
        )
        return {r["file_hash"]: f"{r['path']} by {r['run_id']}" for r in rows}

    def start_run(self, run: dict[str, Any]) -> list[str]:
        """Record a new run; runs of this host left 'running' by a dead process become 'interrupted'."""
        host = socket.gethostname()
        stale = [
            row["run_id"]
            for row in self.fetch(
                "SELECT run_id, pid FROM runs WHERE status = 'running' AND host = ?", [host]
            )
            if not _alive(row["pid"])
        ]
        for run_id in stale:
            self.finish_run(run_id, status="interrupted", error="the process ended before the run finished")
        self.write({"runs": [{**run, "host": host, "pid": os.getpid()}]})
        return stale

    def finish_run(self, run_id: str, **fields: Any) -> None:
        names = ", ".join(f"{k} = ?" for k in fields)

        def update() -> None:
            with self.connect() as con:
                con.execute(f"UPDATE runs SET {names} WHERE run_id = ?", [*fields.values(), run_id])

        self._retry(update)


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _columns(record: Any) -> dict[str, Any]:
    return record if isinstance(record, dict) else vars(record)


def _dicts(result: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in result.description or []]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def open_existing(db: str | Path, wait_s: float = 60.0, **config: Any) -> duckdb.DuckDBPyConnection:
    """A read-only connection to a database that must exist already (reading never creates one)."""
    if not lake.is_lake(db) and not Path(db).exists():
        raise FileNotFoundError(f"{db}: no database yet; run `adforge run` first")
    return open_db(db, read_only=True, wait_s=wait_s, **config)


def read_rows(db: str | Path, sql: str, params: list[Any], wait_s: float = 60.0) -> list[dict[str, Any]]:
    """Rows of a parameterised query on a read-only connection, as dicts."""
    con = open_existing(db, wait_s)
    try:
        return _dicts(con.execute(sql, params))
    finally:
        con.close()


@contextmanager
def query(db: str | Path, sql: str, wait_s: float = 60.0) -> Iterator[duckdb.DuckDBPyRelation | None]:
    """`with query(db, sql) as result:` runs a read-only query; the connection cannot write the
    database or touch other files, and closes when the block ends.

    While a run is writing, this waits for its current transaction (they are short)."""
    # A DuckLake's rows are Parquet files, which need the file access a DuckDB file does without.
    sandbox = {} if lake.is_lake(db) else {"enable_external_access": False}
    con = open_existing(db, wait_s, **sandbox)
    try:
        yield con.sql(sql)
    finally:
        con.close()

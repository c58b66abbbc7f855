"""The DuckDB database: short write transactions through Arrow, read-only queries."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

import duckdb
import platformdirs
import pyarrow as pa

from adforge.storage import lake
from adforge.storage.faults import fault_point
from adforge.storage.journal import Journal
from adforge.storage.schema import migrate, sql_literal

logger = logging.getLogger(__name__)
Rows: TypeAlias = pa.Table | Sequence[Any]  # an Arrow table, or dicts or dataclass records
T = TypeVar("T")


class DatabaseBusy(Exception):
    """Another process held the database for longer than we were willing to wait."""


class DatabaseCorrupt(Exception):
    """The file is not a DuckDB database, or is damaged."""


# How DuckDB reports a file that is not its own (or empty), cut short, or failing its checksums.
DAMAGED = ("not a valid DuckDB database file", "Could not read enough bytes", "Corrupt database file")


def open_db(path: str | Path, read_only: bool = False, wait_s: float = 60.0, **config: Any):
    """Connect, waiting up to wait_s while another process holds the file (DuckDB allows one writer).
    A `ducklake:` path connects to that DuckLake instead, which takes many writers."""
    if lake.is_lake(path):
        return lake.connect(str(path), read_only, **config)
    config = {"autoinstall_known_extensions": False, "autoload_known_extensions": False, **config}
    try:
        return retrying(
            lambda: duckdb.connect(str(path), read_only=read_only, config=config), _locked, wait_s
        )
    except duckdb.IOException as e:
        reason = str(e).removeprefix("IO Error: ")
        if any(sign in reason for sign in DAMAGED):
            raise DatabaseCorrupt(f"{path} is not a DuckDB database or is damaged ({reason})") from None
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
    """Another process holds the DuckDB file (a damaged file's "... in block at ..." is not this)."""
    return isinstance(e, duckdb.IOException) and "Could not set lock on file" in str(e)


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
        self.journal = Journal(journal_folder(path))
        if self.lake:
            with lake.connect(str(path), data_path=lake.new_data_path(str(path), lake_data)) as con:
                self._retry(lambda: lake.sync_schema(con))
        else:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            with self.connect() as con:
                migrate(con)
        for entry, tables in self.journal.orphans():
            self._retry(partial(self._write, tables))
            self.journal.done(entry)
            logger.warning(f"stored the journaled work of a run that ended before it could: {entry.name}")

    def _retry(self, attempt: Callable[[], T]) -> T:
        """Run attempt again while DuckLake reports a commit that lost to another writer."""
        return retrying(attempt, _lost_commit, self.wait_s) if self.lake else attempt()

    @contextmanager
    def connect(self, patient: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """The store's connection, opened if need be; closed `linger_s` after its last use (opening and
        closing cost tens of milliseconds, so writes that follow each other closely may share one).
        A `patient` caller waits for a file held by another process for as long as it takes."""
        with self._lock:
            if self._closer:
                self._closer.cancel()
            if self._con is None:
                self._con = self._open_patiently() if patient else open_db(self.path, False, self.wait_s)
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

    def _open_patiently(self) -> duckdb.DuckDBPyConnection:
        """Open the file, waiting while other processes hold it and saying which one does."""
        while True:
            try:
                return open_db(self.path, False, self.wait_s)
            except DatabaseBusy as e:
                logger.warning(f"waiting for {self.path}: {holder(str(e))}; finished work is kept in "
                               f"{self.journal.folder} until it is stored")  # fmt: skip

    def write(self, tables: dict[str, Rows]) -> dict[str, int]:
        """Insert rows into several tables in one transaction; rows whose key exists are skipped.
        The rows are journaled first, and the write waits for as long as another process holds the
        file: finished work is never thrown away."""
        arrow = {t: _arrow(rows) for t, rows in tables.items()}
        filled = {t: rows for t, rows in arrow.items() if rows.num_rows}
        entry = self.journal.add(filled) if filled else None
        counts = self._retry(lambda: self._write(filled, patient=True))
        if entry:
            self.journal.done(entry)
        return {t: counts.get(t, 0) for t in tables}

    def _write(self, tables: dict[str, pa.Table], patient: bool = False) -> dict[str, int]:
        counts = {}
        with self.connect(patient) as con:
            con.execute("BEGIN")
            for table, arrow in tables.items():
                counts[table] = self._insert(con, table, arrow)
            fault_point("db-commit")
            con.execute("COMMIT")
        return counts

    def _insert(self, con: duckdb.DuckDBPyConnection, table: str, arrow: pa.Table) -> int:
        """Insert rows whose key is not stored yet (inside the caller's transaction); returns how many."""
        con.register("incoming", arrow)
        sql = (
            lake.insert_sql(table, arrow.column_names)
            if self.lake
            else f"INSERT OR IGNORE INTO {table} BY NAME SELECT * FROM incoming"
        )
        inserted = con.execute(sql).fetchone()
        con.unregister("incoming")
        return int(inserted[0]) if inserted else 0

    def by_ids(self, table: str, column: str, ids: list[str], columns: str = "*") -> list[dict[str, Any]]:
        """The rows of table whose column holds one of these ids."""
        if not ids:
            return []
        with self.connect() as con:
            con.register("wanted", pa.table({"id": pa.array(ids, pa.string())}))
            sql = f"SELECT {columns} FROM {table} WHERE {column} IN (SELECT id FROM wanted)"
            return _dicts(con.execute(sql))

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
        """These stored images, each with the channel, headline and call to action of its copy, and its
        brief's brand."""
        if not image_ids:
            return []
        with self.connect() as con:
            con.register("wanted", pa.table({"id": pa.array(image_ids, pa.string())}))
            return _dicts(con.execute(
                "SELECT i.image_id, i.copy_id, i.brief_id, i.path, c.channel, c.headline, c.cta, b.brand "
                "FROM images i JOIN copies c USING (copy_id) "
                "JOIN briefs b ON b.brief_id = c.brief_id AND b.brief_hash = c.brief_hash "
                "WHERE i.image_id IN (SELECT id FROM wanted) ORDER BY i.image_id"
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

    def edit_copy(
        self,
        copy_id: str,
        field: str,
        text: str,
        checks: str,
        asset: str | None,
        creatives: Rows,
        review: Any,
    ) -> None:
        """A reviewer's edit, in one transaction: the copy's field (headline, body or cta) and its checks, the
        first value of the platform field `asset` it fills (if any), its creatives replaced by `creatives`
        (when they are new: an edit of the body draws the same ones), and the `edited` review row."""
        if field not in ("headline", "body", "cta"):
            raise ValueError(f"not an editable field: {field}")
        new = _arrow(creatives)
        tables = {"reviews": _arrow([review])} | ({"creatives": new} if new.num_rows else {})
        kept = new.column("creative_id").to_pylist() if new.num_rows else []

        def edit() -> None:
            with self.connect(patient=True) as con:
                con.execute("BEGIN")
                con.execute(
                    f"UPDATE copies SET {field} = ?, checks = ? WHERE copy_id = ?", [text, checks, copy_id]
                )
                if asset:
                    con.execute(
                        "UPDATE copy_assets SET text = ? WHERE copy_id = ? AND field = ? AND position = "
                        "(SELECT min(position) FROM copy_assets WHERE copy_id = ? AND field = ?)",
                        [text, copy_id, asset, copy_id, asset],
                    )
                if new.num_rows:
                    con.execute(
                        "DELETE FROM creatives WHERE copy_id = ? AND NOT list_contains(?, creative_id)",
                        [copy_id, kept],
                    )
                for table, rows in tables.items():
                    self._insert(con, table, rows)
                con.execute("COMMIT")

        self._retry(edit)

    def finish_run(self, run_id: str, **fields: Any) -> None:
        names = ", ".join(f"{k} = ?" for k in fields)

        def update() -> None:
            with self.connect(patient=True) as con:
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


def _arrow(rows: Rows) -> pa.Table:
    if isinstance(rows, pa.Table):
        return rows
    return pa.Table.from_pylist([row if isinstance(row, dict) else vars(row) for row in rows])


def journal_folder(db: str | Path) -> Path:
    """Beside a DuckDB file; for a DuckLake, in the user's cache folder, one per catalog."""
    if lake.is_lake(db):
        digest = hashlib.sha256(str(db).encode()).hexdigest()[:16]
        return Path(platformdirs.user_cache_dir("adforge")) / "journal" / digest
    return Path(f"{db}.journal")


def holder(message: str) -> str:
    """Which process holds a DuckDB file, from DuckDB's lock error ("... held in /usr/bin/python3
    (PID 4711) ...")."""
    found = re.search(r"held in (\S+) \(PID (\d+)\)", message)
    return f"held by PID {found[2]} ({Path(found[1]).name})" if found else "held by another process"


def _dicts(result: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in result.description or []]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def open_existing(
    db: str | Path, wait_s: float = 60.0, memory_limit: str = "2GB", threads: int = 2
) -> duckdb.DuckDBPyConnection:
    """A read-only connection to a database that must exist already (reading never creates one), locked
    down: it reads the database's own files and no others, loads no further extension, and its settings
    (memory and thread caps included) cannot change."""
    if not lake.is_lake(db) and not Path(db).exists():
        raise FileNotFoundError(f"{db}: no database yet; run `adforge run` first")
    con = open_db(db, read_only=True, wait_s=wait_s)
    try:
        # A DuckLake's rows are Parquet files under its data path, the one place left readable
        # (with DuckDB's own spill folder); a DuckDB file needs no file access at all.
        data = lake.stored_data_path(con) if lake.is_lake(db) else ""
        con.execute(f"SET allowed_directories = [{sql_literal(data) if data else ''}]")
        con.execute("SET enable_external_access = false")
        con.execute(f"SET memory_limit = {sql_literal(memory_limit)}")
        con.execute(f"SET threads = {int(threads)}")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def read_rows(
    db: str | Path, sql: str, params: list[Any], wait_s: float = 60.0, **limits: Any
) -> list[dict[str, Any]]:
    """Rows of a parameterised query on a locked-down read-only connection, as dicts."""
    con = open_existing(db, wait_s, **limits)
    try:
        return _dicts(con.execute(sql, params))
    finally:
        con.close()


class QueryRefused(ValueError):
    """A query the sandbox does not run (bad input, not a failure of the database)."""


class QueryTimeout(Exception):
    """A query ran past its time limit and was stopped."""


@contextmanager
def query(
    db: str | Path, sql: str, wait_s: float = 60.0, timeout_s: float = 60.0, **limits: Any
) -> Iterator[duckdb.DuckDBPyRelation]:
    """`with query(db, sql) as result:` runs one read-only SELECT on a locked-down connection (see
    `open_existing` and `select_only`), interrupted after timeout_s (0: never) whether it is still
    running or its result is still being read; the connection closes when the block ends.

    While a run is writing, this waits for its current transaction (they are short)."""
    con = open_existing(db, wait_s, **limits)
    stopped = threading.Event()

    def stop() -> None:
        stopped.set()
        con.interrupt()

    timer = threading.Timer(timeout_s, stop)
    if timeout_s > 0:
        timer.start()
    try:
        yield select_only(con, sql)
    except Exception as e:
        if stopped.is_set():  # DuckDB's or Arrow's error for the interruption
            raise QueryTimeout(f"query stopped after {timeout_s:g} s (--timeout)") from e
        raise
    finally:
        timer.cancel()
        if timer.is_alive():
            timer.join()  # an interrupt under way finishes before the connection closes
        con.close()


def select_only(con: duckdb.DuckDBPyConnection, sql: str) -> duckdb.DuckDBPyRelation:
    """The one SELECT statement in sql (as DuckDB's parser sees it), bound and not yet run, provided
    that every table function it calls, itself or through a view or query(), is a reading one;
    otherwise QueryRefused."""
    statements = con.extract_statements(sql)  # on the locked connection: PRAGMAs expand in the sandbox
    kinds = [s.type.name for s in statements]
    if kinds != ["SELECT"]:
        got = ", ".join(kinds) or "nothing"
        raise QueryRefused(f"only one read-only SELECT statement is allowed (got {got})")
    text = statements[0].query
    table_functions = {name for (name,) in con.execute(
        "SELECT function_name FROM duckdb_functions() WHERE function_type = 'table'"
    ).fetchall()}  # fmt: skip
    tree = con.execute("SELECT json_serialize_sql(?)", [text]).fetchone()
    _only_reading(_names(json.loads(tree[0] if tree else "{}")) & table_functions)  # before binding runs any
    relation = con.sql(statements[0])  # bound here, so its errors quote the query as the user wrote it
    explain = con.extract_statements(f"EXPLAIN (FORMAT json) {text}")
    if [s.type.name for s in explain] != ["EXPLAIN"]:
        raise QueryRefused("only one read-only SELECT statement is allowed")
    plan = con.execute(explain[0]).fetchone()
    _only_reading(_names(json.loads(plan[1] if plan else "[]")) & table_functions)  # views, query() expanded
    return relation


def _only_reading(functions: set[str]) -> None:
    """Refuse any of these table functions that is not a reading one."""
    for name in sorted(functions):
        if name not in READING_FUNCTIONS and not name.startswith(("duckdb_", "pragma_")):
            raise QueryRefused(f"{name}() is not allowed: it reaches past the database or changes it")


# Table functions a query may run: readers and globbing (held by the file access rules to the database's
# own files), generators, and DuckLake's read-only listings (besides the duckdb_* and pragma_* listings).
# Any other reaches past those rules or changes something: sqlite_scan opens any SQLite file with its own
# I/O, enable_logging writes files, checkpoint and DuckLake's maintenance functions rewrite the lake.
READING_FUNCTIONS = frozenset({
    "seq_scan", "range", "generate_series", "unnest", "repeat", "repeat_row", "summary", "query_table",
    "query", "glob", "read_parquet", "parquet_scan", "parquet_metadata", "parquet_schema",
    "parquet_file_metadata", "parquet_kv_metadata", "parquet_bloom_probe", "read_csv", "read_csv_auto",
    "sniff_csv", "read_json", "read_json_auto", "read_json_objects", "read_json_objects_auto", "read_ndjson",
    "read_ndjson_auto", "read_ndjson_objects", "read_text", "read_blob", "json_each", "json_tree",
    "icu_calendar_names", "pg_timezone_names", "test_all_types", "test_vector_types", "which_secret",
    "ducklake_snapshots", "ducklake_table_info", "ducklake_list_files", "ducklake_table_insertions",
    "ducklake_table_deletions", "ducklake_current_snapshot", "ducklake_last_committed_snapshot",
    "ducklake_options",
})  # fmt: skip


def _names(tree: Any) -> set[str]:
    """Function and operator names anywhere in DuckDB's JSON of a syntax tree or query plan, in lower case."""
    if isinstance(tree, list):
        return set().union(*map(_names, tree))
    if not isinstance(tree, dict):
        return set()
    found = {str(v).strip().lower() for k, v in tree.items() if k in ("function_name", "name", "Function")}
    return found.union(*map(_names, tree.values()))

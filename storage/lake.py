"""DuckLake: the same tables and views as the DuckDB file, kept in a catalog database (SQLite for
one host, PostgreSQL for many) with the rows as Parquet files (a folder or object storage), so that
several processes or hosts write at once and readers query snapshots.

`db = "ducklake:sqlite:data/adforge.sqlite"` selects it; any other value is a DuckDB file. DuckLake
has no PRIMARY KEY or UNIQUE constraints and no defaults other than constants, so the lake's tables
are made from what the migrations build, without them, and a write skips the rows whose key is
stored already (an anti-join on the key columns) instead of relying on INSERT OR IGNORE.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb

from adforge.storage.schema import VIEWS, comment, migrate, sql_literal, views_intact

PREFIX = "ducklake:"


def is_lake(db: str | Path) -> bool:
    return str(db).startswith(PREFIX)


def extension_directory() -> str:
    """DuckDB cannot download extensions here: the duckdb-ext-* wheels ship them as files."""
    spec = importlib.util.find_spec("duckdb_ext")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the ducklake backend needs: pip install duckdb-ext-ducklake duckdb-ext-sqlite")
    return str(Path(next(iter(spec.submodule_search_locations))) / "extensions")


def new_data_path(url: str, data_path: str) -> str:
    """The data path to create a lake with: a new catalog file gets a folder beside it (and its own
    folder made) unless one is given. An existing catalog keeps the data path it was created with."""
    catalog = Path(url.split(":", 2)[-1])
    if url.startswith(("ducklake:sqlite:", "ducklake:duckdb:")) and not catalog.exists():
        catalog.parent.mkdir(parents=True, exist_ok=True)
        return data_path or f"{catalog}.files/"
    return data_path


def connect(
    url: str, read_only: bool = False, data_path: str = "", **config: Any
) -> duckdb.DuckDBPyConnection:
    """A connection whose default database is the lake. A new catalog keeps `data_path` (empty: a
    folder beside the catalog); an existing one refuses a data path other than its own."""
    con = duckdb.connect(
        config={"extension_directory": extension_directory(), "autoinstall_known_extensions": False,
                "autoload_known_extensions": False, **config}
    )  # fmt: skip
    # Extensions are loaded here by name, never on demand by whatever a query names.
    con.execute("LOAD ducklake")
    catalog = url.removeprefix(PREFIX).split(":", 1)[0]
    if catalog in CATALOG_EXTENSIONS:
        con.execute(f"LOAD {catalog}")
    options = ["READ_ONLY"] if read_only else []
    if data_path:
        options.append(f"DATA_PATH {sql_literal(data_path)}")
    suffix = f" ({', '.join(options)})" if options else ""
    attach = f"ATTACH {sql_literal(url)} AS lake{suffix}"
    try:
        _attach(con, attach)
    except duckdb.Error as e:  # the data path is on object storage (a failed ATTACH leaves nothing behind)
        if "requires the extension httpfs" not in str(e):
            raise
        con.execute("LOAD httpfs")
        _attach(con, attach)
    con.execute("USE lake")
    if stored_data_path(con).startswith("s3://"):
        use_s3(con)
    return con


# Catalog databases opened by the extension of the same name (a DuckDB catalog needs none).
CATALOG_EXTENSIONS = ("sqlite", "postgres", "mysql")


def _attach(con: duckdb.DuckDBPyConnection, attach: str, tries: int = 5) -> None:
    """ATTACH the lake. Processes that create one new catalog at the same moment race on its tables, and
    the losers' ATTACH fails (PostgreSQL: "duplicate key value violates unique constraint"): each of those
    attaches again, and finds the catalog the winner made."""
    for attempt in range(1, tries + 1):
        try:
            con.execute(attach)
            return
        except duckdb.Error as e:
            if "Failed to initialize DuckLake" not in str(e) or attempt == tries:
                raise
        time.sleep(0.2 * attempt)


def stored_data_path(con: duckdb.DuckDBPyConnection) -> str:
    """Where the attached lake keeps its Parquet files, as its catalog records it."""
    row = con.execute(
        "SELECT value FROM __ducklake_metadata_lake.ducklake_metadata WHERE key = 'data_path'"
    ).fetchone()
    return str(row[0]) if row else ""


def use_s3(con: duckdb.DuckDBPyConnection) -> None:
    """Reach S3 (or an S3-compatible store) with the standard AWS variables, as boto3 would."""
    con.execute("LOAD httpfs")
    env = os.environ
    options = {
        "KEY_ID": env.get("AWS_ACCESS_KEY_ID"),
        "SECRET": env.get("AWS_SECRET_ACCESS_KEY"),
        "SESSION_TOKEN": env.get("AWS_SESSION_TOKEN"),
        "REGION": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
    }
    endpoint = urlsplit(env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or "")
    if endpoint.netloc:  # a store other than AWS (MinIO, a local server): path-style addressing
        options |= {"ENDPOINT": endpoint.netloc, "URL_STYLE": "path"}
        options["USE_SSL"] = "true" if endpoint.scheme == "https" else "false"
    clauses = ["TYPE s3", *(f"{k} {sql_literal(v)}" for k, v in options.items() if v)]
    con.execute(f"CREATE OR REPLACE TEMPORARY SECRET adforge_s3 ({', '.join(clauses)})")


@dataclass(frozen=True)
class Table:
    columns: tuple[tuple[str, str, bool], ...]  # name, type, NOT NULL
    key: tuple[str, ...]
    defaults: tuple[tuple[str, str], ...]  # columns whose default is an expression: name, expression


@cache
def model() -> dict[str, Table]:
    """Every table as the migrations leave it, read from an in-memory DuckDB database."""
    con = duckdb.connect()
    migrate(con)
    keys = {t: tuple(cols) for t, cols in con.execute(
        "SELECT table_name, constraint_column_names FROM duckdb_constraints() "
        "WHERE constraint_type = 'PRIMARY KEY'"
    ).fetchall()}  # fmt: skip
    tables: dict[str, Table] = {}
    for table, name, kind, nullable, default in con.execute(
        "SELECT table_name, column_name, data_type, is_nullable, column_default FROM duckdb_columns() "
        "WHERE NOT internal AND table_name IN (SELECT table_name FROM duckdb_tables()) "
        "ORDER BY table_name, column_index"
    ).fetchall():
        t = tables.setdefault(table, Table((), keys.get(table, ()), ()))
        expression = ((name, default),) if default is not None else ()
        tables[table] = Table((*t.columns, (name, kind, not nullable)), t.key, t.defaults + expression)
    con.close()
    return tables


def sync_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the tables and columns the lake lacks, then the views and comments, in one transaction: one
    snapshot, not one per statement (a new lake's ~200 comments took 8 s on SQLite and on PostgreSQL;
    in one commit, 1 s). A commit that loses a race with another process is rolled back whole."""
    con.execute("BEGIN")
    try:
        _sync_schema(con)
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):  # a failed COMMIT has rolled back already
            con.execute("ROLLBACK")
        raise


def _sync_schema(con: duckdb.DuckDBPyConnection) -> None:
    have: dict[str, set[str]] = {}
    for table, column in con.execute(
        "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = 'lake'"
    ).fetchall():
        have.setdefault(table, set()).add(column)
    changed = False
    for table, spec in model().items():
        if table not in have:
            columns = ", ".join(f"{n} {t}{' NOT NULL' if nn else ''}" for n, t, nn in spec.columns)
            con.execute(f"CREATE TABLE {table} ({columns})")
            changed = True
            continue
        for name, kind, _ in spec.columns:
            if name not in have[table]:
                con.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
                changed = True
    if changed or not views_intact(con):
        con.execute(VIEWS)
    comment(con, view_columns=False)


def insert_sql(table: str, incoming: list[str]) -> str:
    """INSERT of the registered `incoming` rows whose key is not stored yet, with the expression
    defaults (created_at) the lake cannot hold filled in."""
    spec = model()[table]
    extra = "".join(f", {expr} AS {name}" for name, expr in spec.defaults if name not in incoming)
    new = (
        f"(SELECT * FROM incoming ANTI JOIN {table} USING ({', '.join(spec.key)}))"
        if spec.key
        else "incoming"
    )
    return f"INSERT INTO {table} BY NAME SELECT *{extra} FROM {new}"

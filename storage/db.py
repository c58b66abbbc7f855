"""The DuckDB database: short write transactions through Arrow, read-only queries."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeAlias

import duckdb
import pyarrow as pa

from storage.schema import migrate

Rows: TypeAlias = pa.Table | list[dict[str, Any]]


class Store:
    """One DuckDB file. Each write opens, commits and closes, so the file is never held for long."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.connect() as con:
            migrate(con)

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        con = duckdb.connect(str(self.path), read_only=read_only)
        try:
            yield con
        finally:
            con.close()

    def write(self, tables: dict[str, Rows]) -> dict[str, int]:
        """Insert rows into several tables in one transaction; rows whose key exists are skipped."""
        counts = {}
        with self.connect() as con:
            con.execute("BEGIN")
            for table, rows in tables.items():
                arrow = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(rows)
                if arrow.num_rows == 0:
                    counts[table] = 0
                    continue
                con.register("incoming", arrow)
                inserted = con.execute(
                    f"INSERT OR IGNORE INTO {table} BY NAME SELECT * FROM incoming"
                ).fetchone()
                counts[table] = int(inserted[0]) if inserted else 0
                con.unregister("incoming")
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

    def fetch(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        """Rows of a query as dicts (for the pipeline's own reads)."""
        with self.connect() as con:
            return _dicts(con.execute(sql, params or []))

    def start_run(self, run: dict[str, Any]) -> None:
        self.write({"runs": [run]})

    def finish_run(self, run_id: str, **fields: Any) -> None:
        names = ", ".join(f"{k} = ?" for k in fields)
        with self.connect() as con:
            con.execute(f"UPDATE runs SET {names} WHERE run_id = ?", [*fields.values(), run_id])


def _dicts(result: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in result.description or []]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def query(db: str | Path, sql: str) -> duckdb.DuckDBPyRelation | None:
    """Run a read-only query; the connection cannot write the database or touch other files."""
    if not Path(db).exists():
        raise FileNotFoundError(f"{db}: no database yet; run `adforge run` first")
    con = duckdb.connect(str(db), read_only=True, config={"enable_external_access": False})
    return con.sql(sql)

"""Query results and whole runs as files for other tools: CSV, JSON or Parquet."""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from adforge.storage.db import open_existing

FORMATS = ("table", "csv", "json", "parquet")
# Every table with a run_id column; `adforge export` writes one Parquet file per table.
RUN_TABLES = ("runs", "run_stages", "briefs", "rejected_briefs", "copies", "images", "creatives", "failures",
              "ingested_files")  # fmt: skip


def write_result(table: pa.Table, fmt: str, out: str | None) -> None:
    """Write a query result as csv, json (an array of objects) or parquet, to a file or stdout."""
    if fmt == "parquet":
        if out is None:
            raise ValueError("--format parquet needs --out FILE")
        pq.write_table(table, out)
    elif fmt == "csv":
        with _open(out) as f:
            pa_csv.write_csv(_flat(table), f)
    elif fmt == "json":
        text = json.dumps(table.to_pylist(), ensure_ascii=False, default=str, indent=1) + "\n"
        with _open(out) as f:
            f.write(text.encode())
    else:
        raise ValueError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")


def export_run(
    db: str | Path, out_dir: str | Path, run_id: str | None, wait_s: float = 60.0
) -> dict[str, int]:
    """One Parquet file per table with the rows of run_id (all rows if None); returns rows per table."""
    con = open_existing(db, wait_s)
    try:
        if run_id and not con.execute("SELECT 1 FROM runs WHERE run_id = ?", [run_id]).fetchall():
            raise ValueError(f"no run {run_id!r} in {db}")
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        counts = {}
        where, params = ("WHERE run_id = ?", [run_id]) if run_id else ("", [])
        for name in RUN_TABLES:
            table = con.sql(f"SELECT * FROM {name} {where}", params=params).to_arrow_table()
            pq.write_table(table, out / f"{name}.parquet")
            counts[name] = table.num_rows
        return counts
    finally:
        con.close()


def _flat(table: pa.Table) -> pa.Table:
    """CSV has no lists or structs: such columns become JSON text."""
    for i, column in enumerate(table.schema):
        if pa.types.is_nested(column.type):
            text = [None if v is None else json.dumps(v, default=str) for v in table.column(i).to_pylist()]
            table = table.set_column(i, column.name, pa.array(text, pa.string()))
    return table


def _open(out: str | None) -> Any:
    """The file, or standard output's byte stream (left open)."""
    return open(out, "wb") if out else nullcontext(sys.stdout.buffer)

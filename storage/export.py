"""Query results and whole runs as files for other tools: CSV, JSON or Parquet, written batch by batch."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from adforge.storage.db import open_existing

FORMATS = ("table", "csv", "json", "parquet")
# Every table with a run_id column; `adforge export` writes one Parquet file per table.
RUN_TABLES = ("runs", "run_stages", "briefs", "rejected_briefs", "rejected_files", "copies", "images",
              "creatives", "failures", "ingested_files", "copy_assets", "reviews", "segments")  # fmt: skip
# The tables that hold ads: exported for approved ads only, unless pending and rejected ones are asked for.
AD_TABLES = ("copies", "images", "creatives", "copy_assets")
APPROVED = "copy_id IN (SELECT copy_id FROM v_review_status WHERE status = 'approved')"
BATCH_ROWS = 65_536  # rows held in memory at once while a result is written


def write_result(batches: pa.RecordBatchReader, fmt: str, out: str | None) -> int:
    """Write a query result as csv, json (an array of objects) or parquet, to a file or stdout, one
    batch at a time so that memory does not grow with the result; returns the number of rows."""
    if fmt not in FORMATS[1:]:
        raise ValueError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    if fmt == "parquet" and out is None:
        raise ValueError("--format parquet needs --out FILE")
    rows = 0
    with _open(out) as f:
        if fmt == "parquet":
            with pq.ParquetWriter(f, batches.schema) as parquet:
                for batch in batches:
                    parquet.write_batch(batch)
                    rows += batch.num_rows
        elif fmt == "csv":
            schema = pa.schema(
                [(c.name, pa.string()) if pa.types.is_nested(c.type) else c for c in batches.schema]
            )
            with pa_csv.CSVWriter(f, schema) as csv:
                for batch in batches:
                    csv.write_batch(_flat(batch, schema))
                    rows += batch.num_rows
        else:
            f.write(b"[")
            for batch in batches:
                for row in batch.to_pylist():
                    text = json.dumps(row, ensure_ascii=False, default=str)
                    f.write(("\n" if rows == 0 else ",\n").encode() + text.encode())
                    rows += 1
            f.write(b"\n]\n")
    return rows


def export_run(
    db: str | Path,
    out_dir: str | Path,
    run_id: str | None,
    wait_s: float = 60.0,
    include_pending: bool = False,
    **limits: Any,
) -> dict[str, int]:
    """One Parquet file per table with the rows of run_id (all rows if None), read on the same
    locked-down connection as `adforge query`; the ads' tables (AD_TABLES) hold approved ads only unless
    include_pending. Returns rows per table."""
    con = open_existing(db, wait_s, **limits)
    try:
        if run_id and not con.execute("SELECT 1 FROM runs WHERE run_id = ?", [run_id]).fetchall():
            raise ValueError(f"no run {run_id!r} in {db}")
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        params = [run_id] if run_id else []
        return {
            name: write_result(
                con.sql(
                    f"SELECT * FROM {name} WHERE {_where(name, run_id, include_pending)}", params=params
                ).fetch_record_batch(BATCH_ROWS),
                "parquet",
                str(out / f"{name}.parquet"),
            )
            for name in RUN_TABLES
        }
    finally:
        con.close()


def _where(table: str, run_id: str | None, include_pending: bool) -> str:
    # A review has no run: it belongs to the run of the ad it decides on.
    of_run = (
        "item_id IN (SELECT copy_id FROM copies WHERE run_id = ?)" if table == "reviews" else "run_id = ?"
    )
    conditions = ([of_run] if run_id else []) + (
        [APPROVED] if table in AD_TABLES and not include_pending else []
    )
    return " AND ".join(conditions) or "true"


def _flat(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """CSV has no lists or structs: such columns become JSON text."""
    columns = [
        pa.array([None if v is None else json.dumps(v, default=str) for v in column.to_pylist()], pa.string())
        if pa.types.is_nested(column.type)
        else column
        for column in batch.columns
    ]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


@contextmanager
def _open(out: str | None) -> Iterator[BinaryIO]:
    """Standard output's byte stream (left open), or the file: written under a temporary name and
    renamed once complete, so that a query that fails or is stopped leaves no partial file."""
    if out is None:
        yield sys.stdout.buffer
        return
    partial = Path(f"{out}.partial")
    try:
        with open(partial, "wb") as f:
            yield f
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)

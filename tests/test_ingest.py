"""Incremental ingestion of a drop folder: each file's content is processed once per set of settings."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adforge.flows.generate_campaigns import generate_campaigns
from adforge.flows.settings import Settings
from adforge.tasks.sample_briefs import COLUMNS, SAMPLE_BRIEFS

SMALL = {"channels": ["display"], "variants": 1, "images_per_copy": 0}
BRIEFS = [dict(zip(COLUMNS, row, strict=True)) | SMALL for row in SAMPLE_BRIEFS[:2]]


def write(path: Path, briefs: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(briefs), path)


def scalar(db: str, sql: str):
    with duckdb.connect(db, read_only=True) as con:
        return con.execute(sql).fetchone()[0]


@pytest.fixture
def run(settings: Settings, tmp_path: Path):
    drop = tmp_path / "drop"

    def run(**overrides):
        return generate_campaigns(briefs=[str(drop)], settings=settings.to_dict() | overrides)

    return run, drop, settings.db


def test_copied_renamed_and_edited_files(run):
    run, drop, db = run
    write(drop / "monday.parquet", BRIEFS)
    first = run()
    assert (first["files_new"], first["files_skipped"], first["briefs_read"]) == (1, 0, 2)
    made = first["copies"] + first["failures"]
    assert made == 2

    # The same content under two other names: nothing is read, nothing generated, and the run says so.
    shutil.copy(drop / "monday.parquet", drop / "monday-copy.parquet")
    (drop / "monday.parquet").rename(drop / "renamed.parquet")
    again = run()
    assert (again["files_new"], again["files_skipped"], again["briefs_read"]) == (0, 2, 0)
    assert (again["copies"], again["failures"]) == (0, 0)
    assert again["note"] == "no generation: all 2 brief files were processed before"
    assert "load_text_model_s" not in again

    # An edited file is read again; only its changed brief gets new copy.
    edited = [BRIEFS[0], BRIEFS[1] | {"key_message": "Now with twice the battery life."}]
    write(drop / "renamed.parquet", edited)
    third = run()
    assert (third["files_new"], third["briefs_read"]) == (1, 2)
    assert third["copies"] + third["failures"] == 1
    changed = scalar(db, f"SELECT list(DISTINCT brief_id) FROM copies WHERE run_id = '{third['run_id']}'")
    assert changed in ([BRIEFS[1]["brief_id"]], [])
    assert scalar(db, "SELECT count(*) FROM ingested_files") == 2

    # Reading everything again regardless of the ledger still makes nothing twice.
    # (The folder holds both versions now, so the later file's rows are rejected as duplicate ids.)
    forced = run(incremental=False)
    assert (forced["files_new"], forced["files_skipped"], forced["briefs_rejected"]) == (2, 0, 2)
    assert (forced["copies"], forced["failures"]) == (0, 0)


def test_file_with_engine_errors_is_read_again(run, monkeypatch: pytest.MonkeyPatch):
    run, drop, db = run
    write(drop / "tuesday.parquet", BRIEFS[:1])
    monkeypatch.setenv("ADFORGE_FAULT", "raise:generate-copy:*")  # the engine fails every try
    failed = run()
    assert failed["failures"] == 1 and failed["status"] == "completed_with_failures"
    assert scalar(db, "SELECT count(*) FROM ingested_files") == 0
    monkeypatch.delenv("ADFORGE_FAULT")
    retried = run()
    assert (retried["files_new"], retried["copies"] + retried["failures"]) == (1, 1)
    assert scalar(db, "SELECT count(*) FROM ingested_files") == 1


def test_failures_that_would_recur_are_not_retried(run):
    run, drop, db = run
    write(drop / "tuesday.parquet", BRIEFS[:1])
    # No prompt fits in 2048 - 1900 tokens: the copy fails before reaching the engine, every time.
    failed = run(max_tokens=1900)
    assert failed["failures"] == 1 and scalar(db, "SELECT count(*) FROM ingested_files") == 1
    again = run(max_tokens=1900, incremental=False)  # reads the file again
    assert (again["briefs_read"], again["failures"]) == (1, 0), "the failure is final for these settings"
    assert "load_text_model_s" not in again

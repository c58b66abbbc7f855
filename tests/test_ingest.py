"""Incremental ingestion of a drop folder: each file's content is processed once per set of settings."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fakes import FAKES

from adforge.flows import generate_campaigns as generate_campaigns_module
from adforge.flows.cli import main
from adforge.flows.generate_campaigns import generate_campaigns
from adforge.flows.settings import Settings
from adforge.tasks.sample_briefs import COLUMNS, SAMPLE_BRIEFS

SMALL = {"channels": ["display"], "variants": 1, "images_per_copy": 0}
BRIEFS = [dict(zip(COLUMNS, row, strict=True)) | SMALL for row in SAMPLE_BRIEFS[:2]]
BRIEFS_MORE = [dict(zip(COLUMNS, row, strict=True)) | SMALL for row in SAMPLE_BRIEFS[2:4]]


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


def test_unusable_files_are_set_aside_and_tried_again(run):
    """A half-uploaded file and a stray non-Parquet file do not hold back the good one."""
    run, drop, db = run
    write(drop / "good.parquet", BRIEFS)
    write(drop / "later.parquet", [BRIEFS[0] | {"brief_id": "later-01"}])
    whole = (drop / "later.parquet").read_bytes()
    (drop / "later.parquet").write_bytes(whole[: len(whole) // 2])  # still uploading
    (drop / "notes.parquet").write_text("brief_id,brand\n1,Acme\n")
    first = run()
    assert (first["files_new"], first["files_rejected"], first["briefs_read"]) == (1, 2, 2)
    assert first["copies"] + first["failures"] == 2 and first["status"] == "completed"
    rejected = db_rows(db, "SELECT path, file_hash, reason FROM rejected_files ORDER BY path")
    assert [(Path(p).name, r) for p, _, r in rejected] == [
        ("later.parquet", "not a readable Parquet file (ArrowInvalid)"),
        ("notes.parquet", "not a readable Parquet file (ArrowInvalid)"),
    ]
    assert all(len(h) == 64 for _, h, _ in rejected)
    assert [Path(p).name for (p,) in db_rows(db, "SELECT path FROM ingested_files")] == ["good.parquet"]
    assert scalar(db, f"SELECT files_rejected FROM v_run_summary WHERE run_id = '{first['run_id']}'") == 2

    (drop / "later.parquet").write_bytes(whole)  # the upload finished
    second = run()
    assert (second["files_new"], second["files_skipped"], second["files_rejected"]) == (1, 1, 1)
    assert (second["briefs_read"], second["copies"] + second["failures"]) == (1, 1)
    assert scalar(db, "SELECT count(*) FROM ingested_files") == 2


def test_partitioned_folders_and_any_suffix_case(run):
    run, drop, _ = run
    write(drop / "year=2024" / "month=01" / "a.PARQUET", BRIEFS[:1])
    write(drop / "year=2024" / "month=02" / "b.Parquet", BRIEFS[1:])
    summary = run()
    made = summary["copies"] + summary["failures"]
    assert (summary["files_new"], summary["briefs_read"], made) == (2, 2, 2)


def db_rows(db: str, sql: str) -> list[tuple]:
    with duckdb.connect(db, read_only=True) as con:
        return con.execute(sql).fetchall()


def adforge(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "adforge.flows.cli", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)


def test_run_on_a_folder_without_brief_files_exits_2(tmp_path: Path):
    (tmp_path / "drop" / "year=2024").mkdir(parents=True)
    (tmp_path / "drop" / "readme.txt").write_text("briefs go here")
    result = adforge("run", "drop", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (2, "adforge: error: drop: no Parquet files found\n")
    assert not (tmp_path / "data").exists(), "nothing is created"


def test_run_with_no_usable_file_exits_2_naming_each(tmp_path: Path):
    (tmp_path / "drop").mkdir()
    (tmp_path / "drop" / "a.parquet").write_text("not parquet")
    pq.write_table(pa.table({"brief_id": ["x"]}), tmp_path / "drop" / "b\x1b[31m.parquet")
    result = adforge("run", "drop", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        "adforge: error: drop/a.parquet: not a readable Parquet file (ArrowInvalid); "
        "drop/b\\x1b[31m.parquet: missing required column 'brand'\n"
    )
    assert not (tmp_path / "data").exists()


def test_run_with_a_partly_usable_set_goes_ahead(settings: Settings, tmp_path: Path):
    drop = tmp_path / "drop"
    write(drop / "good.parquet", BRIEFS[:1])
    (drop / "bad.parquet").write_text("not parquet")
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in FAKES.items()]
    assert main(["run", str(drop), "--db", settings.db, "--artifacts", settings.artifacts, *flags]) == 0
    rejected = db_rows(settings.db, "SELECT path FROM rejected_files")
    assert [Path(p).name for (p,) in rejected] == ["bad.parquet"]
    assert scalar(settings.db, "SELECT count(*) FROM briefs") == 1


def test_untrusted_text_is_logged_and_printed_on_one_line(
    run, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture
):
    run, drop, _ = run
    forged = "\n2026-01-01 00:00:00.000 | INFO    | prefect - all good \x1b[2K"
    write(drop / "rows.parquet", [BRIEFS[0] | {"brief_id": f"x{forged}", "channels": [f"tiktok{forged}"]}])
    (drop / f"file{forged}.parquet").write_text("not parquet")
    os.mkfifo(drop / f"pipe{forged}.parquet")
    summary = run()
    assert (summary["briefs_rejected"], summary["files_rejected"]) == (1, 1)
    messages = [r.getMessage() for r in caplog.records]
    ours = [m for m in messages if "all good" in m]
    assert len(ours) == 3, messages  # the rejected row, the rejected file, the FIFO passed over
    for m in messages:
        assert "\n" not in m and "\x1b" not in m, m
    assert any("rejected row 0 of" in m and "tiktok\\n2026-01-01" in m and "\\x1b[2k" in m for m in ours)
    printed = capsys.readouterr().out
    assert "\x1b" not in printed and "all good" not in printed


def test_a_run_in_slices_stores_what_a_run_in_one_piece_does(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The flow plans a slice of briefs (then of copies and images) at a time; slices of 2 jobs give
    the tables one slice of everything gives."""
    briefs = [b | {"channels": ["display", "x"], "images_per_copy": 1} for b in BRIEFS]
    write(tmp_path / "briefs.parquet", briefs)

    def tables(name: str) -> dict[str, set]:
        db = str(tmp_path / name / "a.duckdb")
        where = {"db": db, "artifacts": str(tmp_path / name)}
        generate_campaigns(briefs=[str(tmp_path / "briefs.parquet")], settings=settings.to_dict() | where)
        keys = {"copies": "copy_id", "images": "image_id", "creatives": "creative_id"}
        with duckdb.connect(db, read_only=True) as con:
            return {t: set(con.execute(f"SELECT {key} FROM {t}").fetchall()) for t, key in keys.items()}

    whole = tables("whole")
    monkeypatch.setattr(generate_campaigns_module, "SLICE", 2)
    sliced = tables("sliced")
    assert sliced == whole and len(whole["copies"]) >= 3 and whole["creatives"]


def test_a_report_lists_its_first_ads_and_counts_them_all(run, monkeypatch: pytest.MonkeyPatch):
    run, drop, _ = run
    write(drop / "tuesday.parquet", BRIEFS + BRIEFS_MORE)
    monkeypatch.setattr(generate_campaigns_module, "REPORT_ROWS", 2)
    summary = run()
    page = Path(summary["report"]).read_text()
    assert summary["copies"] >= 3, summary
    assert f"Copy written by this run ({summary['copies']}; the first 2 shown" in page
    shown = [b["brief_id"] for b in BRIEFS + BRIEFS_MORE if f"<small>{b['brief_id']}</small>" in page]
    assert len(shown) == 2

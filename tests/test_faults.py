"""Nothing lost, nothing twice: kills, engine faults, a full disk, concurrent writers, hostile input."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fakes import FAKES
from prefect.settings import PREFECT_API_URL

from adforge.flows.generate_campaigns import generate_campaigns
from adforge.storage.artifacts import ArtifactError

BRIEFS = [
    {"brief_id": "alpha", "brand": "Nordbrew", "product": "Cold brew", "audience": "commuters",
     "key_message": "Coffee in 30 seconds", "channels": ["x", "google_search"], "variants": 2},
    {"brief_id": "beta", "brand": "PeakGear", "product": "Rain jacket", "audience": "hikers",
     "key_message": "Stay dry", "channels": ["email"], "variants": 3},
]  # fmt: skip
# 7 copies in 2 chunks (4 + 3), 7 images in 4 batches; 2 samples per copy keep the runs short.
SMALL_CHUNKS = {"copy_chunk_size": 4, "image_batch_size": 2, "copy_attempts": 2}


def write_briefs(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def cli_run(briefs: Path, root: Path, fault: str | None = None) -> subprocess.CompletedProcess:
    """`adforge run` on the fake generators in its own process group, reporting to this session's
    Prefect server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADFORGE_")}
    env["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
    env["PYTHONPATH"] = str(Path(__file__).parent)  # where the fakes are
    if fault:
        env["ADFORGE_FAULT"] = fault
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in (SMALL_CHUNKS | FAKES).items()]
    cmd = [sys.executable, "-m", "adforge.flows.cli", "run", str(briefs), f"--db={root / 'a.duckdb'}",
           f"--artifacts={root / 'art'}", "--quiet", *flags]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        out, err = proc.communicate(timeout=900)
    finally:
        with contextlib.suppress(ProcessLookupError):  # whatever the killed run had started
            os.killpg(proc.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def snapshot(root: Path) -> dict:
    """What a finished run leaves behind, independent of when and in how many tries it was made."""
    with duckdb.connect(str(root / "a.duckdb"), read_only=True) as con:
        copies = dict(con.execute("SELECT copy_id, headline || '|' || body FROM copies").fetchall())
        images = {r[0]: r[1] for r in con.execute("SELECT image_id, path FROM images").fetchall()}
        briefs = con.execute("SELECT count(*), count(DISTINCT (brief_id, brief_hash)) FROM briefs").fetchone()
    files = {p.name for p in (root / "art" / "images").iterdir()}
    return {"copies": copies, "image_ids": set(images), "briefs": briefs, "files": files,
            "paths": {Path(p).name for p in images.values()}}  # fmt: skip


@pytest.mark.slow
def test_killed_runs_resume_to_the_same_tables(tmp_path: Path):
    briefs = write_briefs(tmp_path / "briefs.parquet", BRIEFS)
    # The uninterrupted run to compare with, in this process.
    clean = tmp_path / "clean"
    summary = generate_campaigns(
        briefs=[str(briefs)],
        settings={"db": str(clean / "a.duckdb"), "artifacts": str(clean / "art"), **SMALL_CHUNKS, **FAKES},
    )
    expected = snapshot(clean)
    assert len(expected["copies"]) + summary["failures"] == 7 and len(expected["copies"]) >= 3

    root = tmp_path / "killed"
    # Each run is killed at a different point; the next one picks up from there.
    for fault in ["kill:briefs-read:1", "kill:copy-written:1", "kill:image-file-written:3",
                  "kill:db-commit:3"]:  # fmt: skip
        result = cli_run(briefs, root, fault)
        assert result.returncode == -9, (fault, result.stderr[-3000:])
    final = cli_run(briefs, root)
    assert final.returncode == 0, final.stderr[-3000:]

    got = snapshot(root)
    assert got["copies"] == expected["copies"], "same ids and the same text"
    assert got["image_ids"] == expected["image_ids"]
    assert got["briefs"] == expected["briefs"]
    assert got["files"] == got["paths"], "no file without its row, no row without its file"
    with duckdb.connect(str(root / "a.duckdb"), read_only=True) as con:
        statuses = [r[0] for r in con.execute("SELECT status FROM runs ORDER BY started_at").fetchall()]
        per_run = con.execute(
            "SELECT count(c.copy_id) FROM runs r LEFT JOIN copies c USING (run_id) "
            "GROUP BY r.run_id, r.started_at ORDER BY r.started_at"
        ).fetchall()
    assert statuses[:4] == ["interrupted"] * 4 and statuses[4].startswith("completed")
    # The run killed after its first chunk keeps that chunk; the next one writes only the rest.
    first_chunk, rest = per_run[1][0], per_run[2][0]
    assert first_chunk <= 4 and rest <= 3 and first_chunk + rest == len(got["copies"])

    again = cli_run(briefs, root)
    assert again.returncode == 0 and snapshot(root) == got, "a finished run's rerun changes nothing"


def test_engine_fault_fails_one_chunk_and_a_rerun_retries_only_it(
    settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    briefs = str(write_briefs(tmp_path / "briefs.parquet", BRIEFS))
    overrides = {**settings.to_dict(), **SMALL_CHUNKS}
    # The first chunk fails on its first try and on both declared retries; the second chunk works.
    monkeypatch.setenv("ADFORGE_FAULT", "raise:generate-copy:1,raise:generate-copy:2,raise:generate-copy:3")
    first = generate_campaigns(briefs=[briefs], settings=overrides)
    assert first["status"] == "completed_with_failures"
    with duckdb.connect(settings.db, read_only=True) as con:
        reasons = con.execute("SELECT reason, attempts FROM failures WHERE reason LIKE 'engine%'").fetchall()
        ruled_out = con.execute("SELECT count(*) FROM failures WHERE reason NOT LIKE 'engine%'").fetchone()[0]
    assert reasons == [("engine error: injected fault at generate-copy #3", 3)] * 4
    assert first["copies"] + ruled_out == 3  # the second chunk: copies, or samples that broke a rule

    monkeypatch.delenv("ADFORGE_FAULT")
    second = generate_campaigns(briefs=[briefs], settings=overrides)
    assert second["copies"] + second["failures"] == 4, "only the engine's failures are tried again"


def test_full_disk_fails_the_run_without_claiming_images(
    settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    briefs = str(write_briefs(tmp_path / "briefs.parquet", BRIEFS[:1]))

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("adforge.storage.artifacts.os.fsync", disk_full)
    with pytest.raises(ArtifactError, match="No space left on device"):
        generate_campaigns(briefs=[briefs], settings=settings.to_dict())
    with duckdb.connect(settings.db, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM images").fetchone()[0] == 0
        status, error = con.execute("SELECT status, error FROM runs").fetchone()
    assert status == "failed" and "No space left on device" in error
    assert list((Path(settings.artifacts) / "images").iterdir()) == []


def test_unwritable_artifacts_folder_stops_with_its_name(settings, tmp_path: Path):
    briefs = str(write_briefs(tmp_path / "briefs.parquet", BRIEFS[:1]))
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    overrides = {**settings.to_dict(), "artifacts": str(blocker)}
    with pytest.raises(ArtifactError, match=f"artifacts folder {blocker}/images is not writable"):
        generate_campaigns(briefs=[briefs], settings=overrides)

"""`adforge lake maintain`: a DuckLake written in many small commits, merged, its old snapshots expired
and its unused files deleted, with every row kept, also while a run writes."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from adforge.flows.cli import main
from adforge.flows.lake_upkeep import maintain_lake
from adforge.storage.db import Store, read_rows
from adforge.storage.maintenance import LABELS, maintain

COMMITS = 60  # small writes, each one commit: a snapshot and a Parquet file per table written
EXPIRED_AT, KEPT_AT = 40, 50  # the commits whose snapshots the retention test looks back at

# A run's writes, as tests/test_lake.py's WRITER makes them, chunk after chunk until told to stop, with
# a pause for each chunk's generation (a run's chunk takes seconds to generate, and then one commit).
WRITER = """
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from adforge.storage.db import Store

db, run_id, stop = sys.argv[1], sys.argv[2], Path(sys.argv[3])
store = Store(db)
store.start_run({"run_id": run_id, "status": "running", "started_at": datetime.now(UTC)})
chunk = 0
with store.lingering(0.5):  # as a run keeps its connection between chunks
    while chunk < 6 or not stop.exists() and chunk < 300:
        copies = [
            {"copy_id": f"{run_id}-{chunk}-{i}", "run_id": run_id, "brief_id": f"b{i % 3}", "brief_hash": "h",
             "channel": "x", "variant": 1, "headline": f"H{chunk}", "body": "B", "cta": "Shop now",
             "image_prompt": "p", "attempts": 1, "seed": i, "text_model": "m", "sampling": "{}",
             "prompt": "[]", "prompt_tokens": 1, "output_tokens": 1}
            for i in range(10)
        ]
        assert store.write({"copies": copies}) == {"copies": 10}
        time.sleep(0.5)
        chunk += 1
        if chunk == 1:
            print("writing", flush=True)
store.finish_run(run_id, status="completed")
print(chunk, flush=True)
"""


@dataclass(frozen=True)
class Lake:
    db: str
    folder: Path
    snapshots: dict[int, int]  # commit number → the snapshot it made


def copy_row(run_id: str, chunk: int, i: int) -> dict:
    return {
        "copy_id": f"{run_id}-{chunk:03d}-{i}", "run_id": run_id, "brief_id": f"b{i % 3}", "brief_hash": "h",
        "channel": "instagram", "variant": i % 3 + 1, "headline": f"Nordbrew {chunk}",
        "body": "Nordbrew makes barista coffee at home in thirty seconds.", "cta": "Shop now",
        "image_prompt": "a glass of iced coffee", "attempts": 1, "seed": chunk * 10 + i, "text_model": "m",
        "sampling": "{}", "prompt": "[]", "prompt_tokens": 200, "output_tokens": 80,
    }  # fmt: skip


def image_row(copy: dict) -> dict:
    return {
        "image_id": f"img-{copy['copy_id']}", "copy_id": copy["copy_id"], "run_id": copy["run_id"],
        "brief_id": copy["brief_id"], "image_index": 0, "prompt": "p", "path": f"/a/{copy['copy_id']}.png",
        "width": 64, "height": 64, "steps": 2, "guidance_scale": 0.0, "seed": copy["seed"],
        "image_model": "tiny-sd", "sha256": "0" * 64, "bytes": 100,
    }  # fmt: skip


def brief_row(i: int) -> dict:
    return {
        "brief_id": f"b{i}", "brief_hash": "h", "run_id": "run-1", "brand": "Nordbrew",
        "product": "Cold brew", "audience": "commuters", "key_message": "Coffee at home", "tone": "warm",
        "channels": ["instagram"], "variants": 3, "images_per_copy": 1, "banned_words": [], "language": "en",
    }  # fmt: skip


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """A lake written in COMMITS small commits (copies and their images, 5 of each per commit), made once:
    each test takes a copy (`lake`)."""
    folder = tmp_path_factory.mktemp("lake-template")
    db = f"ducklake:sqlite:{folder / 'lake.sqlite'}"
    store = Store(db)
    snapshots = {}
    with store.lingering(5):  # the connection stays open between commits, as in a run
        store.write({"briefs": [brief_row(i) for i in range(3)]})
        for chunk in range(1, COMMITS + 1):
            copies = [copy_row("run-1", chunk, i) for i in range(5)]
            store.write({"copies": copies, "images": [image_row(c) for c in copies]})
            if chunk in (EXPIRED_AT, KEPT_AT):
                snapshots[chunk] = store.fetch("SELECT id FROM ducklake_current_snapshot('lake')")[0]["id"]
    return Lake(db, folder, snapshots)


@pytest.fixture
def lake(template: Lake, tmp_path: Path) -> Lake:
    """A copy of the template lake (its catalog names its data folder by absolute path: moved here)."""
    folder = tmp_path / "lake"
    shutil.copytree(template.folder, folder)
    data_path = f"{folder / 'lake.sqlite.files'}/"
    with sqlite3.connect(folder / "lake.sqlite") as catalog:
        catalog.execute("UPDATE ducklake_metadata SET value = ? WHERE key = 'data_path'", [data_path])
    return Lake(f"ducklake:sqlite:{folder / 'lake.sqlite'}", folder, template.snapshots)


def parquet_files(lake: Lake) -> int:
    return len(list(lake.folder.rglob("*.parquet")))


def contents(db: str) -> list[dict]:
    """Counts and checksums of the ads and the copies, per run."""
    return read_rows(db, "SELECT 'v_assets' AS what, run_id, count(*) AS n, count(DISTINCT copy_id) AS ids, "
                         "sum(hash(copy_id, headline, body, image_paths, created_at)) AS checksum "
                         "FROM v_assets GROUP BY run_id UNION ALL "
                         "SELECT 'copies', run_id, count(*), count(DISTINCT copy_id), sum(hash(c)) "
                         "FROM copies c GROUP BY run_id ORDER BY 1, 2", [])  # fmt: skip


def test_maintain_merges_small_files_and_expires_old_snapshots(lake: Lake):
    # The snapshots up to commit EXPIRED_AT are made a month old; those after it stay recent.
    with sqlite3.connect(lake.folder / "lake.sqlite") as catalog:
        catalog.execute(
            "UPDATE ducklake_snapshot SET snapshot_time = '2000-01-01 00:00:00+00' WHERE snapshot_id <= ?",
            [lake.snapshots[EXPIRED_AT]],
        )
    before, files_before = contents(lake.db), parquet_files(lake)
    assert [(r["what"], r["n"], r["ids"]) for r in before] == [("copies", 300, 300), ("v_assets", 300, 300)]

    dry = maintain(lake.db, retention_days=7, dry_run=True, grace_minutes=0)
    assert dry.after == dry.before and parquet_files(lake) == files_before
    assert dry.merged >= 2 * COMMITS - 2 and dry.expired == lake.snapshots[EXPIRED_AT] + 1

    upkeep = maintain(lake.db, retention_days=7, grace_minutes=0)
    assert upkeep.before == dry.before
    assert upkeep.before.live_files >= 2 * COMMITS and upkeep.after.live_files <= 5  # briefs, copies, images
    assert upkeep.expired == dry.expired and upkeep.after.awaiting_deletion == 0
    assert upkeep.after.snapshots <= upkeep.before.snapshots - upkeep.expired + 2  # + a merge's each
    assert parquet_files(lake) == upkeep.after.files < files_before / 10  # the unused ones are deleted
    assert contents(lake.db) == before  # every row, once, unchanged

    # Time travel: to an expired snapshot it fails, to one within the retention it still works (across
    # the merged files), and the latest is all of it.
    at = "SELECT count(*) AS n FROM copies AT (VERSION => {})"
    with pytest.raises(duckdb.Error, match="snapshot"):
        read_rows(lake.db, at.format(lake.snapshots[EXPIRED_AT]), [])
    assert read_rows(lake.db, at.format(lake.snapshots[KEPT_AT]), []) == [{"n": 5 * KEPT_AT}]
    old = read_rows(lake.db, "SELECT count(*) AS n FROM ducklake_snapshots('lake') WHERE snapshot_time < ?",
                    [datetime(2001, 1, 1, tzinfo=UTC)])  # fmt: skip
    assert old == [{"n": 0}]

    again = maintain(lake.db, retention_days=7, grace_minutes=0)  # nothing left to do
    assert (again.merged, again.expired, again.deleted) == (0, 0, 0) and again.after == again.before


def test_files_merged_away_wait_for_the_grace_period(lake: Lake):
    """A write or query begun before the merge may still read the old files: they stay until unused for
    grace_minutes (the next weekly run deletes them)."""
    files_before = parquet_files(lake)
    upkeep = maintain(lake.db, retention_days=7)  # the default grace: an hour
    assert upkeep.after.live_files < upkeep.before.live_files and upkeep.deleted == 0
    assert upkeep.after.awaiting_deletion >= 2 * COMMITS and parquet_files(lake) == files_before + 2
    assert maintain(lake.db, retention_days=7, grace_minutes=0).deleted == upkeep.after.awaiting_deletion


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_maintain_while_a_run_writes_keeps_every_row_once(lake: Lake, tmp_path: Path):
    before = contents(lake.db)
    stop = tmp_path / "stop"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, lake.db, "run-w", str(stop)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        started = writer.stdout.readline() if writer.stdout else ""
        assert started == "writing\n", writer.stderr and writer.stderr.read()
        # The most eager upkeep there is, twice while the writer commits chunk after chunk.
        upkeeps = [maintain(lake.db, retention_days=0, grace_minutes=0, wait_s=120) for _ in range(2)]
        stop.touch()
        out, err = writer.communicate(timeout=240)
    finally:
        writer.kill()
    assert writer.returncode == 0, err
    chunks = int(out.split()[-1])
    assert upkeeps[0].merged >= 2 * COMMITS - 2  # the template's files, merged while the writer wrote
    for _ in range(2):  # as it stands, and after one more upkeep with the writer done
        rows = contents(lake.db)
        assert [r for r in rows if r["run_id"] == "run-1"] == before  # every row of the lake, once
        written = [(r["what"], r["n"], r["ids"]) for r in rows if r["run_id"] == "run-w"]
        assert written == [("copies", 10 * chunks, 10 * chunks), ("v_assets", 10 * chunks, 10 * chunks)]
        runs = read_rows(lake.db, "SELECT run_id, status FROM runs", [])
        assert runs == [{"run_id": "run-w", "status": "completed"}]  # its UPDATE too: one row
        maintain(lake.db, retention_days=0, grace_minutes=0)


def test_cli_prints_the_before_and_after_table(lake: Lake, capsys):
    assert main(["lake", "maintain", "--db", lake.db, "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["measure", "now"]
    assert out[-1].startswith("dry run, nothing changed: would merge")
    assert main(["lake", "maintain", "--db", lake.db, "--retention-days", "0", "--grace-minutes", "0"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["measure", "before", "after"]
    rows = {line[:48].strip(): line[48:].split() for line in out[1:-1]}
    assert list(rows) == list(LABELS.values())  # files, bytes, snapshots
    before, after = (int(n.replace(",", "")) for n in rows["snapshots"])
    assert after == 1 < before
    assert out[-1].startswith("merged ") and "older than 0 days" in out[-1]


def test_the_flow_publishes_the_table(lake: Lake):
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    result = maintain_lake(settings={"db": lake.db, "lake_retention_days": 7}, dry_run=True)
    assert result["dry_run"] and result["before"]["live_files"] >= 2 * COMMITS
    key = ArtifactFilter(key=ArtifactFilterKey(any_=["lake-upkeep"]))
    with get_client(sync_client=True) as client:
        [artifact] = client.read_artifacts(artifact_filter=key, limit=1)
    assert artifact.type == "markdown" and "| snapshots |" in str(artifact.data)
    assert "dry run, nothing changed" in str(artifact.data)


def test_a_duckdb_file_is_not_a_lake(tmp_path: Path, capsys):
    db = tmp_path / "adforge.duckdb"
    Store(db)
    assert main(["lake", "maintain", "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"adforge: error: {db}: not a DuckLake (db = ducklake:...)")
    assert maintain_lake(settings={"db": str(db)})["skipped"].startswith(f"{db}: not a DuckLake")
    missing = f"ducklake:sqlite:{tmp_path / 'none.sqlite'}"
    assert main(["lake", "maintain", "--db", missing]) == 1 and not (tmp_path / "none.sqlite").exists()
    assert "no lake yet" in capsys.readouterr().err
    assert main(["lake", "maintain", "--db", missing, "--retention-days", "-1"]) == 2

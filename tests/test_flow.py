"""The whole flow on the sample briefs: real engine, real pipeline, real DuckDB file, real Prefect run."""

from __future__ import annotations

import hashlib
from pathlib import Path
from uuid import UUID

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from prefect.client.orchestration import get_client

from flows.generate_campaigns import generate_campaigns
from tasks.sample_briefs import write_sample_briefs


class Reader:
    """Opens the database read-only per query, so that a later run in this process may write it."""

    def __init__(self, db: str):
        self.db = db

    def rows(self, sql: str) -> list[tuple]:
        with duckdb.connect(self.db, read_only=True) as con:
            return con.execute(sql).fetchall()

    def scalar(self, sql: str):
        return self.rows(sql)[0][0]

    def counts(self, *tables: str) -> dict[str, int]:
        return {t: self.scalar(f"SELECT count(*) FROM {t}") for t in tables}


@pytest.fixture(scope="module")
def run(models_dir: str, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("flow")
    write_sample_briefs(root / "briefs" / "sample.parquet")
    bad = {"brief_id": "bad-1", "brand": "Acme", "product": "Anvil", "audience": "coyotes",
           "key_message": "Heavy.", "channels": ["tiktok"]}  # fmt: skip
    pq.write_table(pa.Table.from_pylist([bad]), root / "briefs" / "more.parquet")
    settings = {"models_dir": models_dir, "db": str(root / "a.duckdb"), "artifacts": str(root / "art")}
    summary = generate_campaigns(briefs=[str(root / "briefs")], settings=settings)
    return summary, Reader(settings["db"]), settings


def test_counts_match_briefs_channels_variants(run):
    summary, db, _ = run
    expected = db.scalar("SELECT sum(len(channels) * variants) FROM briefs")
    copies = db.scalar("SELECT count(*) FROM copies")
    copy_failures = db.scalar("SELECT count(*) FROM failures WHERE stage = 'copy'")
    assert copies + copy_failures == expected == 57
    assert copies >= 50, db.rows("SELECT reason FROM failures")
    images = db.scalar("SELECT count(*) FROM images")
    wanted = db.scalar("SELECT sum(b.images_per_copy) FROM copies JOIN briefs b USING (brief_id, brief_hash)")
    assert images == wanted
    assert (summary["copies"], summary["images"], summary["briefs_read"]) == (copies, images, 12)


def test_bad_row_is_set_aside_with_reason(run):
    _, db, _ = run
    rows = db.rows("SELECT brief_id, source_row, source_file, reason FROM rejected_briefs")
    assert len(rows) == 1
    brief_id, row, file, reason = rows[0]
    assert (brief_id, row) == ("bad-1", 0) and file.endswith("more.parquet")
    assert reason.startswith("channels: unknown channel 'tiktok'")


def test_every_image_file_exists_with_its_hash(run):
    _, db, settings = run
    for path, sha256 in db.rows("SELECT path, sha256 FROM images"):
        assert Path(path).is_relative_to(Path(settings["artifacts"]).resolve())
        assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == sha256
    files = list((Path(settings["artifacts"]) / "images").glob("*.png"))
    assert len(files) == db.scalar("SELECT count(*) FROM images")


def test_lineage_joins_are_complete(run):
    _, db, _ = run
    orphans = {
        "copy without brief": "SELECT count(*) FROM copies ANTI JOIN briefs USING (brief_id, brief_hash)",
        "image without copy": "SELECT count(*) FROM images ANTI JOIN copies USING (copy_id)",
        "copy without run": "SELECT count(*) FROM copies ANTI JOIN runs USING (run_id)",
        "image of other brief": "SELECT count(*) FROM images i JOIN copies c USING (copy_id) "
        "WHERE i.brief_id <> c.brief_id",
    }
    assert {name: db.scalar(sql) for name, sql in orphans.items()} == dict.fromkeys(orphans, 0)


def test_run_row_and_prefect_flow_run(run):
    summary, db, _ = run
    status, flow_run_id = db.rows("SELECT status, flow_run_id FROM runs")[0]
    assert status == summary["status"] in {"completed", "completed_with_failures"}
    stages = [r[0] for r in db.rows("SELECT stage FROM run_stages ORDER BY stage")]
    assert stages == sorted(["read", "load_text_model", "copy", "load_image_model", "image"])
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(UUID(flow_run_id))
        task_names = {t.name for t in client.read_task_runs()}
    assert flow_run.state.is_completed()
    batches = -(-summary["images"] // 8)  # image_batch_size
    assert {"generate-copy[chunk 1/1]", f"generate-images[batch {batches}/{batches}]"} <= task_names


def test_rerun_adds_nothing(run):
    _, db, settings = run
    before = db.counts("copies", "images", "briefs")
    briefs = str(Path(settings["db"]).parent / "briefs")
    summary = generate_campaigns(briefs=[briefs], settings=settings)
    assert (summary["copies"], summary["images"]) == (0, 0)
    assert "load_text_model_s" not in summary, "no engine is loaded when there is nothing to do"
    assert db.counts("copies", "images", "briefs") == before

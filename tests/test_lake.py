"""The DuckLake backend: concurrent writers from several processes, and a whole run stored there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adforge.flows.cli import main
from adforge.flows.generate_campaigns import generate_campaigns
from adforge.flows.settings import Settings
from adforge.storage.db import Store, read_rows
from adforge.tasks.sample_briefs import COLUMNS, SAMPLE_BRIEFS

WRITER = """
import sys
from datetime import UTC, datetime
from adforge.storage.db import Store

store = Store(sys.argv[1])
run_id = sys.argv[2]
store.start_run({"run_id": run_id, "status": "running", "started_at": datetime.now(UTC)})
for chunk in range(20):
    copies = [
        {"copy_id": f"{run_id}-{chunk}-{i}", "run_id": run_id, "brief_id": f"b{i}", "brief_hash": "h",
         "channel": "x", "variant": 1, "headline": "H", "body": "B", "cta": "Shop now",
         "image_prompt": "p", "attempts": 1, "seed": i, "text_model": "m", "sampling": "{}",
         "prompt": "[]", "prompt_tokens": 1, "output_tokens": 1}
        for i in range(25)
    ]
    assert store.write({"copies": copies}) == {"copies": 25}
store.finish_run(run_id, status="completed")
"""


@pytest.mark.slow
def test_two_processes_write_one_lake_at_once(tmp_path: Path):
    db = f"ducklake:sqlite:{tmp_path / 'lake.sqlite'}"
    Store(db, lake_data=str(tmp_path / "files"))  # created once; the writers race on the rows only
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, db, run_id], stderr=subprocess.PIPE, text=True)
        for run_id in ("run-a", "run-b")
    ]
    for w in writers:
        assert w.wait(timeout=300) == 0, w.stderr.read() if w.stderr else ""
    rows = read_rows(db, "SELECT run_id, count(*) AS n, count(DISTINCT copy_id) AS ids FROM copies "
                         "GROUP BY run_id ORDER BY run_id", [])  # fmt: skip
    assert rows == [{"run_id": "run-a", "n": 500, "ids": 500}, {"run_id": "run-b", "n": 500, "ids": 500}]
    runs = read_rows(db, "SELECT run_id, status FROM runs ORDER BY run_id", [])
    assert runs == [{"run_id": "run-a", "status": "completed"}, {"run_id": "run-b", "status": "completed"}]
    assert list((tmp_path / "files").rglob("*.parquet")), "rows are Parquet files in the data path"
    # Writing the same rows again adds nothing: keys are checked without a PRIMARY KEY.
    store = Store(db)
    again = [{"copy_id": "run-a-0-0", "run_id": "run-c", "brief_id": "b0", "brief_hash": "h",
              "channel": "x", "variant": 1, "headline": "H", "body": "B", "cta": "Shop now",
              "image_prompt": "p"}]  # fmt: skip
    assert store.write({"copies": again}) == {"copies": 0}


def test_a_run_stored_in_a_lake_on_object_storage(settings: Settings, tmp_path: Path, s3_bucket: str, capsys):
    """Rows as Parquet files and images, creatives and the report as objects, all on S3."""
    briefs = tmp_path / "briefs.parquet"
    brief = dict(zip(COLUMNS, SAMPLE_BRIEFS[0], strict=True)) | {"channels": ["x"], "variants": 2}
    pq.write_table(pa.Table.from_pylist([brief]), briefs)
    db = f"ducklake:sqlite:{tmp_path / 'lake.sqlite'}"
    s3 = {"db": db, "lake_data": f"s3://{s3_bucket}/lake/", "artifacts": f"s3://{s3_bucket}/art"}
    summary = generate_campaigns([str(briefs)], settings.to_dict() | s3 | {"copy_attempts": 2})
    assert summary["copies"] + summary["failures"] == 2 and summary["copies"] >= 1
    assets = read_rows(
        db, "SELECT copy_id, images, image_paths, creative_paths, created_at FROM v_assets", []
    )
    assert len(assets) == summary["copies"] and all(a["images"] == 1 and a["created_at"] for a in assets)
    objects = fsspec.filesystem("s3")
    for path in [p for a in assets for p in a["image_paths"] + a["creative_paths"]]:
        assert path.startswith(f"s3://{s3_bucket}/art/") and objects.cat_file(path).startswith(b"\x89PNG")
    assert summary["report"] == f"s3://{s3_bucket}/art/reports/{summary['run_id']}.html"
    assert "src='../creatives/creative-" in objects.cat_file(summary["report"]).decode()
    assert objects.find(f"{s3_bucket}/lake", withdirs=False), "the lake's rows are Parquet objects"
    assert not list(tmp_path.rglob("*.parquet"))[1:], "nothing but the briefs is a local Parquet file"
    assert main(["query", "--db", db, "--format", "csv", "select status from runs"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f'"{summary["status"]}"'  # CSV quotes strings

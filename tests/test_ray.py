"""The Ray executor on a local Ray cluster: the same outputs as the local executor, with engines kept
loaded in the Ray workers across tasks."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from adforge.flows.generate_campaigns import generate_campaigns
from adforge.flows.settings import Settings
from adforge.tasks.sample_briefs import COLUMNS, SAMPLE_BRIEFS

# Two sample briefs, two variants on one channel each: 2 copy chunks of 2, two candidates per copy;
# one image per copy, in batches of 4.
SMALL = {"copy_chunk_size": 2, "image_batch_size": 4, "copy_attempts": 2, "copy_candidates": 2}


def outputs(db: str) -> dict:
    with duckdb.connect(db, read_only=True) as con:
        return {
            "copies": con.execute(
                "SELECT copy_id, headline, body, cta, image_prompt FROM copies ORDER BY 1"
            ).fetchall(),
            "failures": con.execute("SELECT item_id, reason FROM failures ORDER BY 1").fetchall(),
            "images": con.execute("SELECT image_id, copy_id FROM images ORDER BY 1").fetchall(),
            "creatives": con.execute("SELECT count(*) FROM creatives").fetchone()[0],
            "loads": con.execute("SELECT items FROM run_stages WHERE stage = 'load_text_model'").fetchall(),
        }


@pytest.mark.slow
def test_ray_executor_gives_the_local_outputs(real_settings: Settings, tmp_path: Path):
    briefs = tmp_path / "briefs.parquet"
    rows = [dict(zip(COLUMNS, r, strict=True)) for r in SAMPLE_BRIEFS[:2]]
    rows = [{**r, "channels": r["channels"][:1], "variants": 2} for r in rows]
    pq.write_table(pa.Table.from_pylist(rows), briefs)
    runs = {}
    for executor in ("local", "ray"):
        root = tmp_path / executor
        overrides = {"db": str(root / "a.duckdb"), "artifacts": str(root / "art"), "executor": executor,
                     "ray_cpus_per_task": 2, **SMALL}  # fmt: skip
        settings = real_settings.to_dict() | overrides
        runs[executor] = generate_campaigns(briefs=[str(briefs)], settings=settings)
    local, ray = outputs(str(tmp_path / "local" / "a.duckdb")), outputs(str(tmp_path / "ray" / "a.duckdb"))

    assert len(local["copies"]) + len(local["failures"]) == 4 and len(local["copies"]) >= 1
    assert ray["copies"] == local["copies"], "same ids and the same text"
    assert ray["failures"] == local["failures"]
    assert ray["images"] == local["images"] and len(ray["images"]) == len(local["copies"])
    assert ray["creatives"] == local["creatives"] == len(local["images"])
    # Both chunks ran in one Ray worker (each task takes both CPUs), which started its engine once.
    assert ray["loads"] == [(1,)]

    run_id = runs["ray"]["run_id"]
    with duckdb.connect(str(tmp_path / "ray" / "a.duckdb"), read_only=True) as con:
        flow_run_id = con.execute("SELECT flow_run_id FROM runs WHERE run_id = ?", [run_id]).fetchone()[0]
    with get_client(sync_client=True) as client:
        this_run = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        task_runs = client.read_task_runs(flow_run_filter=this_run)
    names = sorted(t.name for t in task_runs if t.state and t.state.is_completed())
    batches = -(-len(ray["images"]) // SMALL["image_batch_size"])
    assert [n for n in names if n.startswith("generate-")] == [
        "generate-copy[chunk 1/2]", "generate-copy[chunk 2/2]",
        *(f"generate-images[batch {i}/{batches}]" for i in range(1, batches + 1)),
    ]  # fmt: skip


def test_unknown_executor_is_refused(settings: Settings, tmp_path: Path):
    with pytest.raises(ValueError, match="executor: expected local or ray, got 'spark'"):
        generate_campaigns(briefs=[str(tmp_path)], settings=settings.to_dict() | {"executor": "spark"})

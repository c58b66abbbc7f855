"""What a two-node Ray cluster costs over the local executor, with no model time in either: the orchestration
overhead of sending copy chunks and image batches to Ray workers on other nodes.

The cluster is the one tests/test_multi_node.py runs on: a head and a worker node, each a `ray start` with one
CPU, on this machine, with token authentication. The sample briefs (`write_sample_briefs`) go through the
whole flow on the fake generators (tests/fakes.py; hashing score model), once with executor=local and once
with executor=ray on the cluster, each into a fresh database and artifacts folder; `--rounds` repeats the
pair. Each Ray run is a Ray job of its own (a new driver), and a Ray worker serves one job: every Ray run
starts its workers, one process per node, which import adforge and Prefect on their first task (and keep
them, with the generators, for the run's later tasks: `max_calls=0`). Later rounds differ from the first
only in what the machine has cached.

Reported: the cluster's start (first `ray start` until both nodes are alive and the state API answers) and
stop, each run's wall seconds (the whole flow call, Prefect's temporary server already started) beside the
run's own stage seconds, and ray / local; and for the Ray runs, how many tasks each node ran and how long they
ran (Ray's own record, through its state API)."""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import save, timed

TESTS = Path(__file__).resolve().parent.parent / "tests"


def run(briefs: Path, root: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """One flow run into its own database and artifacts folder: wall seconds and the run's stage seconds."""
    from adforge.flows.generate_campaigns import generate_campaigns

    root.mkdir(parents=True)
    settings = settings | {"db": str(root / "a.duckdb"), "artifacts": str(root / "artifacts")}
    with timed() as t:
        summary = generate_campaigns([str(briefs)], settings)
    keys = ("copies", "images", "creatives", "failures", "copy_s", "image_s", "creative_s", "wall_s")
    return {"wall_s": round(t["s"], 2), **{f"run_{k}" if k == "wall_s" else k: summary[k] for k in keys}}


def ray_tasks(dashboard: str, nodes: dict[str, str]) -> list[dict[str, Any]]:
    """Per Ray job (one per Ray run) and task name, as Ray recorded them (task events, through the state
    API): finished tasks per node, and the seconds they ran (start to end in the worker, the Prefect task run
    inside included): in all, the median and the longest (a worker's first task imports adforge)."""
    from ray.util.state import list_tasks

    name = {node_id: resource for resource, node_id in nodes.items()}
    time.sleep(3)  # workers report task events to the GCS about every second
    runs: dict[tuple[str, str], list] = {}
    for t in list_tasks(address=dashboard, detail=True, limit=10_000, raise_on_missing_output=False):
        if t.name.startswith("generate-") and t.state == "FINISHED":
            runs.setdefault((t.job_id, t.name), []).append(t)
    rows = []
    for (job, task), tasks in sorted(runs.items()):
        seconds = [(t.end_time_ms - t.start_time_ms) / 1000 for t in tasks]
        per_node = Counter(name.get(t.node_id, t.node_id) for t in tasks)
        counts = {n: per_node.get(n, 0) for n in sorted(nodes)}
        spread = {"run_s": round(sum(seconds), 2), "median_s": round(statistics.median(seconds), 3),
                  "max_s": round(max(seconds), 2)}  # fmt: skip
        rows.append({"ray job": job, "task": task, **counts, **spread})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2, help="local and Ray runs, one pair per round")
    parser.add_argument("--chunk", type=int, default=8, help="copy_chunk_size: copy variants per task")
    parser.add_argument("--batch", type=int, default=4, help="image_batch_size: images per task")
    args = parser.parse_args()
    sys.path.insert(0, str(TESTS))  # the fakes and the cluster of the test
    from fakes import FAKES
    from prefect.testing.utilities import prefect_test_harness
    from test_multi_node import two_node_cluster

    from adforge.tasks.sample_briefs import write_sample_briefs

    settings = {**FAKES, "quiet": True, "copy_chunk_size": args.chunk, "image_batch_size": args.batch,
                "ray_cpus_per_task": 1}  # fmt: skip
    table: list[dict[str, Any]] = []
    cluster_s: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, prefect_test_harness(server_startup_timeout=120):
        briefs = Path(tmp) / "briefs" / "sample.parquet"
        write_sample_briefs(briefs)
        with two_node_cluster() as cluster:
            cluster_s["start_s"] = round(cluster.start_s, 2)
            cluster_s["ready_after_s"] = cluster.phases
            for r in range(1, args.rounds + 1):
                for executor in ("local", "ray"):
                    ex = {"executor": executor} | (
                        {"ray_address": cluster.address} if executor == "ray" else {}
                    )
                    result = run(briefs, Path(tmp) / f"{executor}-{r}", settings | ex)
                    table.append({"round": r, "executor": executor, **result})
                    print(table[-1], flush=True)
            tasks = ray_tasks(cluster.dashboard, cluster.nodes)
            stopping = time.perf_counter()
        cluster_s["stop_s"] = round(time.perf_counter() - stopping, 2)
    for row in table:
        if row["executor"] == "ray":
            local = next(x for x in table if x["round"] == row["round"] and x["executor"] == "local")
            row["ray / local"] = round(row["wall_s"] / local["wall_s"], 2)
        else:
            row["ray / local"] = ""
    ray_runs = [x for x in table if x["executor"] == "ray"]
    ratios = {f"2-node ray / local wall, round {x['round']}": x["ray / local"] for x in ray_runs}
    save(
        "multi_node",
        {
            "nodes": 2,
            "cpus_per_node": 1,
            "copy_chunk_size": args.chunk,
            "image_batch_size": args.batch,
            "cluster": cluster_s,
            "ray_tasks": tasks,
            "table": table,
            "ratios": ratios,
        },
    )


if __name__ == "__main__":
    main()

"""A million-brief rehearsal: the whole flow over 10 k to 1 M planned ads through Ray, stored in a DuckLake
whose catalog is a real PostgreSQL server, with the no-op text generator (bench.overhead:NoopText: no model
time, every copy valid), so that what grows with the number of ads is adforge's own work.

Each brief plans 5 segments × 2 locales × 1 channel × 3 variants = 30 ads; images_per_copy is 0 (a million
image files is a file-system test, not one of the flow). Copy chunks are copy_chunk_size ads (2,048 as in
deploy/gpu.toml). Each size runs in a process of its own, into a new lake (a new database on the cluster),
and reports: wall seconds, Prefect task runs created, peak memory of the flow process, the lake's commits
(snapshots) and data files, and microseconds per planned ad; the ratio of the largest size's cost per ad to
the smallest's is the measure of how it grows (target: flat within 1.2×)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from bench.common import peak_rss_mib, save

SEGMENTS = ["early risers", "night owls", "students", "parents", "retirees"]
LOCALES = ["en-US", "en-GB"]
VARIANTS = 3
ADS_PER_BRIEF = len(SEGMENTS) * len(LOCALES) * VARIANTS


def write_briefs(path: Path, ads: int) -> int:
    briefs = -(-ads // ADS_PER_BRIEF)
    rows = [{"brief_id": f"b{i:07d}", "brand": f"Brand{i % 97}", "product": "Cold brew concentrate",
             "audience": "coffee drinkers", "key_message": f"Barista coffee at home, offer {i}",
             "channels": ["x"], "variants": VARIANTS, "images_per_copy": 0, "segments": SEGMENTS,
             "locales": LOCALES} for i in range(briefs)]  # fmt: skip
    pq.write_table(pa.Table.from_pylist(rows), path)
    return briefs * ADS_PER_BRIEF


def one(ads: int, db: str, folder: Path, chunk: int, models_dir: str) -> dict:
    """One size in this process: the flow's own figures and the lake's."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    from adforge.flows.generate_campaigns import generate_campaigns
    from adforge.storage.db import Store

    planned = write_briefs(folder / "briefs.parquet", ads)
    settings = {"db": db, "lake_data": str(folder / "lake"), "artifacts": str(folder / "artifacts"),
                "quiet": True, "executor": "ray", "text_generator": "bench.overhead:NoopText",
                "score_model": "hashing", "copy_chunk_size": chunk, "models_dir": models_dir}  # fmt: skip
    with prefect_test_harness(server_startup_timeout=120):
        # Ray's workers start from this process's environment: they report to the same Prefect server.
        os.environ["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
        started = time.perf_counter()
        summary = generate_campaigns([str(folder / "briefs.parquet")], settings)
        wall = time.perf_counter() - started
        tasks = _task_runs()
    store = Store(db)
    meta = "__ducklake_metadata_lake"
    lake = store.fetch(f"SELECT (SELECT count(*) FROM {meta}.ducklake_snapshot) AS commits, "
                       f"(SELECT count(*) FROM {meta}.ducklake_data_file) AS files")[0]  # fmt: skip
    return {"planned_ads": planned, "copies": summary["copies"], "failures": summary["failures"],
            "wall_s": round(wall, 1), "us_per_ad": round(1e6 * wall / planned, 1),
            "prefect_task_runs": tasks, "flow_peak_rss_mib": peak_rss_mib(), **lake}  # fmt: skip


def _task_runs() -> int:
    """Prefect task runs on this process's own server: those of the one flow run it has seen."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        tasks, page = 0, None
        while page is None or len(page) == 200:  # the API answers 200 task runs at most
            page = client.read_task_runs(offset=tasks, limit=200)
            tasks += len(page)
    return tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--sizes", default="10000,100000,1000000", help="planned ads per run, comma-separated"
    )
    parser.add_argument("--chunk", type=int, default=2048, help="copy_chunk_size (default: 2048)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a size, in this process
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--models-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.db, Path(args.folder), args.chunk, args.models_dir)))
        return
    from adforge.flows.settings import Settings
    from bench.postgres import throwaway_cluster

    rows = []
    with tempfile.TemporaryDirectory() as tmp, throwaway_cluster() as cluster:
        for ads in map(int, args.sizes.split(",")):
            folder = Path(tmp) / f"run-{ads}"
            folder.mkdir()
            db = cluster.new_lake(f"rehearsal_{ads}")
            command = [sys.executable, "-m", "bench.rehearsal", "--one", str(ads), "--db", db,
                       "--folder", str(folder), "--chunk", str(args.chunk),
                       "--models-dir", Settings().models_dir]  # fmt: skip
            out = subprocess.run(command, capture_output=True, text=True, env=cluster.env())
            if out.returncode:
                raise RuntimeError(f"the run of {ads} ads failed: {out.stderr[-3000:]}")
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    smallest, largest = rows[0], rows[-1]
    ratios = {
        f"us per ad {largest['planned_ads']} / {smallest['planned_ads']}": round(
            largest["us_per_ad"] / smallest["us_per_ad"], 2
        ),
        f"planned ads per s at {largest['planned_ads']}": round(1e6 / largest["us_per_ad"]),
    }
    targets = {f"us per ad {largest['planned_ads']} / {smallest['planned_ads']}": "<= 1.2"}
    save("rehearsal", {"ads_per_brief": ADS_PER_BRIEF, "chunk": args.chunk, "table": rows, "ratios": ratios,
                       "targets": targets})  # fmt: skip


if __name__ == "__main__":
    main()

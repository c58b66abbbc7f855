"""Run the benchmarks, each in its own process, and write bench/RESULTS.md from their JSON results.

Quick mode (default, about an hour on 2 CPU cores) uses fewer requests and sizes; --full uses the
sizes the targets are stated for. Model choice follows the usual settings (adforge.toml, ADFORGE_*),
so the same suite measures bigger models on a GPU."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from bench.common import RESULTS

HERE = Path(__file__).parent
QUICK = {
    # (c) runs in batches of 16 whatever the count, so its rate needs only one batch here.
    "copy_stage": ["--requests", "32", "--batched", "16", "--single", "4"],
    "image_stage": ["--images", "64"],
    "uploads": [],  # 256 files per size and worker count: 2-3 minutes on 2 cores
    # 0c867aa: the last commit before the pipeline got its generator interfaces and typed records.
    "overhead": ["--sizes", "100,1000,10000", "--rows", "30000", "--against", "0c867aa"],
    "rules": [],
    "best_of_n": ["--candidates", "4"],
    "chaos": ["--kills", "20"],
    "end_to_end": [],
    "engine_start": [],
    "prefix_cache": ["--rounds", "1"],
    # About 6 CPU minutes; --full's 100,000 planned ads per scenario (where the target is stated) about 19.
    "segments_scale": ["--ads", "30000"],
    # A two-node Ray cluster on this machine against the local executor, fake generators: 2-3 minutes.
    "multi_node": ["--rounds", "2"],
    # A lake of 1,000 small commits (one per chunk, as runs write it): queries before and after the upkeep.
    "lake_maintain": ["--commits", "1000"],
}
FULL = QUICK | {
    "copy_stage": ["--requests", "228", "--single", "32"],
    "image_stage": ["--images", "256"],
    "overhead": ["--sizes", "100,1000,10000", "--rows", "100000", "--against", "0c867aa"],
    "segments_scale": ["--ads", "100000"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="the full sizes (takes about an hour here)")
    parser.add_argument("--only", help="comma-separated benchmarks to run (default: all)")
    args = parser.parse_args()
    plan = FULL if args.full else QUICK
    names = args.only.split(",") if args.only else list(plan)
    for name in names:
        started = time.perf_counter()
        print(f"== {name}", flush=True)
        subprocess.run([sys.executable, "-m", f"bench.{name}", *plan[name]], check=True)
        print(f"== {name}: {time.perf_counter() - started:.0f} s", flush=True)
    (HERE / "RESULTS.md").write_text(render("full" if args.full else "quick"))
    print(f"wrote {HERE / 'RESULTS.md'}")


def render(mode: str) -> str:
    results = {p.stem: json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))}
    machine = next(iter(results.values()))["machine"] if results else {}
    lines = [
        "# Benchmark results",
        "",
        f"Written by `make bench` ({mode} mode). Machine: {machine.get('cpu')}, "
        f"{machine.get('cores')} cores, "
        f"{machine.get('memory_gib')} GiB, GPU: {machine.get('gpu') or 'none'}.",
        "",
        "| benchmark | ratio | measured | target |",
        "|---|---|---|---|",
    ]
    for name, result in results.items():
        for ratio, value in result.get("ratios", {}).items():
            lines.append(f"| {name} | {ratio} | {value} | {result.get('targets', {}).get(ratio, '')} |")
    for name, result in results.items():
        details = {k: v for k, v in result.items() if k not in ("machine", "ratios", "targets", "table")}
        lines += [
            "",
            f"## {name}",
            "",
            *_table(result.get("table", [])),
            "```json",
            json.dumps(details, indent=2),
            "```",
        ]
    return "\n".join(lines) + "\n"


def _table(rows: list[dict]) -> list[str]:
    """A benchmark's side-by-side table (rows of equal keys) as Markdown, followed by a blank line."""
    if not rows:
        return []
    head = list(rows[0])
    body = ["| " + " | ".join(str(r[k]) for k in head) + " |" for r in rows]
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *body, ""]


if __name__ == "__main__":
    main()

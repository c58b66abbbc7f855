"""What audience segments and locales cost besides the models, at scale.

A brief-equivalent is one brief × segment × locale on one channel with 3 variants: 3 planned ads, the
unit of bench/overhead.py. Three sets of briefs, each sized to the same number of planned ads (default
100,000), go through the whole flow side by side, each into a fresh DuckDB file, with the text generator
set to NoopText (bench/overhead.py: a labelled no-op that answers every prompt with fixed valid copy,
used for this measurement only), the hashing score model and no images:

(a) flat: briefs without segments or locales, 1 channel × 3 variants;
(b) tailored: 5 segments × 2 English locales (en-US, en-GB) × 1 channel × 3 variants per brief, all
    written by the no-op generator;
(c) half foreign: as (b) but the second locale is de-DE, which the text model does not write
    (text_model_languages "en"): half the ads are locale failures, made without a model call.

For each: the flow's wall seconds (the run's own wall_s, as bench/overhead.py reports it; the whole call,
report page included, and this process's CPU seconds beside it), its stage seconds, planned ads, copies
stored, failures and brief-equivalents per second; and apart from the flow, the planner and the storage
alone on the same rows (`normalise`, `plan_copies`, `Store.pending`, and writing every planned ad's copy
row, with its prompt, and platform values in chunks, into another DuckDB file), timed, so that the table
shows where the time goes: the target, 1,000 brief-equivalents per second at 100,000 planned ads, is
stated for the planner and the storage."""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from bench.common import peak_rss_mib, save, timed

VARIANTS = 3
# The channels whose rules NoopText's fixed copy meets. On google_search (3 distinct headlines), email (a
# body of at least 120 characters) and display (a long headline) every sample is refused, and each such ad
# costs copy_attempts × copy_candidates rule checks before it fails: the no-op's limits, not the pipeline's.
CHANNELS = ["instagram", "facebook", "linkedin", "x"]
SEGMENTS = [
    "busy young professionals who commute by train",
    "students on a tight budget",
    "parents of toddlers",
    "weekend hikers and runners",
    "retirees who travel often",
]
SCENARIOS: dict[str, dict[str, Any]] = {
    "flat": {"segments": [], "locales": []},
    "tailored": {"segments": SEGMENTS, "locales": ["en-US", "en-GB"]},
    "half_foreign": {"segments": SEGMENTS, "locales": ["en-US", "de-DE"]},
}


def brief_rows(n: int, segments: list[str], locales: list[str]) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        row: dict[str, Any] = {
            "brief_id": f"b{i:06d}",
            "brand": f"Brand{i % 97}",
            "product": "Cold brew concentrate",
            "audience": "busy professionals",
            "key_message": f"Barista coffee at home, offer {i}",
            "channels": [CHANNELS[i % len(CHANNELS)]],
            "variants": VARIANTS,
            "images_per_copy": 0,
        }
        if segments:
            row["segments"] = segments
        if locales:
            row["locales"] = locales
        rows.append(row)
    return rows


def planner(rows: list[dict[str, Any]], settings: dict[str, Any], folder: Path) -> dict[str, Any]:
    """`normalise` and `plan_copies` alone, on the rows the flow reads; then the storage's part of the run
    for the planned ads: which are still to write (`Store.pending`), and writing their copies and platform
    values, a chunk of copy_chunk_size per transaction as the flow does."""
    from adforge.flows.settings import load_settings
    from adforge.storage.db import Store
    from adforge.tasks.briefs import normalise
    from adforge.tasks.copy import plan_copies

    s = load_settings(overrides=settings)
    with timed() as norm:
        briefs = [normalise(row) for row in rows]
    with timed() as plan:
        jobs = plan_copies(briefs, s.sampling())
    store = Store(folder / "storage.duckdb")
    with timed() as pending:
        todo = store.pending("copies", "copy_id", [j.copy_id for j in jobs], ["engine_error"])
    chunks = [[j for j in jobs[i : i + s.copy_chunk_size] if j.copy_id in todo]
              for i in range(0, len(jobs), s.copy_chunk_size)]  # fmt: skip
    tables = [_stored(chunk) for chunk in chunks]
    with timed() as write, store.lingering(0.5):  # as the run keeps its connection between chunks
        for chunk in tables:
            store.write(chunk)
    store.close()
    return {"normalise_s": norm["s"], "plan_s": plan["s"], "pending_s": pending["s"], "write_s": write["s"],
            "jobs": len(jobs)}  # fmt: skip


def _stored(jobs: list) -> dict[str, list[dict[str, Any]]]:
    """What a copy task returns for these jobs had every first candidate passed: copy rows (prompt and
    checks as stored) and two platform values each."""
    copies = [{"copy_id": j.copy_id, "run_id": "run-bench", "brief_id": j.brief_id,
               "brief_hash": j.brief_hash, "channel": j.channel, "variant": j.variant,
               "headline": "Cold brew, ready when you are", "cta": "Shop now",
               "body": "Brand makes barista coffee at home in seconds, every morning.",
               "image_prompt": "a glass of iced coffee on a sunny windowsill",
               "checks": '{"claims": "passed"}',
               "similarity": 0.3, "attempts": 1, "candidates": 4, "seed": j.seed, "text_model": "m",
               "sampling": "{}", "prompt": json.dumps(j.messages), "prompt_tokens": 300, "output_tokens": 80,
               "segment_id": j.segment_id, "segment_hash": j.segment_hash, "locale": j.locale}
              for j in jobs]  # fmt: skip
    assets = [{"copy_id": j.copy_id, "field": field, "position": 1, "text": "Cold brew, ready", "run_id": "r"}
              for j in jobs for field in ("headline", "description")]  # fmt: skip
    return {"copies": copies, "copy_assets": assets}


def scenario(name: str, ads: int, folder: Path, flow: bool = True) -> dict[str, Any]:
    from adforge.flows.generate_campaigns import generate_campaigns

    shape = SCENARIOS[name]
    per_brief = max(len(shape["segments"]), 1) * max(len(shape["locales"]), 1)  # brief-equivalents
    n = math.ceil(ads / (per_brief * VARIANTS))
    rows = brief_rows(n, shape["segments"], shape["locales"])
    here = folder / name
    here.mkdir()
    briefs = here / "briefs.parquet"
    pq.write_table(pa.Table.from_pylist(rows), briefs)
    settings = {
        "db": str(here / "adforge.duckdb"),
        "artifacts": str(here / "artifacts"),
        "quiet": True,
        "text_generator": "bench.overhead:NoopText",  # the no-op generator
        "score_model": "hashing",  # and no embedding model
        "text_model_languages": "en",
    }
    plan = planner(rows, settings, here)
    del rows
    planned = n * per_brief * VARIANTS
    if not flow:
        seconds = plan["normalise_s"] + plan["plan_s"] + plan["pending_s"] + plan["write_s"]
        return {"scenario": name, "planned_ads": planned, "briefs_eq": planned // VARIANTS,
                **{k: round(v, 2) for k, v in plan.items() if k.endswith("_s")},
                "planner_storage_briefs_eq_per_s": round(planned // VARIANTS / seconds, 1)}  # fmt: skip
    cpu = time.process_time()
    with timed() as call:
        summary = generate_campaigns([str(briefs)], settings)
    cpu = time.process_time() - cpu
    assert plan["jobs"] == planned, (plan["jobs"], planned)
    equivalents = planned // VARIANTS
    wall = summary["wall_s"]
    return {
        "scenario": name,
        "briefs": n,
        "segments x locales": per_brief,
        "planned_ads": planned,
        "briefs_eq": equivalents,
        "copies": summary["copies"],
        "failures": summary["failures"],
        "normalise_s": round(plan["normalise_s"], 2),
        "plan_s": round(plan["plan_s"], 2),
        "read_s": summary.get("read_s"),
        "copy_s": summary.get("copy_s"),
        "wall_s": wall,
        "call_s": round(call["s"], 2),  # the whole call: the report page is written after wall_s
        # This process's CPU seconds over the call (Prefect's server runs apart): on a shared machine,
        # call_s well above cpu_s means the flow waited for a core.
        "cpu_s": round(cpu, 2),
        "briefs_eq_per_s": round(equivalents / wall, 1),
        "us_per_ad": round(1e6 * wall / planned, 1),
        "plan_us_per_ad": round(1e6 * plan["plan_s"] / planned, 1),
        "pending_s": round(plan["pending_s"], 2),
        "write_s": round(plan["write_s"], 2),
        # What the planner and the storage alone cost per planned brief-equivalent (the flow's rule checks
        # of every candidate, Prefect and the report page are in wall_s, not here).
        "planner_storage_briefs_eq_per_s": round(
            equivalents / (plan["normalise_s"] + plan["plan_s"] + plan["pending_s"] + plan["write_s"]), 1
        ),
    }


def warm_up(folder: Path) -> None:
    """One small run first, so that Prefect's start is in none of the measured ones."""
    from adforge.flows.generate_campaigns import generate_campaigns

    briefs = folder / "warm-up.parquet"
    pq.write_table(pa.Table.from_pylist(brief_rows(10, SEGMENTS[:2], ["en-US", "de-DE"])), briefs)
    generate_campaigns(
        [str(briefs)],
        {
            "db": str(folder / "warm-up.duckdb"),
            "artifacts": str(folder / "warm-up-artifacts"),
            "quiet": True,
            "text_generator": "bench.overhead:NoopText",
            "score_model": "hashing",
        },
    )


def summarise(table: list[dict[str, Any]], ads: int) -> tuple[dict[str, Any], dict[str, str]]:
    """The ratios and their targets from the scenarios' rows. Per CPU second as well as per wall second:
    on a shared machine the flow waits for a core, and its wall seconds say more about the neighbours."""
    by = {row["scenario"]: row for row in table}
    ratios: dict[str, Any] = {}
    targets: dict[str, str] = {}
    for name in ("tailored", "flat", "half_foreign"):
        if name in by and "wall_s" in by[name]:  # a whole flow was run (not --planner-only)
            row = by[name]
            label = name.replace("_", "-")
            ratios[f"{label} briefs-eq/s at {ads} ads"] = row["briefs_eq_per_s"]
            ratios[f"{label} briefs-eq per CPU s at {ads} ads"] = round(row["briefs_eq"] / row["cpu_s"], 1)
    if "tailored" in by:
        ratios[f"tailored planner + storage briefs-eq/s at {ads} ads"] = by["tailored"][
            "planner_storage_briefs_eq_per_s"
        ]
        targets[f"tailored planner + storage briefs-eq/s at {ads} ads"] = ">= 1000 (stated at 100000 ads)"
    if "tailored" in by and "flat" in by and "wall_s" in by["tailored"]:
        tailored, flat = by["tailored"], by["flat"]
        ratios["tailored / flat s per planned ad"] = round(tailored["us_per_ad"] / flat["us_per_ad"], 2)
        ratios["tailored / flat CPU s per planned ad"] = round(
            (tailored["cpu_s"] / tailored["planned_ads"]) / (flat["cpu_s"] / flat["planned_ads"]), 2
        )
        ratios["tailored / flat planner s per planned ad"] = round(
            tailored["plan_us_per_ad"] / max(flat["plan_us_per_ad"], 1e-9), 2
        )
    return ratios, targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ads", type=int, default=100_000, help="planned ads per scenario (target: 100000)")
    parser.add_argument(
        "--scenarios",
        default="flat,tailored,half_foreign",
        help=f"comma-separated, of {', '.join(SCENARIOS)}",
    )
    parser.add_argument("--planner-only", action="store_true", help="the planner and storage alone, no flow")
    args = parser.parse_args()
    names = args.scenarios.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if not args.planner_only:
            warm_up(folder)
        table = [scenario(name, args.ads, folder, not args.planner_only) for name in names]
    ratios, targets = summarise(table, args.ads)
    save(
        "segments_scale",
        {
            "ads": args.ads,
            "variants": VARIANTS,
            "table": table,
            "peak_rss_mib": peak_rss_mib(),
            "ratios": ratios,
            "targets": targets,
        },
    )


if __name__ == "__main__":
    main()

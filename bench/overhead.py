"""What the pipeline costs besides the models.

1. Orchestration: the whole flow (Prefect tasks, validation, prompt building, rule checks, DuckDB
   writes) at several brief counts × 3 variants, with the text generator set to NoopText, a labelled
   no-op generator that answers every prompt with fixed valid copy. Used for this measurement only.
2. DuckDB writes: copy rows through the storage layer vs a bare INSERT … SELECT from the same Arrow table.

With --against REF, the orchestration is also measured on the code of an earlier commit (this same
benchmark, run from a temporary git worktree of REF), so that before and after come from one run."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from adforge.tasks.generation import Completion, EngineOptions, Sampling, TextRequest
from bench.common import save, timed

CHANNELS = ["instagram", "facebook", "linkedin", "x", "google_search", "email", "display"]
LINES = [
    "makes mornings easy for everyone who tries it today.",
    "is built for people on the move who want more from their day.",
    "keeps every promise it makes, season after season.",
    "turns a small habit into a daily win you can feel.",
    "was made with care by a small team that loves good things.",
]
HEADLINES = ["made for you", "a little better", "your new habit", "worth a look", "good every day"]


class NoopText:
    """NO-OP GENERATOR (benchmark only): answers every prompt with valid copy without running a model."""

    def __init__(self, options: EngineOptions):
        self.options = options

    def prompt_tokens(self, messages: list[dict[str, str]]) -> int:
        return sum(len(m["content"]) for m in messages) // 4

    def generate(
        self, requests: list[TextRequest], sampling: Sampling, finished: Callable[[int], None]
    ) -> list[list[Completion]]:
        outputs = []
        for request in requests:
            user = request.messages[1]["content"]
            brand = next(line[7:] for line in user.splitlines() if line.startswith("Brand: "))
            variant = int(user.split("This is variant ")[1].split()[0])
            text = json.dumps(
                {
                    "headline": f"{brand}: {HEADLINES[variant % 5]}"[:30],
                    "body": f"{brand} {LINES[variant % 5]} {LINES[(variant + 1) % 5]}"[:90],
                    "cta": "Shop now",
                    "image_prompt": "a product on a wooden table in soft light",
                }
            )
            outputs.append([Completion(text, "stop", 200, 40)] * sampling.candidates)
        finished(len(outputs) * sampling.candidates)
        return outputs


def write_briefs(path: Path, n: int) -> None:
    rows = [
        {
            "brief_id": f"b{i:06d}",
            "brand": f"Brand{i % 97}",
            "product": "Cold brew concentrate",
            "audience": "busy professionals",
            "key_message": f"Barista coffee at home, offer {i}",
            "channels": [CHANNELS[i % len(CHANNELS)]],
            "variants": 3,
            "images_per_copy": 0,
        }
        for i in range(n)
    ]
    pq.write_table(pa.Table.from_pylist(rows), path)


def orchestration(n: int, folder: Path) -> dict:
    from adforge.flows.generate_campaigns import generate_campaigns

    briefs = folder / f"briefs-{n}.parquet"
    write_briefs(briefs, n)
    settings = {
        "db": str(folder / f"adforge-{n}.duckdb"),
        "artifacts": str(folder / "artifacts"),
        "quiet": True,
        "text_generator": "bench.overhead:NoopText",  # the no-op generator
        "score_model": "hashing",  # and no embedding model
    }
    summary = generate_campaigns([str(briefs)], settings)
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from adforge.storage.db import Store

    flow_run_id = Store(settings["db"]).fetch("SELECT flow_run_id FROM runs")[0]["flow_run_id"]
    with get_client(sync_client=True) as client:
        tasks_made = len(
            client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        )
    return {
        "briefs": n,
        "copies": summary["copies"],
        "failures": summary["failures"],
        "wall_s": summary["wall_s"],
        "briefs_per_s": round(n / summary["wall_s"], 1),
        "ms_per_brief": round(1000 * summary["wall_s"] / n, 3),
        "prefect_task_runs": tasks_made,
    }


def duckdb_writes(rows: int, folder: Path) -> dict:
    import duckdb

    from adforge.storage.db import Store

    copies = pa.Table.from_pylist(
        [
            {
                "copy_id": f"copy-{i:08d}",
                "run_id": "run-1",
                "brief_id": f"b{i // 3}",
                "brief_hash": f"h{i // 3}",
                "channel": "instagram",
                "variant": i % 3 + 1,
                "headline": "Nordbrew cold brew",
                "body": "Nordbrew makes barista coffee at home in thirty seconds. " * 3,
                "cta": "Shop now",
                "image_prompt": "a glass of iced coffee on a table",
                "attempts": 1,
                "seed": i,
                "text_model": "m",
                "sampling": "{}",
                "prompt": "[]",
                "prompt_tokens": 200,
                "output_tokens": 80,
                "checks": '{"channel_limits": "passed"}',
                "similarity": 0.3,
            }
            for i in range(rows)
        ]
    )
    store = Store(folder / "layer.duckdb")
    with timed() as layer:
        store.write({"copies": copies})
    columns = ", ".join(copies.column_names)

    def bare_insert(con: duckdb.DuckDBPyConnection) -> None:
        con.register("copies_arrow", copies)
        con.execute(f"INSERT INTO copies ({columns}) SELECT {columns} FROM copies_arrow")

    # Like the storage layer, the bare write opens the file and closes it (which checkpoints); the
    # insert alone, into a connection held open, is reported beside it.
    for name in ("bare", "held"):
        Store(folder / f"{name}.duckdb")  # same schema, same keys
    with timed() as bare:
        con = duckdb.connect(str(folder / "bare.duckdb"))
        bare_insert(con)
        con.close()
    con = duckdb.connect(str(folder / "held.duckdb"))
    with timed() as held:
        bare_insert(con)
    con.close()
    return {
        "rows": rows,
        "storage_layer_rows_per_s": round(rows / layer["s"]),
        "bare_rows_per_s": round(rows / bare["s"]),
        "bare_insert_only_rows_per_s": round(rows / held["s"]),
        "ratio": round(bare["s"] / layer["s"], 3),
        "ratio_to_insert_only": round(held["s"] / layer["s"], 3),
    }


def against(ref: str, sizes: str) -> list[dict]:
    """The orchestration measurement by the code of commit `ref`, in a process of its own."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(tree), ref], check=True, capture_output=True
        )
        try:
            subprocess.run(
                [sys.executable, "-m", "bench.overhead", "--sizes", sizes, "--rows", "1000"],
                cwd=tree,
                check=True,
            )
            return json.loads((tree / "bench" / "results" / "overhead.json").read_text())["orchestration"]
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--sizes", default="100,1000", help="brief counts, comma-separated (full: 100,1000,10000)"
    )
    parser.add_argument("--rows", type=int, default=30000, help="copy rows for the DuckDB write comparison")
    parser.add_argument("--against", help="also measure the orchestration of this earlier commit (git ref)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sizes = [orchestration(int(n), folder) for n in args.sizes.split(",")]
        writes = duckdb_writes(args.rows, folder)
    per_brief = {s["briefs"]: s["ms_per_brief"] for s in sizes}
    largest = max(per_brief)
    ratios = {
        "duckdb storage layer / bare": writes["ratio"],
        "duckdb storage layer / bare insert only": writes["ratio_to_insert_only"],
        f"briefs/s at {largest}": round(1000 / per_brief[largest], 1),
    }
    if 1000 in per_brief and largest > 1000:
        ratios[f"ms per brief {largest} / 1000"] = round(per_brief[largest] / per_brief[1000], 2)
    before = against(args.against, args.sizes) if args.against else []
    for old in (b for b in before if b["briefs"] == largest):
        ratios[f"briefs/s at {largest}, {args.against}"] = old["briefs_per_s"]
        ratios[f"briefs/s at {largest}, this / {args.against}"] = round(
            old["ms_per_brief"] / per_brief[largest], 2
        )
    save(
        "overhead",
        {
            "orchestration": sizes,
            **({f"orchestration_{args.against}": before} if before else {}),
            "duckdb_writes": writes,
            "ratios": ratios,
            "targets": {
                f"briefs/s at {largest}": ">= 1000 (stated at 10000)",
                "ms per brief 10000 / 1000": "<= 1.2",
                "duckdb storage layer / bare": ">= 0.8",
            },
        },
    )


if __name__ == "__main__":
    main()

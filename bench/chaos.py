"""Kill a run at random moments and rerun until it finishes: what is lost, doubled or left behind, and
how much generation the kills cost.

A clean run makes the reference. Then the same `adforge run` is started N times and killed with
SIGKILL at a random moment, and run once more to the end. Reported: rows of the clean run missing
(must be 0), duplicate keys (0), files without their row and rows without their file (0), and the
output tokens generated over all the runs relative to the clean run (target <= 1.10). Text comes
from CountingNoop, a labelled no-op generator that counts the tokens it "generates" (quick mode;
--real-text uses the configured model); images from the configured image model (tiny-sd here)."""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from adforge.tasks.generation import Completion, Sampling, TextRequest
from adforge.tasks.generation.vllm_text import VllmText
from bench.common import save
from bench.overhead import CHANNELS, NoopText

TALLY = "CHAOS_TALLY"  # file each generator call appends its output tokens to
KEYS = {
    "copies": "copy_id",
    "images": "image_id",
    "creatives": "creative_id",
    "briefs": "brief_id, brief_hash",
}


def _tally(outputs: list[list[Completion]]) -> list[list[Completion]]:
    with open(os.environ[TALLY], "a") as f:
        f.write(f"{sum(c.output_tokens for candidates in outputs for c in candidates)}\n")
    return outputs


class CountingNoop(NoopText):
    """NO-OP GENERATOR (benchmark only), counting the tokens of every call in the tally file."""

    def generate(
        self, requests: list[TextRequest], sampling: Sampling, finished: Callable[[int], None]
    ) -> list[list[Completion]]:
        return _tally(super().generate(requests, sampling, finished))


class CountingVllm(VllmText):
    """The vLLM generator, counting the tokens of every call in the tally file."""

    def generate(
        self, requests: list[TextRequest], sampling: Sampling, finished: Callable[[int], None]
    ) -> list[list[Completion]]:
        return _tally(super().generate(requests, sampling, finished))


def write_briefs(path: Path, n: int) -> None:
    rows = [
        {"brief_id": f"b{i:05d}", "brand": f"Brand{i % 37}", "product": "Cold brew concentrate",
         "audience": "busy professionals", "key_message": f"Barista coffee at home, offer {i}",
         "channels": [CHANNELS[i % len(CHANNELS)]], "variants": 3, "images_per_copy": 1}
        for i in range(n)
    ]  # fmt: skip
    pq.write_table(pa.Table.from_pylist(rows), path)


def adforge_run(briefs: Path, root: Path, generator: str, env: dict[str, str]) -> subprocess.Popen:
    """`adforge run` in a process group of its own, its messages appended to root/log."""
    root.mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "adforge.flows.cli", "run", str(briefs), f"--db={root / 'a.duckdb'}",
           f"--artifacts={root / 'art'}", f"--text-generator={generator}", "--quiet"]  # fmt: skip
    with open(root / "log", "a") as log:
        return subprocess.Popen(cmd, env=env, stdout=log, stderr=log, start_new_session=True)


def outcome(root: Path) -> dict:
    """Rows by key per table, duplicates, and files and rows that lack each other."""
    with duckdb.connect(str(root / "a.duckdb"), read_only=True) as con:
        keys = {
            t: {r[0] for r in con.execute(f"SELECT ({k})::VARCHAR FROM {t}").fetchall()}
            for t, k in KEYS.items()
        }
        duplicates = sum(con.execute(f"SELECT count(*) - count(DISTINCT ({k})) FROM {t}").fetchone()[0]
                         for t, k in KEYS.items())  # fmt: skip
        recorded = {Path(p).name for (p,) in con.execute(
            "SELECT path FROM images UNION ALL SELECT path FROM creatives"
        ).fetchall()}  # fmt: skip
        statuses = [s for (s,) in con.execute("SELECT status FROM runs ORDER BY started_at").fetchall()]
    files = {p.name for kind in ("images", "creatives") for p in (root / "art" / kind).glob("*.png")}
    return {"keys": keys, "duplicates": duplicates, "orphan_files": len(files - recorded),
            "missing_files": len(recorded - files), "statuses": statuses}  # fmt: skip


def tokens(tally: Path) -> int:
    return sum(int(line) for line in tally.read_text().split()) if tally.exists() else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kills", type=int, default=20, help="runs killed before the last one (default: 20)")
    parser.add_argument("--briefs", type=int, default=200, help="briefs in the file (default: 200)")
    parser.add_argument("--real-text", action="store_true", help="write copy with the configured text model")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    args = parser.parse_args()
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    generator = f"bench.chaos:{'CountingVllm' if args.real_text else 'CountingNoop'}"
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp, prefect_test_harness(server_startup_timeout=120):
        folder = Path(tmp)
        briefs = folder / "briefs.parquet"
        write_briefs(briefs, args.briefs)
        env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "PYTHONPATH": os.getcwd()}

        clean = folder / "clean"
        started = time.perf_counter()
        run = adforge_run(briefs, clean, generator, env | {TALLY: str(folder / "clean.tally")})
        assert run.wait() == 0, (clean / "log").read_text()[-3000:]
        clean_s = time.perf_counter() - started
        reference = outcome(clean)

        chaos = folder / "chaos"
        moments: list[float] = []
        landed = 0
        for _ in range(args.kills):
            run = adforge_run(briefs, chaos, generator, env | {TALLY: str(folder / "chaos.tally")})
            # Within the first half of a clean run's time: later, a rerun has often finished its rest.
            moments.append(round(rng.uniform(0.5, clean_s / 2), 2))
            time.sleep(moments[-1])
            os.killpg(run.pid, signal.SIGKILL)
            landed += run.wait() == -signal.SIGKILL  # else the run had finished before its kill
        run = adforge_run(briefs, chaos, generator, env | {TALLY: str(folder / "chaos.tally")})
        assert run.wait() == 0, (chaos / "log").read_text()[-3000:]
        got = outcome(chaos)
        ratio = round(tokens(folder / "chaos.tally") / max(tokens(folder / "clean.tally"), 1), 3)

    lost = {t: len(reference["keys"][t] - got["keys"][t]) for t in KEYS}
    damage = got["duplicates"] + got["orphan_files"] + got["missing_files"]
    save(
        "chaos",
        {
            "briefs": args.briefs,
            "kills": args.kills,
            "text": "configured model" if args.real_text else "CountingNoop (no-op)",
            "clean_run_s": round(clean_s, 1),
            "kill_after_s": moments,
            "kills_that_landed": landed,
            "rows_lost": lost,
            "duplicates": got["duplicates"],
            "orphan_files": got["orphan_files"],
            "rows_without_file": got["missing_files"],
            "runs": {s: got["statuses"].count(s) for s in set(got["statuses"])},
            "ratios": {"output tokens, killed runs / clean run": ratio, "rows lost": sum(lost.values()),
                       "duplicates + orphan files": damage},
            "targets": {"output tokens, killed runs / clean run": "<= 1.10", "rows lost": "0",
                        "duplicates + orphan files": "0"},
        },
    )  # fmt: skip


if __name__ == "__main__":
    main()

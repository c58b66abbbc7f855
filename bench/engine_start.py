"""Time to first token from a cold process, with and without enforce_eager (CUDA graphs / torch.compile
on the GPU, torch.compile on CPU). Each mode runs in a fresh process."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from bench.common import save


def first_token(eager: bool) -> dict:
    started = time.perf_counter()
    from dataclasses import replace

    from vllm import SamplingParams

    from adforge.flows.settings import load_settings
    from adforge.tasks.generation.vllm_text import VllmText

    imported = time.perf_counter()
    llm = VllmText(replace(load_settings().engine(), enforce_eager=eager)).llm
    ready = time.perf_counter()
    llm.chat(
        [[{"role": "user", "content": "Say hello."}]], SamplingParams(max_tokens=1, seed=0), use_tqdm=False
    )
    done = time.perf_counter()
    return {
        "import_s": round(imported - started, 1),
        "engine_start_s": round(ready - imported, 1),
        "first_token_s": round(done - ready, 2),
        "total_s": round(done - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=["eager", "compiled"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(first_token(args.mode == "eager")))
        return
    runs = {}
    for mode in ("eager", "compiled"):
        out = subprocess.run(
            [sys.executable, "-m", "bench.engine_start", "--mode", mode],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        runs[mode] = json.loads(out.strip().splitlines()[-1])
    save(
        "engine_start",
        {
            "runs": runs,
            "ratios": {
                "compiled/eager total": round(runs["compiled"]["total_s"] / runs["eager"]["total_s"], 2)
            },
        },
    )


if __name__ == "__main__":
    main()

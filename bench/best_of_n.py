"""Best-of-n against the resample loop, side by side in one run on the sample briefs and one engine.

Each mode writes copy for every (brief, channel, variant) of the sample briefs through the pipeline's
copy task: `candidates=1` is the resample loop (one completion per job, a new seed for each refused
one); `candidates=N` asks vLLM for N completions per job in one pass (`n`, one prefill) and keeps the
best that passes every rule. Printed per mode: output tokens per stored copy, copy-stage seconds per
stored copy, failures, mean relevance and mean diversity (the scorecard's embedding model), and which
rules refused how many candidates."""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import replace
from typing import Any

import numpy as np

from bench.common import save, timed


def measure(jobs: list, engine: Any, sampling: Any) -> dict[str, Any]:
    from adforge.tasks.copy import generate_copy

    fresh = [replace(j, reasons=[], siblings=[], candidates=0) for j in jobs]
    with timed() as t:
        result = generate_copy.fn(fresh, engine, sampling)
    copies = result.copies
    groups: dict[tuple, list[np.ndarray]] = {}
    for c in copies:
        groups.setdefault((c.brief_hash, c.channel), []).append(np.asarray(c.embedding))
    diversity = [
        1 - max(float(v @ w) for j, w in enumerate(vectors) if j != i)
        for vectors in groups.values()
        if len(vectors) > 1
        for i, v in enumerate(vectors)
    ]
    refused = Counter(reason.split(":")[0] for j in fresh for reason in j.reasons)
    n = max(len(copies), 1)
    return {
        "candidates": sampling.candidates,
        "jobs": len(jobs),
        "stored": len(copies),
        "failures": len(result.failures),
        "output_tokens": result.output_tokens,
        "output_tokens_per_stored_copy": round(result.output_tokens / n, 1),
        "seconds": round(t["s"], 1),
        "seconds_per_stored_copy": round(t["s"] / n, 2),
        "mean_relevance": round(float(np.mean([c.relevance for c in copies])), 3) if copies else None,
        "mean_diversity": round(float(np.mean(diversity)), 3) if diversity else None,
        "candidates_refused_per_rule": dict(refused.most_common()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--candidates", type=int, default=4, help="n of the best-of-n mode")
    args = parser.parse_args()

    from adforge.flows.settings import load_settings
    from adforge.tasks.briefs import normalise
    from adforge.tasks.copy import generate_copy, plan_copies
    from adforge.tasks.generation import text_generator
    from adforge.tasks.sample_briefs import BANNED_WORDS, COLUMNS, SAMPLE_BRIEFS
    from adforge.tasks.scoring import embedder

    settings = load_settings()
    engine, sampling = settings.engine(), settings.sampling()
    rows = [dict(zip(COLUMNS, row, strict=True)) for row in SAMPLE_BRIEFS]  # as the demo writes them:
    briefs = [normalise(r | {"banned_words": BANNED_WORDS.get(str(r["brief_id"]), [])}) for r in rows]
    jobs = plan_copies(briefs, sampling)
    text_generator(engine), embedder(engine.score_model)
    # Warm up: the grammar of every channel compiled once, outside both measurements.
    warm = {j.channel: j for j in jobs}
    generate_copy.fn(list(warm.values()), engine, replace(sampling, attempts=1, seed=sampling.seed + 1))
    modes = [measure(jobs, engine, replace(sampling, candidates=k)) for k in (1, args.candidates)]
    resample, best = modes
    ratios = {
        "output tokens per stored copy, best-of-n / resample": round(
            best["output_tokens_per_stored_copy"] / resample["output_tokens_per_stored_copy"], 2
        ),
        "seconds per stored copy, best-of-n / resample": round(
            best["seconds_per_stored_copy"] / resample["seconds_per_stored_copy"], 2
        ),
    }
    measures = ("stored", "failures", "output_tokens_per_stored_copy", "seconds_per_stored_copy",
                "mean_relevance", "mean_diversity")  # fmt: skip
    table = [
        {"measure": m, "resample (n=1)": resample[m], f"best-of-{args.candidates}": best[m]} for m in measures
    ]
    save("best_of_n", {"resample": resample, "best_of_n": best, "ratios": ratios, "table": table})


if __name__ == "__main__":
    main()

"""Prefix-cache hit rate of the copy stage's prompts, grouped by brief or shuffled.

The copy jobs of the sample briefs go through one vLLM engine chunk by chunk, as a run sends them:
(grouped) in the planned order, where the prompts of one brief and channel follow each other and
share everything up to their segment, and (shuffled) the same jobs in a fixed random order before chunking.
Each pass starts from an empty prefix cache, and the passes alternate (shuffled first), so that
neither order profits from the other's cache or from running later. Short outputs (--max-tokens)
keep prefill, the work the cache saves, the bulk of each pass.

Two cache scopes: `engine`, one cache for the whole pass (one process writes every chunk, and the
cache holds all their prompts); `chunk`, the cache emptied before every chunk, as when each chunk
goes to another process (several workers) or the cache cannot keep earlier chunks.

Reported per scope and order: vLLM's prefix-cache queries and hits (tokens; hits come in whole KV
blocks, 128 tokens on CPU), hit rate, prompt tokens and wall seconds, summed over the rounds; and
per scope the ratio of the hit rates, grouped / shuffled."""

from __future__ import annotations

import argparse
import random
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.common import save, timed

SCOPES = {"engine": "one cache", "chunk": "cache per chunk"}


def plan(settings: Any) -> list:
    """The copy jobs of the sample briefs, as the pipeline plans them."""
    from adforge.tasks.briefs import read_briefs
    from adforge.tasks.copy import plan_copies
    from adforge.tasks.sample_briefs import write_sample_briefs

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sample.parquet"
        write_sample_briefs(path)
        briefs = read_briefs.fn([path]).briefs
    return plan_copies(briefs, settings.sampling())


def generate(generator: Any, chunks: list[list], sampling: Any, scope: str) -> dict[str, Any]:
    """One pass over the chunks from an empty prefix cache, emptied again before each chunk in the
    `chunk` scope; the requests are the copy task's (tasks/copy.py, generate_copy)."""
    from adforge.tasks.generation import TextRequest
    from adforge.tasks.rules import grammar_schema

    generator.llm.reset_prefix_cache()
    queries, hits = generator.prefix_cache_stats()
    prompt_tokens = 0
    with timed() as t:
        for chunk in chunks:
            if scope == "chunk":
                generator.llm.reset_prefix_cache()
            requests = [
                TextRequest(j.messages, j.seed, grammar_schema(j.channel, j.rules.brand, j.rules.language))
                for j in chunk
            ]
            outputs = generator.generate(requests, sampling, lambda n: None)
            prompt_tokens += sum(c[0].prompt_tokens for c in outputs)
    after = generator.prefix_cache_stats()
    return {
        "queries": after[0] - queries,
        "hits": after[1] - hits,
        "prompt_tokens": prompt_tokens,
        "s": t["s"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunk-size", type=int, default=16, help="jobs per generate call")
    parser.add_argument("--max-tokens", type=int, default=16, help="output tokens per job")
    parser.add_argument("--rounds", type=int, default=2, help="passes per scope and order, alternating")
    parser.add_argument("--scopes", default="engine,chunk", help=f"cache scopes: {', '.join(SCOPES)}")
    parser.add_argument("--seed", type=int, default=0, help="of the shuffle")
    parser.add_argument("--text-model", help="model name or path (default: the settings' text_model)")
    args = parser.parse_args()

    from adforge.flows.settings import load_settings
    from adforge.tasks.copy import copy_chunks
    from adforge.tasks.generation import text_generator

    settings = load_settings(overrides={"text_model": args.text_model})
    sampling = replace(settings.sampling(), max_tokens=args.max_tokens, candidates=1)
    jobs = plan(settings)
    shuffled = list(jobs)
    random.Random(args.seed).shuffle(shuffled)
    chunks = {
        "grouped": copy_chunks(jobs, args.chunk_size),
        "shuffled": copy_chunks(shuffled, args.chunk_size),
    }
    with timed() as load:
        generator: Any = text_generator(settings.engine())
    # Warm-up, one token each: every grammar is compiled before a measured pass.
    generate(generator, chunks["grouped"], replace(sampling, max_tokens=1), "engine")

    scopes = args.scopes.split(",")
    zero = {"queries": 0, "hits": 0, "prompt_tokens": 0, "s": 0.0}
    totals = {(scope, order): dict(zero) for scope in scopes for order in chunks}
    for i in range(args.rounds):
        for scope in scopes:
            for order in ("shuffled", "grouped") if i % 2 == 0 else ("grouped", "shuffled"):
                run = generate(generator, chunks[order], sampling, scope)
                totals[scope, order] = {k: totals[scope, order][k] + v for k, v in run.items()}
    rates = {key: t["hits"] / t["queries"] if t["queries"] else 0.0 for key, t in totals.items()}
    save(
        "prefix_cache",
        {
            "model": settings.text_model,
            "jobs": len(jobs),
            "chunk_size": args.chunk_size,
            "chunks": {order: len(c) for order, c in chunks.items()},
            "max_tokens": args.max_tokens,
            "rounds": args.rounds,
            "shuffle_seed": args.seed,
            "prefix_caching": settings.prefix_caching,
            "engine_load_s": round(load["s"], 1),
            "table": [
                {
                    "cache": SCOPES[scope],
                    "order": order,
                    "prefix_cache_queries": t["queries"],
                    "prefix_cache_hits": t["hits"],
                    "hit_rate": round(rates[scope, order], 3),
                    "prompt_tokens": t["prompt_tokens"],
                    "seconds": round(t["s"], 1),
                }
                for (scope, order), t in totals.items()
            ],
            "ratios": {
                f"hit rate grouped/shuffled, {SCOPES[scope]}": round(
                    rates[scope, "grouped"] / rates[scope, "shuffled"], 2
                )
                if rates[scope, "shuffled"]
                else None
                for scope in scopes
            },
        },
    )


if __name__ == "__main__":
    main()

"""What every benchmark shares: the machine it ran on, timing, the prompts, and writing results."""

from __future__ import annotations

import json
import os
import platform
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def machine() -> dict[str, Any]:
    import torch

    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "")
    return {
        "cpu": cpu or platform.processor(),
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
    }


@contextmanager
def timed() -> Iterator[dict[str, float]]:
    """`with timed() as t: ...` then t["s"] holds the wall seconds."""
    t: dict[str, float] = {}
    start = time.perf_counter()
    try:
        yield t
    finally:
        t["s"] = time.perf_counter() - start


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def save(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **result}, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return path


def sample_jobs(requests: int, settings: Any) -> list:
    """`requests` copy jobs from the sample briefs: brief × channel × variant, repeated with new seeds."""
    from dataclasses import replace

    from adforge.tasks.briefs import normalise
    from adforge.tasks.copy import plan_copies
    from adforge.tasks.sample_briefs import BANNED_WORDS, COLUMNS, SAMPLE_BRIEFS

    briefs = [normalise(dict(zip(COLUMNS, row, strict=True))) for row in SAMPLE_BRIEFS]
    briefs = [replace(b, banned_words=BANNED_WORDS.get(b.brief_id, [])) for b in briefs]
    jobs = []
    seed = 0
    while len(jobs) < requests:
        jobs += plan_copies(briefs, replace(settings.sampling(), seed=seed))
        seed += 1
    return jobs[:requests]

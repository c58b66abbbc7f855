"""The demo end to end, in one process: wall time per stage, peak memory, and the share of time
spent inside model calls once the engines are loaded."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import peak_rss_mib, save


class Timed:
    """A loaded model whose `method` calls add their seconds to `spent`; the rest passes through."""

    def __init__(self, inner: Any, method: str, spent: dict[str, float], key: str):
        self._inner, self._method, self._spent, self._key = inner, method, spent, key

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if name != self._method:
            return value

        def timed_call(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return value(*args, **kwargs)
            finally:
                self._spent[self._key] += time.perf_counter() - start

        return timed_call

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.__getattr__("__call__")(*args, **kwargs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.parse_args()
    import adforge.flows.generate_campaigns as flow_module
    from adforge.storage.db import Store
    from adforge.tasks.quality import quality_report
    from adforge.tasks.sample_briefs import write_sample_briefs

    spent = {"text": 0.0, "image": 0.0}
    load_engine, load_pipeline = tasks.copy.get_engine, tasks.images.get_pipeline
    flow_module.get_engine = tasks.copy.get_engine = lambda o: Timed(load_engine(o), "chat", spent, "text")
    tasks.images.get_pipeline = lambda p, d: Timed(load_pipeline(p, d), "__call__", spent, "image")
    flow_module.get_pipeline = tasks.images.get_pipeline
    with tempfile.TemporaryDirectory() as tmp:
        briefs = Path(tmp) / "briefs.parquet"
        write_sample_briefs(briefs)
        settings = {"db": f"{tmp}/adforge.duckdb", "artifacts": f"{tmp}/artifacts", "quiet": True}
        summary = flow_module.generate_campaigns([str(briefs)], settings)
        store = Store(settings["db"])
        stages = {
            r["stage"]: round(r["seconds"], 2) for r in store.fetch("SELECT stage, seconds FROM run_stages")
        }
        copies = (
            "SELECT c.*, b.brand, b.banned_words FROM copies c JOIN briefs b USING (brief_id, brief_hash)"
        )
        quality = quality_report(
            store.fetch(copies), store.fetch("SELECT * FROM failures WHERE stage = 'copy'")
        )
    loading = stages.get("load_text_model", 0) + stages.get("load_image_model", 0)
    after_load = summary["wall_s"] - loading
    model = spent["text"] + spent["image"]
    save(
        "end_to_end",
        {
            "copies": summary["copies"],
            "images": summary["images"],
            "creatives": summary["creatives"],
            "wall_s": summary["wall_s"],
            "stages_s": stages,
            "peak_rss_mib": peak_rss_mib(),
            "model_calls_s": {k: round(v, 2) for k, v in spent.items()},
            "copy_quality": quality,
            "ratios": {"model calls / wall after loading": round(model / after_load, 3)},
            "targets": {"model calls / wall after loading": ">= 0.85"},
        },
    )


if __name__ == "__main__":
    main()

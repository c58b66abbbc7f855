"""The demo end to end, in one process: wall time per stage, peak memory, and the share of time
spent inside model calls once the engines are loaded."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.common import peak_rss_mib, save
from bench.timed import SPENT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.parse_args()
    import adforge.flows.generate_campaigns as flow_module
    from adforge.storage.db import Store
    from adforge.tasks.quality import quality_report
    from adforge.tasks.sample_briefs import write_sample_briefs

    spent = SPENT
    with tempfile.TemporaryDirectory() as tmp:
        briefs = Path(tmp) / "briefs.parquet"
        write_sample_briefs(briefs)
        settings = {"db": f"{tmp}/adforge.duckdb", "artifacts": f"{tmp}/artifacts", "quiet": True,
                    "text_generator": "bench.timed:TimedText",
                    "image_generator": "bench.timed:TimedImages"}  # fmt: skip
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

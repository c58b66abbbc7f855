"""What a run shows in the Prefect dashboard: a summary table, a sample of the copy, a link to the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from adforge.tasks.untrusted import markdown

SAMPLE = 6  # copies shown in the markdown artifact

STAGES = {  # stage → the summary's keys shown for it, with their labels
    "read": {"files_new": "brief files read", "files_skipped": "brief files skipped",
             "files_rejected": "brief files rejected", "briefs_read": "briefs read",
             "briefs_rejected": "briefs rejected", "read_s": "seconds"},
    "copy": {"copies": "copies written", "output_tokens": "output tokens", "tokens_per_s": "output tokens/s",
             "load_text_model_s": "seconds loading the model", "copy_s": "seconds"},
    "image": {"images": "images written", "images_per_s": "images/s",
              "load_image_model_s": "seconds loading the model", "image_s": "seconds"},
    "creative": {"creatives": "creatives written", "creative_s": "seconds"},
    "run": {"status": "status", "failures": "failures", "wall_s": "seconds", "note": "note"},
}  # fmt: skip


def summary_table(summary: dict[str, Any], failure_kinds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of (stage, measure, value): counts, rates and seconds per stage, then failures by reason
    (failure_kinds: stage, reason_kind and n, most frequent first)."""
    rows = [
        {"stage": stage, "measure": label, "value": summary[key]}
        for stage, keys in STAGES.items()
        for key, label in keys.items()
        if summary.get(key) is not None
    ]
    rows += [
        {"stage": f["stage"], "measure": f"failures: {f['reason_kind']}", "value": f["n"]}
        for f in failure_kinds
    ]
    return rows


def copy_sample(summary: dict[str, Any], assets: list[dict[str, Any]]) -> str:
    """Markdown with the first copies; their text (from the model, prompted by the briefs) is escaped."""
    lines = [f"# Copy from {summary['run_id']}", ""]
    if not assets:
        return "\n".join([*lines, markdown(summary.get("note") or "This run wrote no copy.")])
    written = summary.get("copies", len(assets))
    lines.append(f"{written} copies written; the first {min(SAMPLE, len(assets))} by brief and channel:")
    for a in assets[:SAMPLE]:
        images = ", ".join(f"`{Path(p).name}`" for p in a["image_paths"]) or "none"
        lines += ["", f"### {markdown(a['brand'])} · {markdown(a['channel'])} · variant {a['variant']}", "",
                  f"**{markdown(a['headline'])}**", "", markdown(a["body"]), "",
                  f"_{markdown(a['cta'])}_ · images: {images}"]  # fmt: skip
    return "\n".join(lines)


def publish(summary: dict[str, Any], failure_kinds: list[dict[str, Any]], assets: list[dict[str, Any]],
            report_uri: str, review_uri: str = "") -> None:  # fmt: skip
    """Create the run's three artifacts, keyed so the dashboard keeps each one's history; the report's says
    how many ads await review and where (`adforge review`)."""
    waiting = summary.get("awaiting_review") or 0
    review = f" {waiting} ads await review: run `adforge review`, then open {review_uri}" if waiting else ""
    create_table_artifact(
        summary_table(summary, failure_kinds), key="run-summary",
        description=f"Summary of {summary['run_id']}",
    )  # fmt: skip
    create_markdown_artifact(
        copy_sample(summary, assets), key="copy-sample", description="Sample of the copy"
    )
    create_link_artifact(
        report_uri, link_text=f"Report of {summary['run_id']}", key="run-report",
        description=f"Static HTML page with the run's copy, creatives, failures and rejected rows."
        f"{review}",
    )  # fmt: skip

"""The batch flow: briefs → copy (vLLM) → images (diffusers) → DuckDB, one Prefect flow run."""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections import Counter, defaultdict
from dataclasses import asdict
from datetime import UTC, datetime
from itertools import groupby
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from flows.dashboard import publish
from flows.executor import Executor, executor
from flows.progress import Progress
from flows.settings import Settings, load_settings
from storage.artifacts import ArtifactError, ArtifactStore
from storage.db import Store
from storage.faults import fault_point
from tasks.briefs import read_briefs
from tasks.copy import (
    CopyJob,
    CopyResult,
    EngineOptions,
    Sampling,
    failure,
    generate_copy,
    get_engine,
    plan_copies,
)
from tasks.creatives import plan_creatives, render_creatives
from tasks.ids import stable_hash
from tasks.images import ImageOptions, generate_images, get_pipeline, plan_images, resolve_device
from tasks.images import failure as image_failure
from tasks.report import render_report
from tasks.rules import copy_text

CREATIVE_BATCH = 16  # creatives per task
ENGINE_ERROR = "engine error"


def new_run_id() -> str:
    return f"run-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def engine_options(s: Settings) -> EngineOptions:
    return EngineOptions(
        s.text_model_path(), s.max_model_len, s.max_num_seqs, s.enforce_eager, s.dtype,
        s.chunked_prefill, s.max_num_batched_tokens, s.engine_in_process,
        s.kv_cache_gb, s.gpu_memory_utilization, s.tensor_parallel_size, s.structured_output_backend,
        s.pipeline_parallel_size,
    )  # fmt: skip


def sampling(s: Settings) -> Sampling:
    return Sampling(
        s.text_model, s.seed, s.temperature, s.top_p, s.max_tokens, s.copy_attempts,
        s.max_variant_similarity, s.text_model_languages,
    )  # fmt: skip


def image_options(s: Settings) -> ImageOptions:
    return ImageOptions(s.image_model, s.image_width, s.image_height, s.image_steps, s.guidance_scale)


def settings_hash(s: Settings) -> str:
    """Hash of the settings that decide outputs: a file processed under other settings is new again."""
    return stable_hash(asdict(sampling(s)), asdict(image_options(s)))


def retried_later(failure: dict[str, Any]) -> bool:
    """Engine errors may not happen again; any other failure (a rule broken by every sample, a prompt
    too long) would recur with the same settings, so a rerun does not retry it."""
    return failure["reason"].startswith(ENGINE_ERROR)


def chunks(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def copy_chunks(jobs: list[CopyJob], size: int) -> list[list[CopyJob]]:
    """Chunks of about `size` jobs that keep the variants of one brief and channel together."""
    parts: list[list[CopyJob]] = []
    for group in groupby(jobs, key=lambda j: j.group):
        members = list(group[1])
        if not parts or len(parts[-1]) + len(members) > size:
            parts.append([])
        parts[-1].extend(members)
    return parts


@flow(name="generate_campaigns", log_prints=True)
def generate_campaigns(briefs: list[str], settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Turn Parquet briefs into copy variants and images, stored in DuckDB."""
    s = load_settings(overrides=settings)
    logger = get_run_logger()
    # The tasks' own lines (engine start, model loading) reach the dashboard (PREFECT_LOGGING_EXTRA_LOGGERS).
    logging.getLogger("tasks").setLevel(logging.WARNING if s.quiet else logging.INFO)
    store = Store(s.db, s.db_wait_s, s.lake_data)
    run_id = new_run_id()
    started = time.perf_counter()
    interrupted = store.start_run(
        {
            "run_id": run_id,
            "flow_run_id": flow_run.id,
            "status": "running",
            "started_at": datetime.now(UTC),
            "sources": [str(b) for b in briefs],
            "text_model": s.text_model,
            "image_model": s.image_model,
            "seed": s.seed,
            "settings": json.dumps(s.to_dict()),
        }
    )
    for old in interrupted:
        logger.warning(f"run {old} was interrupted; this run completes its work")
    try:
        with executor(s) as ex:
            counts, seconds = _run_stages(s, ex, store, run_id, briefs, logger)
    except BaseException as e:
        store.finish_run(run_id, status="failed", finished_at=datetime.now(UTC), error=str(e))
        raise
    wall = round(time.perf_counter() - started, 2)
    note = counts.pop("note")
    store.finish_run(run_id, finished_at=datetime.now(UTC), wall_s=wall, **counts)
    summary = {"run_id": run_id, **counts, **{f"{k}_s": v for k, v in seconds.items()}, "wall_s": wall}
    if note:
        summary["note"] = note
    try:
        summary["report"] = write_report(store, ArtifactStore(s.artifacts), summary)
    except ArtifactError as e:  # the data is stored; only the page is missing
        logger.warning(f"no report for {run_id}: {e}")
    for line in format_summary(summary):
        print(line)
    return summary


def write_report(store: Store, artifacts: ArtifactStore, summary: dict[str, Any]) -> str:
    """Write the run's HTML report and publish its dashboard artifacts; returns the report's location."""
    run = [summary["run_id"]]
    assets = store.fetch("SELECT * FROM v_assets WHERE run_id = ? ORDER BY brief_id, channel, variant", run)
    failures = store.fetch("SELECT * FROM v_failures WHERE run_id = ? ORDER BY stage, brief_id", run)
    rejected = store.fetch(
        "SELECT * FROM rejected_briefs WHERE run_id = ? ORDER BY source_file, source_row", run
    )
    html = render_report(summary, assets, failures, rejected, artifacts.location("reports"))
    path, _ = artifacts.write("reports", summary["run_id"], ".html", html.encode())
    publish(summary, failures, assets, artifacts.uri(path))
    return path


def _run_stages(
    s: Settings, ex: Executor, store: Store, run_id: str, paths: list[str], logger: Any
) -> tuple[dict[str, Any], dict[str, float]]:
    """Run read, copy and image stages; returns the run's counts and seconds per stage."""
    stage_rows: list[dict[str, Any]] = []

    def record(stage: str, progress: Progress, items: int, tokens: int | None = None) -> None:
        started_at = datetime.fromtimestamp(time.time() - progress.seconds, UTC)
        stage_rows.append(
            {"run_id": run_id, "stage": stage, "started_at": started_at,
             "seconds": progress.seconds, "items": items, "output_tokens": tokens}
        )  # fmt: skip

    # 1. Read and validate the brief files not processed before with these settings.
    reading = Progress("read", len(paths), logger)
    output_settings = settings_hash(s)
    processed = store.ingested(output_settings) if s.incremental else {}
    read = read_briefs.with_options(task_run_name=f"read-briefs[{len(paths)} paths]")(paths, processed)
    for f in read.skipped:
        logger.info(f"skipped {f['path']}: {f['reason']}")
    fault_point("briefs-read")
    store.write(
        {
            "briefs": [{**b, "run_id": run_id} for b in read.briefs],
            "rejected_briefs": [{**r, "run_id": run_id} for r in read.rejected],
        }
    )
    for r in read.rejected:
        logger.warning(f"rejected row {r['source_row']} of {r['source_file']}: {r['reason']}")
    reading.update(
        len(paths),
        f"{len(read.files)} new files, {len(read.skipped)} skipped, "
        f"{len(read.briefs)} briefs, {len(read.rejected)} rejected",
    )
    record("read", reading, len(read.briefs) + len(read.rejected))

    # 2. Copy: only the variants not already stored; one task per chunk, one engine per process.
    engine, copy_settings = engine_options(s), sampling(s)
    jobs = plan_copies(read.briefs, copy_settings)
    done = store.existing("copies", "copy_id", [j.copy_id for j in jobs])
    given_up = {
        f["item_id"]
        for f in store.by_ids("failures", "item_id", [j.copy_id for j in jobs])
        if not retried_later(f)
    }
    todo = [j for j in jobs if j.copy_id not in done and j.copy_id not in given_up]
    # Variants stored by an earlier run are what the missing ones of their brief and channel must differ from.
    stored_texts = defaultdict(list)
    for c in store.by_ids("copies", "copy_id", list(done), "brief_hash, channel, headline, body, cta"):
        stored_texts[c["brief_hash"], c["channel"]].append(copy_text(c))
    for j in todo:
        j.siblings = list(stored_texts[j.group])
    logger.info(
        f"copy: {len(jobs)} variants planned, {len(done)} already stored, {len(given_up)} failed for good, "
        f"{len(todo)} to write"
    )
    if todo and not ex.remote:  # load outside the chunk loop so that its time is not counted as generation
        loading = Progress("load text model", 1, logger)
        get_engine(engine)
        loading.update(1)
        record("load_text_model", loading, 1)
    writing = Progress("copy", len(todo), logger)
    tokens = copies = failures = 0
    loads: list[float] = []  # engine starts in other processes (Ray workers)
    failed_briefs: set[str] = set()
    parts = copy_chunks(todo, s.copy_chunk_size)
    calls = [
        (f"generate-copy[chunk {i}/{len(parts)}]",
         {"jobs": part, "engine": engine, "sampling": copy_settings})
        for i, part in enumerate(parts, 1)
    ]  # fmt: skip
    outcomes = ex.run(generate_copy, calls, s.ray_gpus_per_copy_task)
    for i, (part, (result, error)) in enumerate(zip(parts, outcomes, strict=True), 1):
        if error is not None:
            logger.error(f"copy chunk {i} failed after retries: {error}")
            tries = 1 + (generate_copy.retries or 0)
            result = CopyResult(failures=[failure(j, f"{ENGINE_ERROR}: {error}", tries) for j in part])
        added = store.write(
            {
                "copies": [{**c, "run_id": run_id} for c in result.copies],
                "failures": [{**f, "run_id": run_id} for f in result.failures],
            }
        )
        fault_point("copy-written")
        tokens += result.output_tokens
        if ex.remote and result.load_s is not None:
            loads.append(result.load_s)
        copies += added["copies"]
        failures += len(result.failures)
        failed_briefs.update(f["brief_id"] for f in result.failures if retried_later(f))
        writing.update(len(part), f"{tokens / max(writing.seconds, 1e-9):.0f} tok/s")
    record("copy", writing, copies, tokens)
    if loads:  # engine starts inside the copy tasks: counted there too, recorded here for the split
        stage_rows.append(
            {"run_id": run_id, "stage": "load_text_model", "started_at": datetime.now(UTC),
             "seconds": sum(loads), "items": len(loads), "output_tokens": None}
        )  # fmt: skip

    # 3. Images for every stored copy of these briefs that still lacks them.
    options = image_options(s)
    stored = store.by_ids(
        "copies",
        "copy_id",
        [j.copy_id for j in jobs],
        "copy_id, brief_id, brief_hash, channel, headline, cta, image_prompt",
    )
    per_copy = {b["brief_hash"]: b["images_per_copy"] for b in read.briefs}
    image_jobs = plan_images(sorted(stored, key=lambda c: c["copy_id"]), per_copy, options)
    done = store.existing("images", "image_id", [j.image_id for j in image_jobs])
    todo_images = [j for j in image_jobs if j.image_id not in done]
    logger.info(f"images: {len(image_jobs)} planned, {len(done)} already stored, {len(todo_images)} to make")
    artifacts = ArtifactStore(s.artifacts)
    if todo_images:
        artifacts.check_writable("images")
    if todo_images and not ex.remote:
        loading = Progress("load image model", 1, logger)
        get_pipeline(s.image_model_path(), resolve_device(s.device))
        loading.update(1)
        record("load_image_model", loading, 1)
    drawing = Progress("images", len(todo_images), logger)
    images = 0
    batches = chunks(todo_images, s.image_batch_size)
    image_calls = [
        (f"generate-images[batch {i}/{len(batches)}]",
         {"jobs": batch, "options": options, "path": s.image_model_path(), "device": s.device,
          "artifacts": artifacts})
        for i, batch in enumerate(batches, 1)
    ]  # fmt: skip
    image_outcomes = ex.run(generate_images, image_calls, s.ray_gpus_per_image_task)
    for i, (batch, (rows, error)) in enumerate(zip(batches, image_outcomes, strict=True), 1):
        if isinstance(error, ArtifactError):
            raise error  # a full disk or a read-only folder fails every later batch too: stop the run
        if error is not None:
            logger.error(f"image batch {i} failed after retries: {error}")
            tries = 1 + (generate_images.retries or 0)
            reason = f"{ENGINE_ERROR}: {error}"
            store.write({"failures": [{**image_failure(j, reason, tries), "run_id": run_id} for j in batch]})
            failures += len(batch)
            failed_briefs.update(j.brief_id for j in batch)
            rows = []
        images += store.write({"images": [{**r, "run_id": run_id} for r in rows]})["images"]
        fault_point("images-written")
        drawing.update(len(batch))
    record("image", drawing, images)

    # 4. A creative for every stored image of these copies that lacks one.
    made = store.by_ids(
        "images", "image_id", [j.image_id for j in image_jobs], "image_id, copy_id, brief_id, path"
    )
    texts = {c["copy_id"]: c for c in stored}
    creative_jobs = plan_creatives(
        [{**texts[m["copy_id"]], **m} for m in sorted(made, key=lambda m: m["image_id"])], s.creative_font
    )
    done = store.existing("creatives", "creative_id", [j.creative_id for j in creative_jobs])
    todo_creatives = [j for j in creative_jobs if j.creative_id not in done]
    if todo_creatives:
        artifacts.check_writable("creatives")
    composing = Progress("creatives", len(todo_creatives), logger)
    creatives = 0
    batches = chunks(todo_creatives, CREATIVE_BATCH)
    for i, batch in enumerate(batches, 1):
        rows, refused = render_creatives.with_options(
            task_run_name=f"render-creatives[batch {i}/{len(batches)}]"
        )(batch, s.creative_font, artifacts)
        added = store.write(
            {
                "creatives": [{**r, "run_id": run_id} for r in rows],
                "failures": [{**f, "run_id": run_id} for f in refused],
            }
        )
        creatives += added["creatives"]
        failures += len(refused)  # text that cannot fit would not fit next time either
        composing.update(len(batch))
    record("creative", composing, creatives)

    # 5. Files without engine errors join the ledger; the others are read again next time.
    unfinished = {b["source_file"] for b in read.briefs if b["brief_id"] in failed_briefs}
    briefs_in = Counter(b["source_file"] for b in read.briefs)
    rejected_in = Counter(r["source_file"] for r in read.rejected)
    ledger = [
        {**f, "settings_hash": output_settings, "briefs": briefs_in[f["path"]],
         "rejected": rejected_in[f["path"]], "run_id": run_id}
        for f in read.files if f["path"] not in unfinished
    ]  # fmt: skip
    store.write({"run_stages": stage_rows, "ingested_files": ledger})

    note = None
    if not todo and not todo_images and not todo_creatives:
        note = (
            f"no generation: all {len(read.skipped)} brief files were processed before"
            if read.skipped and not read.files
            else "no generation: every planned copy, image and creative was already stored"
        )
    counts = {
        "status": "completed_with_failures" if failures else "completed",
        "files_new": len(read.files),
        "files_skipped": len(read.skipped),
        "briefs_read": len(read.briefs),
        "briefs_rejected": len(read.rejected),
        "copies": copies,
        "images": images,
        "creatives": creatives,
        "failures": failures,
        "output_tokens": tokens,
        "tokens_per_s": round(tokens / writing.seconds, 1) if todo else None,
        "images_per_s": round(images / drawing.seconds, 2) if todo_images else None,
        "note": note,
    }
    return counts, {row["stage"]: round(row["seconds"], 2) for row in stage_rows}


def format_summary(summary: dict[str, Any]) -> list[str]:
    width = max(len(k) for k in summary)
    return ["run summary:"] + [f"  {k.ljust(width)}  {v}" for k, v in summary.items()]

"""The batch flow: briefs → copy (vLLM) → images (diffusers) → DuckDB, one Prefect flow run."""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections import Counter, defaultdict
from collections.abc import Callable
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
from tasks.briefs import ReadResult, read_briefs
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
from tasks.images import ImageJob, ImageOptions, generate_images, get_pipeline, plan_images, resolve_device
from tasks.images import failure as image_failure
from tasks.report import render_report
from tasks.rules import copy_text

CREATIVE_BATCH = 16  # creatives per task
ENGINE_ERROR = "engine error"
SUMMARY = ("status", "files_new", "files_skipped", "briefs_read", "briefs_rejected", "copies", "images",
           "creatives", "failures", "output_tokens", "tokens_per_s", "images_per_s", "note")  # fmt: skip


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
            counts, seconds = Stages(s, ex, store, run_id, logger).run(briefs)
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


class Stages:
    """The stages of one run, in order: each stores what it made before the next one starts, so a
    crash loses only unfinished work and a rerun skips what is stored."""

    def __init__(self, s: Settings, ex: Executor, store: Store, run_id: str, logger: Any):
        self.s, self.ex, self.store, self.run_id, self.logger = s, ex, store, run_id, logger
        self.output_settings = settings_hash(s)
        self.artifacts = ArtifactStore(s.artifacts)
        self.stage_rows: list[dict[str, Any]] = []
        self.counts: dict[str, Any] = {"failures": 0}
        self.failed_briefs: set[str] = set()  # briefs with an engine error: their files are read again
        self.work = 0  # copies, images and creatives that were still to make

    def run(self, paths: list[str]) -> tuple[dict[str, Any], dict[str, float]]:
        """Run every stage; returns the run's counts and seconds per stage."""
        read = self.read(paths)
        jobs = self.copy(read.briefs)
        stored = self.store.by_ids(
            "copies", "copy_id", [j.copy_id for j in jobs],
            "copy_id, brief_id, brief_hash, channel, headline, cta, image_prompt",
        )  # fmt: skip
        image_jobs = self.images(stored, {b["brief_hash"]: b["images_per_copy"] for b in read.briefs})
        self.creatives(stored, image_jobs)
        self.finish(read)
        counts = {key: self.counts.get(key) for key in SUMMARY}
        return counts, {row["stage"]: round(row["seconds"], 2) for row in self.stage_rows}

    def write(self, **tables: list[dict[str, Any]]) -> dict[str, int]:
        """Store rows of several tables in one transaction, each row marked with this run."""
        return self.store.write(
            {t: [{**r, "run_id": self.run_id} for r in rows] for t, rows in tables.items()}
        )

    def record(self, stage: str, progress: Progress, items: int, tokens: int | None = None) -> None:
        started_at = datetime.fromtimestamp(time.time() - progress.seconds, UTC)
        self.stage_rows.append(
            {"stage": stage, "started_at": started_at, "seconds": progress.seconds, "items": items,
             "output_tokens": tokens}
        )  # fmt: skip

    def load(self, stage: str, load: Callable[[], Any]) -> None:
        """Load a model before its stage, so that its time is not counted as generation."""
        progress = Progress(stage.replace("_", " "), 1, self.logger)
        load()
        progress.update(1)
        self.record(stage, progress, 1)

    def read(self, paths: list[str]) -> ReadResult:
        """Read and validate the brief files not processed before with these settings."""
        progress = Progress("read", len(paths), self.logger)
        processed = self.store.ingested(self.output_settings) if self.s.incremental else {}
        read = read_briefs.with_options(task_run_name=f"read-briefs[{len(paths)} paths]")(paths, processed)
        for f in read.skipped:
            self.logger.info(f"skipped {f['path']}: {f['reason']}")
        fault_point("briefs-read")
        self.write(briefs=read.briefs, rejected_briefs=read.rejected)
        for r in read.rejected:
            self.logger.warning(f"rejected row {r['source_row']} of {r['source_file']}: {r['reason']}")
        progress.update(
            len(paths),
            f"{len(read.files)} new files, {len(read.skipped)} skipped, "
            f"{len(read.briefs)} briefs, {len(read.rejected)} rejected",
        )
        self.record("read", progress, len(read.briefs) + len(read.rejected))
        self.counts |= {"files_new": len(read.files), "files_skipped": len(read.skipped),
                        "briefs_read": len(read.briefs), "briefs_rejected": len(read.rejected)}  # fmt: skip
        return read

    def copy(self, briefs: list[dict[str, Any]]) -> list[CopyJob]:
        """Copy for the variants not already stored: one task per chunk, one engine per process.
        Returns every planned variant's job."""
        s, store, ex = self.s, self.store, self.ex
        engine, copy_settings = engine_options(s), sampling(s)
        jobs = plan_copies(briefs, copy_settings)
        done = store.existing("copies", "copy_id", [j.copy_id for j in jobs])
        failed = store.by_ids("failures", "item_id", [j.copy_id for j in jobs])
        given_up = {f["item_id"] for f in failed if not retried_later(f)}
        todo = [j for j in jobs if j.copy_id not in done and j.copy_id not in given_up]
        # Variants stored by an earlier run are what the missing ones of their group must differ from.
        stored_texts = defaultdict(list)
        for c in store.by_ids("copies", "copy_id", list(done), "brief_hash, channel, headline, body, cta"):
            stored_texts[c["brief_hash"], c["channel"]].append(copy_text(c))
        for j in todo:
            j.siblings = list(stored_texts[j.group])
        self.logger.info(
            f"copy: {len(jobs)} variants planned, {len(done)} already stored, {len(given_up)} failed for "
            f"good, {len(todo)} to write"
        )
        if todo and not ex.remote:
            self.load("load_text_model", lambda: get_engine(engine))
        progress = Progress("copy", len(todo), self.logger)
        tokens = copies = 0
        loads: list[float] = []  # engine starts in other processes (Ray workers)
        parts = copy_chunks(todo, s.copy_chunk_size)
        calls = [
            (f"generate-copy[chunk {i}/{len(parts)}]",
             {"jobs": part, "engine": engine, "sampling": copy_settings})
            for i, part in enumerate(parts, 1)
        ]  # fmt: skip
        outcomes = ex.run(generate_copy, calls, s.ray_gpus_per_copy_task)
        for i, (part, (result, error)) in enumerate(zip(parts, outcomes, strict=True), 1):
            if error is not None:
                self.logger.error(f"copy chunk {i} failed after retries: {error}")
                tries = 1 + (generate_copy.retries or 0)
                result = CopyResult(failures=[failure(j, f"{ENGINE_ERROR}: {error}", tries) for j in part])
            copies += self.write(copies=result.copies, failures=result.failures)["copies"]
            fault_point("copy-written")
            tokens += result.output_tokens
            if ex.remote and result.load_s is not None:
                loads.append(result.load_s)
            self.counts["failures"] += len(result.failures)
            self.failed_briefs.update(f["brief_id"] for f in result.failures if retried_later(f))
            progress.update(len(part), f"{tokens / max(progress.seconds, 1e-9):.0f} tok/s")
        self.record("copy", progress, copies, tokens)
        if loads:  # engine starts inside the copy tasks: counted there too, recorded here for the split
            self.stage_rows.append(
                {"stage": "load_text_model", "started_at": datetime.now(UTC), "seconds": sum(loads),
                 "items": len(loads), "output_tokens": None}
            )  # fmt: skip
        self.work += len(todo)
        self.counts |= {"copies": copies, "output_tokens": tokens,
                        "tokens_per_s": round(tokens / progress.seconds, 1) if todo else None}  # fmt: skip
        return jobs

    def images(self, stored: list[dict[str, Any]], per_copy: dict[str, int]) -> list[ImageJob]:
        """Images for every stored copy that still lacks them; returns every planned image's job."""
        s = self.s
        options = image_options(s)
        image_jobs = plan_images(sorted(stored, key=lambda c: c["copy_id"]), per_copy, options)
        done = self.store.existing("images", "image_id", [j.image_id for j in image_jobs])
        todo = [j for j in image_jobs if j.image_id not in done]
        self.logger.info(
            f"images: {len(image_jobs)} planned, {len(done)} already stored, {len(todo)} to make"
        )
        if todo:
            self.artifacts.check_writable("images")
        if todo and not self.ex.remote:
            self.load(
                "load_image_model", lambda: get_pipeline(s.image_model_path(), resolve_device(s.device))
            )
        progress = Progress("images", len(todo), self.logger)
        images = 0
        batches = chunks(todo, s.image_batch_size)
        calls = [
            (f"generate-images[batch {i}/{len(batches)}]",
             {"jobs": batch, "options": options, "path": s.image_model_path(), "device": s.device,
              "artifacts": self.artifacts})
            for i, batch in enumerate(batches, 1)
        ]  # fmt: skip
        outcomes = self.ex.run(generate_images, calls, s.ray_gpus_per_image_task)
        for i, (batch, (rows, error)) in enumerate(zip(batches, outcomes, strict=True), 1):
            if isinstance(error, ArtifactError):
                raise error  # a full disk or a read-only folder fails every later batch too: stop the run
            if error is not None:
                self.logger.error(f"image batch {i} failed after retries: {error}")
                tries = 1 + (generate_images.retries or 0)
                self.write(failures=[image_failure(j, f"{ENGINE_ERROR}: {error}", tries) for j in batch])
                self.counts["failures"] += len(batch)
                self.failed_briefs.update(j.brief_id for j in batch)
                rows = []
            images += self.write(images=rows)["images"]
            fault_point("images-written")
            progress.update(len(batch))
        self.record("image", progress, images)
        self.work += len(todo)
        self.counts |= {
            "images": images,
            "images_per_s": round(images / progress.seconds, 2) if todo else None,
        }
        return image_jobs

    def creatives(self, stored: list[dict[str, Any]], image_jobs: list[ImageJob]) -> None:
        """A creative for every stored image of these copies that lacks one."""
        made = self.store.by_ids(
            "images", "image_id", [j.image_id for j in image_jobs], "image_id, copy_id, brief_id, path"
        )
        texts = {c["copy_id"]: c for c in stored}
        font = self.s.creative_font
        jobs = plan_creatives(
            [{**texts[m["copy_id"]], **m} for m in sorted(made, key=lambda m: m["image_id"])], font
        )
        done = self.store.existing("creatives", "creative_id", [j.creative_id for j in jobs])
        todo = [j for j in jobs if j.creative_id not in done]
        if todo:
            self.artifacts.check_writable("creatives")
        progress = Progress("creatives", len(todo), self.logger)
        creatives = 0
        batches = chunks(todo, CREATIVE_BATCH)
        for i, batch in enumerate(batches, 1):
            rows, refused = render_creatives.with_options(
                task_run_name=f"render-creatives[batch {i}/{len(batches)}]"
            )(batch, font, self.artifacts)
            creatives += self.write(creatives=rows, failures=refused)["creatives"]
            self.counts["failures"] += len(refused)  # text that cannot fit would not fit next time either
            progress.update(len(batch))
        self.record("creative", progress, creatives)
        self.work += len(todo)
        self.counts["creatives"] = creatives

    def finish(self, read: ReadResult) -> None:
        """Files without engine errors join the ledger (the others are read again next time); stage
        timings are stored; the run's status and note are set."""
        unfinished = {b["source_file"] for b in read.briefs if b["brief_id"] in self.failed_briefs}
        briefs_in = Counter(b["source_file"] for b in read.briefs)
        rejected_in = Counter(r["source_file"] for r in read.rejected)
        ledger = [
            {**f, "settings_hash": self.output_settings, "briefs": briefs_in[f["path"]],
             "rejected": rejected_in[f["path"]]}
            for f in read.files if f["path"] not in unfinished
        ]  # fmt: skip
        self.write(run_stages=self.stage_rows, ingested_files=ledger)
        note = None
        if not self.work:
            note = (
                f"no generation: all {len(read.skipped)} brief files were processed before"
                if read.skipped and not read.files
                else "no generation: every planned copy, image and creative was already stored"
            )
        status = "completed_with_failures" if self.counts["failures"] else "completed"
        self.counts |= {"status": status, "note": note}


def format_summary(summary: dict[str, Any]) -> list[str]:
    width = max(len(k) for k in summary)
    return ["run summary:"] + [f"  {k.ljust(width)}  {v}" for k, v in summary.items()]

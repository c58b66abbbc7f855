"""The batch flow: briefs → copy → images → creatives → report, one Prefect flow run."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from adforge.flows.dashboard import publish
from adforge.flows.executor import Executor, Outcome, executor
from adforge.flows.overrides import run_settings
from adforge.flows.review_app import run_link
from adforge.flows.run import Run
from adforge.flows.settings import load_settings
from adforge.storage.artifacts import ArtifactError
from adforge.storage.db import Store
from adforge.storage.faults import fault_point
from adforge.tasks.briefs import ReadResult, read_briefs, read_segments, segment_files
from adforge.tasks.copy import copy_chunks, generate_copy, plan_copies, with_siblings, writes
from adforge.tasks.creatives import plan_creatives, render_creatives
from adforge.tasks.domain import (
    RETRIED,
    Brief,
    CopyJob,
    Failure,
    FailureKind,
    ImageJob,
    Stage,
    StageRow,
    failure,
)
from adforge.tasks.generation import image_generator, text_generator
from adforge.tasks.ids import stable_hash
from adforge.tasks.images import generate_images, plan_images
from adforge.tasks.progress import Progress
from adforge.tasks.report import render_report
from adforge.tasks.untrusted import printable

CREATIVE_BATCH = 16  # creatives per task
# The run keeps its database connection this long after a write: chunks that finish in quick
# succession share one, and a reader waits at most this long once the writes slow down.
LINGER_S = 0.5
LOGGED_REJECTIONS = 20  # rejected rows logged one by one; all of them are in rejected_briefs


@flow(name="generate_campaigns", log_prints=True)
def generate_campaigns(
    briefs: list[str], settings: dict[str, Any] | None = None, overridable: list[str] | None = None
) -> dict[str, Any]:
    """Turn Parquet briefs into copy variants, images and creatives, stored in DuckDB. In a deployment's
    run only the settings named in `overridable` may differ from the deployment's."""
    s = load_settings(overrides=run_settings(settings, overridable))
    s.check_models()
    # adforge's own lines (engine start, model loading) reach the dashboard (PREFECT_LOGGING_EXTRA_LOGGERS).
    logging.getLogger("adforge").setLevel(logging.WARNING if s.quiet else logging.INFO)
    run = Run(s, Store(s.db, s.db_wait_s, s.lake_data), get_run_logger())
    run.start(briefs, flow_run.id)
    try:
        with executor(s) as ex, run.store.lingering(LINGER_S):
            read = read_stage(run, briefs)
            jobs = copy_stage(run, ex, read.briefs)
            image_jobs = image_stage(run, ex, jobs, read.briefs)
            creative_stage(run, image_jobs)
        note = finish_stage(run, read)
    except BaseException as e:
        run.fail(e)
        raise
    summary = run.finish(note)
    try:
        summary["report"] = write_report(run, summary)
    except ArtifactError as e:  # the data is stored; only the page is missing
        run.logger.warning(f"no report for {run.run_id}: {e}")
    for line in format_summary(summary):
        print(line)
    return summary


def read_stage(run: Run, paths: list[str]) -> ReadResult:
    """Read and validate the brief files not processed before with these settings."""
    progress = Progress("read", len(paths), run.logger)
    segments = read_segments(segment_files(paths, run.s.segments), run.s.limits())
    for note in segments.notes:
        run.logger.warning(printable(f"segments: {note}"))
    if segments.digest:  # changed segments: the briefs are read again (only changed segments' ads are new)
        run.output_settings = stable_hash(run.output_settings, segments.digest)
    processed = run.store.ingested(run.output_settings) if run.s.incremental else {}
    read = read_briefs.with_options(task_run_name=f"read-briefs[{len(paths)} paths]")(
        paths, processed, run.s.limits(), segments.segments if segments.files else None
    )
    # Paths, ids and reasons come from the files: printable() keeps each on one line of plain text.
    for note in read.passed_over:
        run.logger.warning(printable(note))
    for f in read.skipped:
        run.logger.info(printable(f"skipped {f.path}: {f.reason}"))
    for rf in read.rejected_files:
        run.logger.warning(printable(f"rejected file {rf.path}: {rf.reason}"))
    fault_point("briefs-read")
    used = {(sg.segment_id, sg.segment_hash): sg for b in read.briefs for sg in b.segments}
    run.write(briefs=[b.record() for b in read.briefs], segments=list(used.values()),
              rejected_briefs=read.rejected, rejected_files=read.rejected_files)  # fmt: skip
    for r in read.rejected[:LOGGED_REJECTIONS]:
        run.logger.warning(printable(f"rejected row {r.source_row} of {r.source_file}: {r.reason}"))
    if len(read.rejected) > LOGGED_REJECTIONS:
        run.logger.warning(f"and {len(read.rejected) - LOGGED_REJECTIONS} more (see rejected_briefs)")
    progress.update(len(paths), f"{len(read.files)} new files, {len(read.skipped)} skipped, "
                    f"{len(read.rejected_files)} rejected files, {len(read.briefs)} briefs, "
                    f"{len(read.rejected)} rejected")  # fmt: skip
    run.record(Stage.READ, progress, len(read.briefs) + len(read.rejected))
    run.counts.files_new, run.counts.files_skipped = len(read.files), len(read.skipped)
    run.counts.files_rejected = len(read.rejected_files)
    run.counts.briefs_read, run.counts.briefs_rejected = len(read.briefs), len(read.rejected)
    return read


def copy_stage(run: Run, ex: Executor, briefs: list[Brief]) -> list[CopyJob]:
    """Copy for the variants not stored yet, one task per chunk; returns every planned variant's job."""
    s, store = run.s, run.store
    engine, sampling = s.engine(), s.sampling()
    jobs = plan_copies(briefs, sampling, run.kits)
    ids = [j.copy_id for j in jobs]
    pending = store.pending("copies", "copy_id", ids, RETRIED)
    stored = store.by_ids(
        "copies", "copy_id", ids, "brief_hash, segment_id, locale, channel, headline, body, cta"
    )
    todo = with_siblings([j for j in jobs if j.copy_id in pending], stored)
    given_up = len(jobs) - len(stored) - len(todo)
    run.logger.info(f"copy: {len(jobs)} variants planned, {len(stored)} already stored, "
                    f"{given_up} failed for good, {len(todo)} to write")  # fmt: skip
    if any(writes(j, sampling) for j in todo) and not ex.remote:
        run.load(Stage.LOAD_TEXT_MODEL, lambda: text_generator(engine))
    progress = Progress("copy", len(todo), run.logger)
    parts = copy_chunks(todo, s.copy_chunk_size)
    calls = [(f"generate-copy[chunk {i}/{len(parts)}]",
              {"jobs": part, "engine": engine, "sampling": sampling})
             for i, part in enumerate(parts, 1)]  # fmt: skip
    loads: list[float] = []  # engine starts inside the tasks (Ray workers)
    for part, outcome in zip(parts, ex.run(generate_copy, calls, s.ray_gpus_per_copy_task), strict=True):
        result = outcome.result
        failures = result.failures if result else engine_failures(run, part, outcome)
        copies, assets = (result.copies, result.assets) if result else ([], [])
        run.counts.copies += run.write(copies=copies, copy_assets=assets, failures=failures)["copies"]
        fault_point("copy-written")
        run.counts.failures += len(failures)
        run.counts.output_tokens += result.output_tokens if result else 0
        if ex.remote and result and result.load_s is not None:
            loads.append(result.load_s)
        progress.update(len(part), f"{run.counts.output_tokens / max(progress.seconds, 1e-9):.0f} tok/s")
    run.record(Stage.COPY, progress, run.counts.copies, run.counts.output_tokens)
    if loads:  # counted inside the copy tasks too; recorded here for the split
        run.stages.append(StageRow(Stage.LOAD_TEXT_MODEL, datetime.now(UTC), sum(loads), len(loads)))
    run.work += len(todo)
    run.counts.tokens_per_s = round(run.counts.output_tokens / progress.seconds, 1) if todo else None
    return jobs


def image_stage(run: Run, ex: Executor, jobs: list[CopyJob], briefs: list[Brief]) -> list[ImageJob]:
    """Images for every stored copy that still lacks them; returns every planned image's job."""
    s, store = run.s, run.store
    stored = store.by_ids(
        "copies", "copy_id", [j.copy_id for j in jobs], "copy_id, brief_id, brief_hash, image_prompt"
    )
    per_copy = {b.brief_hash: b.images_per_copy for b in briefs}
    image_jobs = plan_images(sorted(stored, key=lambda c: c["copy_id"]), per_copy, s.images())
    pending = store.pending("images", "image_id", [j.image_id for j in image_jobs], RETRIED)
    todo = [j for j in image_jobs if j.image_id in pending]
    run.logger.info(f"images: {len(image_jobs)} planned, {len(image_jobs) - len(todo)} already stored, "
                    f"{len(todo)} to make")  # fmt: skip
    if todo:
        run.artifacts.check_writable("images")
    model = {"generator": s.image_generator, "path": s.image_model_path(), "device": s.device,
             "revision": s.image_model_revision}  # fmt: skip
    if todo and not ex.remote:
        run.load(Stage.LOAD_IMAGE_MODEL, lambda: image_generator(*model.values()))
    progress = Progress("images", len(todo), run.logger)
    batches = chunks(todo, s.image_batch_size)
    calls = [(f"generate-images[batch {i}/{len(batches)}]",
              {"jobs": batch, "options": s.images(), **model, "artifacts": run.artifacts,
               "upload_workers": s.upload_workers})
             for i, batch in enumerate(batches, 1)]  # fmt: skip
    for batch, outcome in zip(
        batches, ex.run(generate_images, calls, s.ray_gpus_per_image_task), strict=True
    ):
        if isinstance(outcome.error, ArtifactError):
            raise outcome.error  # a full disk or a read-only folder fails every later batch too: stop the run
        failures = engine_failures(run, batch, outcome) if outcome.error else []
        run.counts.images += run.write(images=outcome.result or [], failures=failures)["images"]
        fault_point("images-written")
        run.counts.failures += len(failures)
        progress.update(len(batch))
    run.record(Stage.IMAGE, progress, run.counts.images)
    run.work += len(todo)
    run.counts.images_per_s = round(run.counts.images / progress.seconds, 2) if todo else None
    return image_jobs


def creative_stage(run: Run, image_jobs: list[ImageJob]) -> None:
    """A creative for every stored image of these copies that lacks one."""
    font = run.s.creative_font
    jobs = plan_creatives(run.store.images_with_copy([j.image_id for j in image_jobs]), font, run.kits)
    pending = run.store.pending("creatives", "creative_id", [j.creative_id for j in jobs], RETRIED)
    todo = [j for j in jobs if j.creative_id in pending]
    if todo:
        run.artifacts.check_writable("creatives")
    progress = Progress("creatives", len(todo), run.logger)
    batches = chunks(todo, CREATIVE_BATCH)
    for i, batch in enumerate(batches, 1):
        name = f"render-creatives[batch {i}/{len(batches)}]"
        rows, refused = render_creatives.with_options(task_run_name=name)(
            batch, font, run.artifacts, run.kits
        )
        run.counts.creatives += run.write(creatives=rows, failures=refused)["creatives"]
        run.counts.failures += len(refused)  # text that cannot fit would not fit next time either
        progress.update(len(batch))
    run.record(Stage.CREATIVE, progress, run.counts.creatives)
    run.work += len(todo)


def finish_stage(run: Run, read: ReadResult) -> str | None:
    """Files whose briefs had no engine error join the ledger (the others are read again next time);
    stage timings are stored. Returns the run's note, if any."""
    retried = run.store.failed_briefs(run.run_id, RETRIED)
    unfinished = {b.source_file for b in read.briefs if b.brief_id in retried}
    run.write(run_stages=run.stages, ingested_files=read.ledger(run.output_settings, unfinished))
    if run.work:
        return None
    if read.skipped and not read.files:
        return f"no generation: all {len(read.skipped)} brief files were processed before"
    return "no generation: every planned copy, image and creative was already stored"


def engine_failures(run: Run, jobs: list[CopyJob] | list[ImageJob], outcome: Outcome) -> list[Failure]:
    """A chunk or batch whose task failed after its retries: each of its items is a failure."""
    run.logger.error(f"{jobs[0].stage} task failed after {outcome.attempts} tries: {outcome.error}")
    reason = f"engine error: {outcome.error}"
    return [failure(j, FailureKind.ENGINE_ERROR, reason, outcome.attempts) for j in jobs]


def chunks(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def write_report(run: Run, summary: dict[str, Any]) -> str:
    """Write the run's HTML report and publish its dashboard artifacts; returns the report's location."""
    ids = [run.run_id]
    assets = run.store.fetch(
        "SELECT * FROM v_assets WHERE run_id = ? ORDER BY brief_id, channel, variant", ids
    )
    failures = run.store.fetch("SELECT * FROM v_failures WHERE run_id = ? ORDER BY stage, brief_id", ids)
    rejected = run.store.fetch(
        "SELECT * FROM rejected_briefs WHERE run_id = ? ORDER BY source_file, source_row", ids
    )
    platform: dict[str, dict[str, list[str]]] = {}  # copy_id → field → texts in position order
    for r in run.store.fetch(
        "SELECT a.copy_id, a.field, a.position, a.text FROM copy_assets a JOIN copies c USING (copy_id) "
        "WHERE c.run_id = ? ORDER BY ALL",
        ids,
    ):
        platform.setdefault(r["copy_id"], {}).setdefault(r["field"], []).append(r["text"])
    for a in assets:
        a["platform"] = platform.get(a["copy_id"], {})
    review = run_link(run.run_id)
    html = render_report(summary, assets, failures, rejected, run.artifacts.location("reports"), review)
    path, _ = run.artifacts.write("reports", run.run_id, ".html", html.encode())
    publish(summary, failures, assets, run.artifacts.uri(path), review)
    return path


def format_summary(summary: dict[str, Any]) -> list[str]:
    width = max(len(k) for k in summary)
    return ["run summary:"] + [f"  {k.ljust(width)}  {printable(v)}" for k, v in summary.items()]

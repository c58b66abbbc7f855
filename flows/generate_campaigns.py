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
from adforge.tasks.copy import (
    brief_slices,
    copy_chunks,
    generate_copy,
    jobs_per_brief,
    plan_copies,
    with_siblings,
    writes,
)
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
# Copy jobs, images or creatives planned and held at once: a run's memory stays flat with its size, and a
# slice is still many chunks, so Ray's workers wait on a slice's last chunk only now and then.
SLICE = 50_000
# The run keeps its database connection this long after a write: chunks that finish in quick
# succession share one, and a reader waits at most this long once the writes slow down.
LINGER_S = 0.5
# Ads, failures and rejected rows listed on a run's report page (all of them are counted there, and are
# in the database): a page of a million ads would take gigabytes to build and no browser would open it.
REPORT_ROWS = 2_000
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
            copy_ids = copy_stage(run, ex, read.briefs)
            image_ids = image_stage(run, ex, copy_ids, read.briefs)
            creative_stage(run, image_ids)
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


def copy_stage(run: Run, ex: Executor, briefs: list[Brief]) -> list[str]:
    """Copy for the variants not stored yet, planned a slice of briefs at a time; returns every planned
    variant's id."""
    sampling = run.s.sampling()
    slices = list(brief_slices(briefs, SLICE))
    # The total starts at every planned variant and drops by those found stored as each slice is planned.
    progress = Progress("copy", sum(map(jobs_per_brief, briefs)), run.logger)
    planned: list[str] = []
    loads: list[float] = []  # engine starts inside the tasks (Ray workers)
    for number, part in enumerate(slices, 1):
        jobs = plan_copies(part, sampling, run.kits)
        ids = [j.copy_id for j in jobs]
        planned += ids
        pending = run.store.pending("copies", "copy_id", ids, RETRIED)
        stored = run.store.by_ids(
            "copies", "copy_id", ids, "brief_hash, segment_id, locale, channel, headline, body, cta"
        )
        todo = with_siblings([j for j in jobs if j.copy_id in pending], stored)
        progress.total -= len(ids) - len(todo)
        where = f" (briefs slice {number}/{len(slices)})" if len(slices) > 1 else ""
        given_up = len(ids) - len(stored) - len(todo)
        run.logger.info(f"copy{where}: {len(ids)} variants planned, {len(stored)} already stored, "
                        f"{given_up} failed for good, {len(todo)} to write")  # fmt: skip
        write_copies(run, ex, todo, where, progress, loads)
    run.record(Stage.COPY, progress, run.counts.copies, run.counts.output_tokens)
    if loads:  # counted inside the copy tasks too; recorded here for the split
        run.stages.append(StageRow(Stage.LOAD_TEXT_MODEL, datetime.now(UTC), sum(loads), len(loads)))
    if progress.total:
        run.counts.tokens_per_s = round(run.counts.output_tokens / progress.seconds, 1)
    return planned


def write_copies(
    run: Run, ex: Executor, todo: list[CopyJob], where: str, progress: Progress, loads: list[float]
) -> None:
    """One task per chunk of these jobs; each chunk's copies and failures are stored as it finishes."""
    s = run.s
    engine, sampling = s.engine(), s.sampling()
    if not ex.remote and not run.loaded(Stage.LOAD_TEXT_MODEL) and any(writes(j, sampling) for j in todo):
        run.load(Stage.LOAD_TEXT_MODEL, lambda: text_generator(engine))
    parts = copy_chunks(todo, s.copy_chunk_size)
    calls = [(f"generate-copy[chunk {i}/{len(parts)}{where}]",
              {"jobs": part, "engine": engine, "sampling": sampling})
             for i, part in enumerate(parts, 1)]  # fmt: skip
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
    run.work += len(todo)


def image_stage(run: Run, ex: Executor, copy_ids: list[str], briefs: list[Brief]) -> list[str]:
    """Images for every stored copy that still lacks them, planned a slice of copies at a time;
    returns every planned image's id."""
    per_copy = {b.brief_hash: b.images_per_copy for b in briefs}
    progress = Progress("images", 0, run.logger)
    planned: list[str] = []
    slices = chunks(copy_ids, SLICE)
    for number, part in enumerate(slices, 1):
        stored = run.store.by_ids("copies", "copy_id", part, "copy_id, brief_id, brief_hash, image_prompt")
        image_jobs = plan_images(sorted(stored, key=lambda c: c["copy_id"]), per_copy, run.s.images())
        ids = [j.image_id for j in image_jobs]
        planned += ids
        pending = run.store.pending("images", "image_id", ids, RETRIED)
        todo = [j for j in image_jobs if j.image_id in pending]
        progress.total += len(todo)
        where = f" (copies slice {number}/{len(slices)})" if len(slices) > 1 else ""
        run.logger.info(f"images{where}: {len(ids)} planned, {len(ids) - len(todo)} already stored, "
                        f"{len(todo)} to make")  # fmt: skip
        if todo:
            make_images(run, ex, todo, progress)
    run.record(Stage.IMAGE, progress, run.counts.images)
    if progress.total:
        run.counts.images_per_s = round(run.counts.images / progress.seconds, 2)
    return planned


def make_images(run: Run, ex: Executor, todo: list[ImageJob], progress: Progress) -> None:
    """One task per batch of these jobs; each batch's images and failures are stored as it finishes."""
    s = run.s
    run.artifacts.check_writable("images")
    model = {"generator": s.image_generator, "path": s.image_model_path(), "device": s.device,
             "revision": s.image_model_revision}  # fmt: skip
    if not ex.remote and not run.loaded(Stage.LOAD_IMAGE_MODEL):
        run.load(Stage.LOAD_IMAGE_MODEL, lambda: image_generator(*model.values()))
    batches = chunks(todo, s.image_batch_size)
    calls = [(f"generate-images[batch {i}/{len(batches)}]",
              {"jobs": batch, "options": s.images(), **model, "artifacts": run.artifacts,
               "upload_workers": s.upload_workers})
             for i, batch in enumerate(batches, 1)]  # fmt: skip
    outcomes = ex.run(generate_images, calls, s.ray_gpus_per_image_task)
    for batch, outcome in zip(batches, outcomes, strict=True):
        if isinstance(outcome.error, ArtifactError):
            raise outcome.error  # a full disk or a read-only folder fails every later batch too: stop the run
        failures = engine_failures(run, batch, outcome) if outcome.error else []
        run.counts.images += run.write(images=outcome.result or [], failures=failures)["images"]
        fault_point("images-written")
        run.counts.failures += len(failures)
        progress.update(len(batch))
    run.work += len(todo)


def creative_stage(run: Run, image_ids: list[str]) -> None:
    """A creative for every stored image of these copies that lacks one, a slice of images at a time."""
    font = run.s.creative_font
    progress = Progress("creatives", 0, run.logger)
    for part in chunks(image_ids, SLICE):
        jobs = plan_creatives(run.store.images_with_copy(part), font, run.kits)
        pending = run.store.pending("creatives", "creative_id", [j.creative_id for j in jobs], RETRIED)
        todo = [j for j in jobs if j.creative_id in pending]
        if todo:
            run.artifacts.check_writable("creatives")
        progress.total += len(todo)
        batches = chunks(todo, CREATIVE_BATCH)
        for i, batch in enumerate(batches, 1):
            name = f"render-creatives[batch {i}/{len(batches)}]"
            rows, refused = render_creatives.with_options(task_run_name=name)(
                batch, font, run.artifacts, run.kits
            )
            run.counts.creatives += run.write(creatives=rows, failures=refused)["creatives"]
            run.counts.failures += len(refused)  # text that cannot fit would not fit next time either
            progress.update(len(batch))
        run.work += len(todo)
    run.record(Stage.CREATIVE, progress, run.counts.creatives)


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
    """Write the run's HTML report and publish its dashboard artifacts; returns the report's location.
    The page lists the first REPORT_ROWS ads, failures and rejected rows, and counts them all."""
    ids, shown = [run.run_id], [run.run_id, REPORT_ROWS]
    assets = run.store.fetch(
        "SELECT * FROM v_assets WHERE run_id = ? ORDER BY brief_id, channel, variant LIMIT ?", shown
    )
    failures = run.store.fetch(
        "SELECT * FROM v_failures WHERE run_id = ? ORDER BY stage, brief_id LIMIT ?", shown
    )
    rejected = run.store.fetch(
        "SELECT * FROM rejected_briefs WHERE run_id = ? ORDER BY source_file, source_row LIMIT ?", shown
    )
    totals = run.store.fetch(  # from the tables: the views would compute every row's scores to count them
        "SELECT (SELECT count(*) FROM copies WHERE run_id = $1) AS assets, "
        "(SELECT count(*) FROM failures WHERE run_id = $1) AS failures, "
        "(SELECT count(*) FROM rejected_briefs WHERE run_id = $1) AS rejected",
        ids,
    )[0]
    failure_kinds = run.store.fetch(
        "SELECT stage, reason_kind, count(*) AS n FROM v_failures WHERE run_id = ? "
        "GROUP BY ALL ORDER BY n DESC, stage, reason_kind",
        ids,
    )
    platform: dict[str, dict[str, list[str]]] = {}  # copy_id → field → texts in position order
    for r in run.store.fetch(
        "SELECT copy_id, field, position, text FROM copy_assets WHERE copy_id IN (SELECT unnest(?)) "
        "ORDER BY ALL",
        [[a["copy_id"] for a in assets]],
    ):
        platform.setdefault(r["copy_id"], {}).setdefault(r["field"], []).append(r["text"])
    for a in assets:
        a["platform"] = platform.get(a["copy_id"], {})
    review = run_link(run.run_id)
    folder = run.artifacts.location("reports")
    html = render_report(summary, assets, failures, rejected, folder, review, totals)
    path, _ = run.artifacts.write("reports", run.run_id, ".html", html.encode())
    publish(summary, failure_kinds, assets, run.artifacts.uri(path), review)
    return path


def format_summary(summary: dict[str, Any]) -> list[str]:
    width = max(len(k) for k in summary)
    return ["run summary:"] + [f"  {k.ljust(width)}  {printable(v)}" for k, v in summary.items()]

"""Make images from copy with the image generator, a batch per call."""

from __future__ import annotations

import io
import logging
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from adforge.storage.artifacts import ArtifactStore
from adforge.storage.faults import fault_point
from adforge.tasks.domain import ImageJob, ImageRow
from adforge.tasks.generation import image_generator
from adforge.tasks.ids import derive_seed, make_id

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageOptions:
    """Everything that decides what image comes out; part of every image_id."""

    model: str  # the name as configured
    width: int = 64
    height: int = 64
    steps: int = 2
    guidance_scale: float = 0.0


def plan_images(
    copies: list[dict[str, Any]], per_copy: dict[str, int], options: ImageOptions
) -> list[ImageJob]:
    """`per_copy[brief_hash]` images for each stored copy, each with a deterministic id and seed."""
    settings = asdict(options)
    return [
        ImageJob(
            image_id=make_id("image", copy["copy_id"], index, settings),
            copy_id=copy["copy_id"],
            brief_id=copy["brief_id"],
            image_index=index,
            prompt=copy["image_prompt"],
            seed=derive_seed(copy["copy_id"], index),
        )
        for copy in copies
        for index in range(per_copy[copy["brief_hash"]])
    ]


@task(name="generate-images", retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)
def generate_images(
    jobs: list[ImageJob],
    options: ImageOptions,
    generator: str,
    path: str,
    device: str,
    artifacts: ArtifactStore,
    revision: str = "",
    upload_workers: int = 8,
) -> list[ImageRow]:
    """Generate one batch in a single generator call, write its PNGs `upload_workers` at a time, and
    return the image rows: all of them once every file is written, or none (an error is raised)."""
    fault_point("generate-images")
    images = image_generator(generator, path, device, revision).generate(
        [job.prompt for job in jobs], [job.seed for job in jobs],
        options.width, options.height, options.steps, options.guidance_scale,
    )  # fmt: skip
    return _save_all(list(zip(jobs, images, strict=True)), options, artifacts, upload_workers)


def _save_all(
    batch: list[tuple[ImageJob, Any]], options: ImageOptions, artifacts: ArtifactStore, workers: int
) -> list[ImageRow]:
    """Encode and write each image on a pool of `workers` threads: a PUT to object storage mostly waits
    on the network, and PNG encoding and fsync let other threads run meanwhile. Rows come back in job
    order, and only when every file is written. When one write fails, the writes not started are
    cancelled, those in flight are waited for, then every file the batch made is removed (no file
    without its row) and that write's error is raised: an ArtifactError for a full disk or a
    read-only store, which stops the run."""
    pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(batch))), thread_name_prefix="image-upload")
    try:
        futures = [pool.submit(_save, job, image, options, artifacts) for job, image in batch]
        for future in as_completed(futures):
            future.result()  # the first failure ends the batch
            fault_point("image-file-written")
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)  # nothing is written after the files are removed
        # Every path of the batch, not only the finished writes': a PUT whose reply was lost may have
        # stored its object. remove() deletes only files this store made.
        artifacts.remove([artifacts.path_for("images", job.image_id, ".png") for job, _ in batch])
        raise
    finally:
        pool.shutdown(wait=True)
    return [future.result() for future in futures]


def _save(job: ImageJob, image: Any, options: ImageOptions, artifacts: ArtifactStore) -> ImageRow:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    data = buffer.getvalue()
    path, sha256 = artifacts.write("images", job.image_id, ".png", data)
    return ImageRow(
        **asdict(job), path=path, width=image.width, height=image.height, steps=options.steps,
        guidance_scale=options.guidance_scale, image_model=options.model, sha256=sha256, bytes=len(data),
    )  # fmt: skip

"""Make images from copy with the image generator, a batch per call."""

from __future__ import annotations

import io
import logging
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
) -> list[ImageRow]:
    """Generate one batch in a single generator call, write the PNGs, return the image rows."""
    fault_point("generate-images")
    images = image_generator(generator, path, device, revision).generate(
        [job.prompt for job in jobs], [job.seed for job in jobs],
        options.width, options.height, options.steps, options.guidance_scale,
    )  # fmt: skip
    rows: list[ImageRow] = []
    try:
        for job, image in zip(jobs, images, strict=True):
            rows.append(_save(job, image, options, artifacts))
            fault_point("image-file-written")
    except BaseException:
        artifacts.remove([row.path for row in rows])  # no file without its row
        raise
    return rows


def _save(job: ImageJob, image: Any, options: ImageOptions, artifacts: ArtifactStore) -> ImageRow:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    data = buffer.getvalue()
    path, sha256 = artifacts.write("images", job.image_id, ".png", data)
    return ImageRow(
        **asdict(job), path=path, width=image.width, height=image.height, steps=options.steps,
        guidance_scale=options.guidance_scale, image_model=options.model, sha256=sha256, bytes=len(data),
    )  # fmt: skip

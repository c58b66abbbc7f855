"""Make images from copy with a diffusers text-to-image pipeline, a batch per call."""

from __future__ import annotations

import io
import logging
import threading
from dataclasses import asdict, dataclass
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from storage.artifacts import ArtifactStore
from storage.faults import fault_point
from tasks.ids import derive_seed, make_id

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageOptions:
    """Everything that decides what image comes out; part of every image_id."""

    model: str  # the name as configured
    width: int = 64
    height: int = 64
    steps: int = 2
    guidance_scale: float = 0.0


@dataclass
class ImageJob:
    image_id: str
    copy_id: str
    brief_id: str
    image_index: int
    prompt: str
    seed: int


_pipelines: dict[tuple[str, str], Any] = {}
_pipelines_lock = threading.Lock()


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def get_pipeline(path: str, device: str) -> Any:
    """The process's pipeline for this model and device, loaded on first use and kept."""
    with _pipelines_lock:
        if (path, device) not in _pipelines:
            import torch
            from diffusers import AutoPipelineForText2Image
            from diffusers.utils import logging as diffusers_logging

            # Prompts longer than the text encoder's window are cut; that is expected, not news.
            diffusers_logging.set_verbosity_error()

            logger.info("loading image pipeline %s on %s", path, device)
            dtype = torch.float16 if device == "cuda" else torch.float32
            pipe = AutoPipelineForText2Image.from_pretrained(path, dtype=dtype).to(device)
            pipe.set_progress_bar_config(disable=True)
            _pipelines[(path, device)] = pipe
        return _pipelines[(path, device)]


def plan_images(
    copies: list[dict[str, Any]], per_copy: dict[str, int], options: ImageOptions
) -> list[ImageJob]:
    """`per_copy[brief_hash]` images for each copy, each with a deterministic id and seed."""
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
    jobs: list[ImageJob], options: ImageOptions, path: str, device: str, artifacts: ArtifactStore
) -> list[dict[str, Any]]:
    """Generate one batch in a single pipeline call, write the PNGs, return the image rows."""
    import torch

    device = resolve_device(device)
    pipe = get_pipeline(path, device)
    fault_point("generate-images")
    images = pipe(
        prompt=[job.prompt for job in jobs],
        generator=[torch.Generator(device).manual_seed(job.seed) for job in jobs],
        num_inference_steps=options.steps,
        guidance_scale=options.guidance_scale,
        width=options.width,
        height=options.height,
    ).images
    rows: list[dict[str, Any]] = []
    try:
        for job, image in zip(jobs, images, strict=True):
            rows.append(_save(job, image, options, artifacts))
            fault_point("image-file-written")
    except BaseException:
        artifacts.remove([row["path"] for row in rows])  # no file without its row
        raise
    return rows


def failure(job: ImageJob, reason: str, attempts: int) -> dict[str, Any]:
    """A failures row for an image job."""
    return {"stage": "image", "item_id": job.image_id, "brief_id": job.brief_id, "reason": reason,
            "attempts": attempts}  # fmt: skip


def _save(job: ImageJob, image: Any, options: ImageOptions, artifacts: ArtifactStore) -> dict[str, Any]:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    data = buffer.getvalue()
    file, sha256 = artifacts.write("images", job.image_id, ".png", data)
    return {
        **asdict(job),
        "path": file,
        "width": image.width,
        "height": image.height,
        "steps": options.steps,
        "guidance_scale": options.guidance_scale,
        "image_model": options.model,
        "sha256": sha256,
        "bytes": len(data),
    }

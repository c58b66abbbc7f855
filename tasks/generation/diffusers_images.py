"""The image generator users run: a diffusers text-to-image pipeline, a batch per call."""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


class DiffusersImages:
    def __init__(self, path: str, device: str, revision: str = ""):
        import torch
        from diffusers import AutoPipelineForText2Image
        from diffusers.utils import logging as diffusers_logging

        # Prompts longer than the text encoder's window are cut; that is expected, not news.
        diffusers_logging.set_verbosity_error()
        self.device = resolve_device(device)
        logger.info("loading image pipeline %s on %s", path, self.device)
        dtype = torch.float16 if self.device == "cuda" else torch.float32
        pipe = AutoPipelineForText2Image.from_pretrained(path, dtype=dtype, revision=revision or None)
        self.pipe = pipe.to(self.device)
        self.pipe.set_progress_bar_config(disable=True)

    def generate(
        self, prompts: list[str], seeds: list[int], width: int, height: int, steps: int, guidance_scale: float
    ) -> list[Any]:
        import torch

        return self.pipe(
            prompt=prompts,
            generator=[torch.Generator(self.device).manual_seed(seed) for seed in seeds],
            num_inference_steps=steps,
            guidance_scale=guidance_scale,
            width=width,
            height=height,
        ).images

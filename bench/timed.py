"""The real generators with their model calls timed, for the end-to-end benchmark: selected by the
`text_generator` / `image_generator` settings, so the flow runs exactly as users run it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from adforge.tasks.generation.diffusers_images import DiffusersImages
from adforge.tasks.generation.vllm_text import VllmText

SPENT = {"text": 0.0, "image": 0.0}  # seconds inside model calls, by kind


@contextmanager
def counted(kind: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        SPENT[kind] += time.perf_counter() - start


class TimedText(VllmText):
    """The vLLM generator, its generate calls timed."""

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        with counted("text"):
            return super().generate(*args, **kwargs)


class TimedImages(DiffusersImages):
    """The diffusers generator, its generate calls timed."""

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        with counted("image"):
            return super().generate(*args, **kwargs)

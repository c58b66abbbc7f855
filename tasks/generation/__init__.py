"""The two generators a run needs, as small interfaces: text (copy) and images.

vLLM and diffusers are the implementations users run. The `text_generator` and `image_generator`
settings name one: `vllm` / `diffusers`, or `module:Class` for another implementation (the tests'
deterministic fakes, a benchmark's no-op). One instance per distinct options, per process, kept
loaded for every later task of that process.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

BUILTIN = {
    "vllm": "adforge.tasks.generation.vllm_text:VllmText",
    "diffusers": "adforge.tasks.generation.diffusers_images:DiffusersImages",
}


@dataclass(frozen=True)
class EngineOptions:
    """How the text generator is started; one per distinct value, per process."""

    model: str  # a local path or a model id
    text_generator: str = "vllm"
    text_model_revision: str = ""  # of a hub id: commit, branch or tag; empty: the default branch
    max_model_len: int = 2048
    max_num_seqs: int = 64
    enforce_eager: bool = True
    dtype: str = "float32"
    chunked_prefill: bool = False
    prefix_caching: bool = True  # reuse the KV cache of prompt blocks already computed
    max_num_batched_tokens: int = 8192
    engine_in_process: bool = True
    kv_cache_gb: int = 2
    gpu_memory_utilization: float = 0.6
    tensor_parallel_size: int = 1
    structured_output_backend: str = "guidance"
    pipeline_parallel_size: int = 1
    score_model: str = ""  # the sentence-embedding model that scores copy: a local path or a model id


@dataclass(frozen=True)
class Sampling:
    """Everything that decides what copy comes out; part of every copy_id."""

    model: str  # the name as configured, not the local path, so ids survive moving the cache
    seed: int = 0
    temperature: float = 0.8
    top_p: float = 0.95
    max_tokens: int = 320
    attempts: int = 6
    max_similarity: float = 0.8  # variants of one brief and channel more alike than this are resampled
    languages: str = "en"  # languages the text model writes; the language check runs for these
    candidates: int = (
        1  # completions per request, sharing its prompt; the best that passes every rule is kept
    )
    score_model: str = ""  # the embedding model's name as configured: relevance decides between candidates


@dataclass(frozen=True)
class TextRequest:
    messages: list[dict[str, str]]  # chat messages
    seed: int
    schema: dict[str, Any]  # JSON schema the output must follow (structured output)


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str | None  # "length" when cut off at max_tokens
    prompt_tokens: int
    output_tokens: int


class TextGenerator(Protocol):
    def __init__(self, options: EngineOptions) -> None: ...

    def prompt_tokens(self, messages: list[dict[str, str]]) -> int:
        """Tokens the chat prompt takes, generation prompt included."""
        ...

    def generate(
        self, requests: list[TextRequest], sampling: Sampling, finished: Callable[[int], None]
    ) -> list[list[Completion]]:
        """`sampling.candidates` completions per request, in order; `finished(n)` is called as requests
        finish, so that a long batch can report progress."""
        ...


class ImageGenerator(Protocol):
    def __init__(self, path: str, device: str, revision: str) -> None: ...

    def generate(
        self, prompts: list[str], seeds: list[int], width: int, height: int, steps: int, guidance_scale: float
    ) -> list[Any]:
        """One PIL image per prompt, in order, each from its own seed."""
        ...


_loaded: dict[tuple, Any] = {}
_lock = threading.Lock()


def _load(key: tuple, name: str, *args: Any) -> Any:
    with _lock:
        if key not in _loaded:
            module, _, attr = BUILTIN.get(name, name).partition(":")
            if not attr:
                raise ValueError(f"generator {name!r}: expected {' or '.join(BUILTIN)}, or module:Class")
            _loaded[key] = getattr(importlib.import_module(module), attr)(*args)
        return _loaded[key]


def text_generator(options: EngineOptions) -> TextGenerator:
    """This process's text generator for these options, started on first use."""
    return _load(("text", options), options.text_generator, options)


def image_generator(name: str, path: str, device: str, revision: str = "") -> ImageGenerator:
    """This process's image generator for this model, revision and device, loaded on first use."""
    return _load(("image", name, path, device, revision), name, path, device, revision)


def loaded(options: EngineOptions) -> bool:
    return ("text", options) in _loaded


def drop(options: EngineOptions) -> None:
    """Forget a text generator that failed, so that the task's retry starts a fresh one."""
    with _lock:
        _loaded.pop(("text", options), None)

"""One settings object: defaults, overridden by a TOML file, then ADFORGE_* variables, then flags.

Each group declares its settings once (type, default, description); `Settings` combines the groups
under their flat names, which are what the TOML file, the ADFORGE_* variables and the flags use.
The tasks' option objects are built from it by name (`engine()`, `sampling()`, `images()`).
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from dataclasses import fields
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from adforge.tasks.briefs import Limits
from adforge.tasks.copy import EngineOptions, Sampling
from adforge.tasks.generation import BUILTIN
from adforge.tasks.images import ImageOptions
from adforge.tasks.scoring import HASHING


class Group(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StorageSettings(Group):
    """Where inputs, outputs and models live."""

    db: str = Field("data/adforge.duckdb", description="DuckDB file holding briefs, copy, images and runs")
    lake_data: str = Field(
        "",
        description="folder or s3:// URL where a new DuckLake (db = ducklake:...) keeps its Parquet files; "
        "empty: beside its catalog",
    )
    db_wait_s: float = Field(60.0, description="how long to wait for another process's write to the database")
    lake_retention_days: float = Field(
        7.0,
        ge=0,
        description="`adforge lake maintain` expires DuckLake snapshots older than this many days (and "
        "deletes the files only they used); newer snapshots stay readable",
    )
    artifacts: str = Field(
        "data/artifacts",
        description="folder or fsspec URL (s3://bucket/prefix) for images, creatives and reports",
    )
    models_dir: str = Field(
        str(Path(platformdirs.user_cache_dir("adforge")) / "models"),
        description="local model cache built by `adforge models prepare` (in the user's cache folder, so "
        "that a run finds it from any folder)",
    )
    incremental: bool = Field(
        True,
        description="skip brief files already processed with the same output settings (same content hash)",
    )
    quiet: bool = Field(False, description="log only warnings and the final summary")


class SamplingSettings(Group):
    """What decides the copy that comes out (part of every copy_id)."""

    text_model: str = Field(
        "SmolLM2-135M-Instruct",
        description="copy model: a folder in models_dir, a local path or a Hugging Face id",
    )
    seed: int = Field(0, description="run seed; every request's seed is derived from it")
    temperature: float = Field(0.8, description="sampling temperature for copy")
    top_p: float = Field(0.95, description="nucleus sampling threshold for copy")
    max_tokens: int = Field(320, description="most tokens generated per copy variant")
    copy_attempts: int = Field(
        6,
        description="samples per copy variant (a new seed each) until one passes every rule; then a failure",
    )
    max_variant_similarity: float = Field(
        0.8, description="variants of one brief and channel more alike than this (0-1) are sampled again"
    )
    text_model_languages: str = Field(
        "en",
        description="languages the copy model writes (comma-separated codes, or 'any'); checked for those "
        "briefs",
    )
    copy_chunk_size: int = Field(256, description="prompts per copy task; vLLM batches within a chunk")
    copy_candidates: int = Field(
        4,
        ge=1,
        le=16,
        description="completions the engine writes per copy variant in one pass (vLLM's n, one prefill); the "
        "best that passes every rule is kept, the rest resampled only when none passes",
    )
    score_model: str = Field(
        "all-MiniLM-L6-v2",
        description="sentence-embedding model for relevance and diversity: a folder in models_dir, a local "
        "path, a Hugging Face id, or 'hashing' (no model: shared words only, for tests and benchmarks)",
    )


class EngineSettings(Group):
    """How the text engine is started."""

    text_generator: str = Field(
        "vllm", description="text generator: vllm, or module:Class of another TextGenerator implementation"
    )
    structured_output_backend: str = Field(
        "guidance", description="vLLM structured output backend; the copy grammar's patterns need guidance"
    )
    max_model_len: int = Field(2048, description="context length the text engine is started with")
    max_num_seqs: int = Field(64, description="most sequences vLLM decodes at once")
    enforce_eager: bool = Field(
        True,
        description="skip vLLM graph compilation: first token 16 s after a cold start instead of 154 s on "
        "2 cores",
    )
    dtype: str = Field(
        "float32",
        description="weights dtype for the text model; float32 keeps copy identical across batchings on CPU",
    )
    chunked_prefill: bool = Field(
        False, description="split long prefills across steps; must stay off on CPU when requests carry seeds"
    )
    prefix_caching: bool = Field(
        True,
        description="reuse the KV cache of prompt blocks (128 tokens on CPU) an earlier prompt began with; "
        "prompts of one brief and channel share most of theirs",
    )
    max_num_batched_tokens: int = Field(8192, description="most tokens vLLM schedules in one step")
    engine_in_process: bool = Field(
        True, description="run vLLM's engine core in this process; faster on small CPUs, turn off on GPUs"
    )
    kv_cache_gb: int = Field(2, description="KV cache size in GiB on CPU (VLLM_CPU_KVCACHE_SPACE)")
    gpu_memory_utilization: float = Field(
        0.6, description="share of GPU memory vLLM may take; the rest is left to the image model"
    )
    tensor_parallel_size: int = Field(1, description="GPUs one text engine splits each layer across")
    pipeline_parallel_size: int = Field(
        1, description="GPUs one text engine splits its layers across, in stages"
    )
    text_model_revision: str = Field(
        "", description="commit, branch or tag of text_model on the Hugging Face hub; empty: its default"
    )


class ImageSettings(Group):
    """Images and creatives."""

    image_model: str = Field(
        "tiny-sd", description="image model: a folder in models_dir, a local path or a Hugging Face id"
    )
    image_model_revision: str = Field(
        "", description="commit, branch or tag of image_model on the Hugging Face hub; empty: its default"
    )
    image_generator: str = Field(
        "diffusers",
        description="image generator: diffusers, or module:Class of another ImageGenerator implementation",
    )
    image_width: int = Field(64, description="image width in pixels (512 for sd-turbo)")
    image_height: int = Field(64, description="image height in pixels (512 for sd-turbo)")
    image_steps: int = Field(2, description="diffusion steps per image (1-4 for turbo models)")
    guidance_scale: float = Field(0.0, description="classifier-free guidance; 0 for turbo models")
    image_batch_size: int = Field(8, description="images generated per diffusers call and per image task")
    upload_workers: int = Field(
        8, ge=1, le=64, description="image files an image task writes to the artifacts store at once"
    )
    device: str = Field("auto", description="torch device for the image model: auto, cpu or cuda")
    creative_font: str = Field(
        "DejaVuSans-Bold.ttf",
        description="TrueType font for creatives: a path or a file in the system's font folders; characters "
        "it lacks are drawn in DejaVu or Noto (make fonts), and text no installed font draws is a failure",
    )
    brand_kits: str = Field(
        "",
        description="folder of brand kits (TOML, one per brand: colours, logo, font, business name, final "
        "URL, tone notes) for the prompts and the creatives; empty: none",
    )
    segments: str = Field(
        "",
        description="Parquet file of audience segments (segment_id, name, description, any attributes) that "
        "briefs name by id in their segments column; empty: segments.parquet beside the briefs, if any",
    )


class ExecutorSettings(Group):
    """Where the generation tasks run."""

    executor: str = Field(
        "local", description="where copy chunks and image batches run: local (this process, in order) or ray"
    )
    ray_address: str = Field(
        "",
        description="Ray cluster to run on (auto, or ray://HEAD:10001); empty starts a local one for the run",
    )
    ray_cpus_per_task: float = Field(1.0, description="CPUs each copy or image task reserves on Ray")
    ray_gpus_per_copy_task: float = Field(
        0.0,
        description="GPUs each copy task reserves on Ray: tensor_parallel_size × pipeline_parallel_size on "
        "GPUs",
    )
    ray_gpus_per_image_task: float = Field(
        0.0, description="GPUs each image task reserves on Ray (1 on GPUs)"
    )


class LimitsSettings(Group):
    """Bounds on brief files: a row beyond one is rejected with a reason naming the limit."""

    max_rows_per_file: int = Field(
        1_000_000, description="rows a brief file may have; a longer file is rejected"
    )
    max_field_chars: int = Field(
        2000,
        description="characters in any text field (key_message, and each banned word); names and codes keep "
        "tighter caps of their own (brand 200, audience 500, ...)",
    )
    max_list_items: int = Field(100, description="items in channels, banned_words, claims, segments, locales")
    max_metadata_bytes: int = Field(
        65_536, description="bytes of a row's other columns, stored as JSON in briefs.metadata"
    )

    def limits(self) -> Limits:
        return Limits(**{name: getattr(self, name) for name in LimitsSettings.model_fields})


GROUPS: tuple[type[Group], ...] = (
    StorageSettings,
    SamplingSettings,
    EngineSettings,
    ImageSettings,
    ExecutorSettings,
    LimitsSettings,
)
_config_file: ContextVar[Path | None] = ContextVar("config_file", default=None)


class Settings(
    StorageSettings,
    SamplingSettings,
    EngineSettings,
    ImageSettings,
    ExecutorSettings,
    LimitsSettings,
    BaseSettings,
):
    model_config = SettingsConfigDict(env_prefix="ADFORGE_", frozen=True, extra="forbid")

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:  # fmt: skip
        """Flags (init) beat ADFORGE_* variables, which beat the TOML file."""
        path = _config_file.get()
        return (init_settings, env_settings) + (
            (TomlConfigSettingsSource(settings_cls, path),) if path else ()
        )

    def text_model_path(self) -> str:
        return _resolve_model("text_model", self.text_model, self.models_dir, self.text_generator)

    def image_model_path(self) -> str:
        return _resolve_model("image_model", self.image_model, self.models_dir, self.image_generator)

    def score_model_path(self) -> str:
        if self.score_model == HASHING:
            return HASHING
        return _resolve_model("score_model", self.score_model, self.models_dir, "vllm")

    def check_models(self) -> None:
        """Raise the error a model missing from the cache would give, before any work is done."""
        self.text_model_path()
        self.image_model_path()
        self.score_model_path()

    def engine(self) -> EngineOptions:
        """How to start the text engine: the engine settings, with the model resolved to a path."""
        return EngineOptions(
            model=self.text_model_path(), score_model=self.score_model_path(),
            **_pick(self, EngineOptions, skip={"model", "score_model"}),
        )  # fmt: skip

    def sampling(self) -> Sampling:
        return Sampling(
            model=self.text_model, seed=self.seed, temperature=self.temperature, top_p=self.top_p,
            max_tokens=self.max_tokens, attempts=self.copy_attempts,
            max_similarity=self.max_variant_similarity, languages=self.text_model_languages,
            candidates=self.copy_candidates, score_model=self.score_model,
        )  # fmt: skip

    def images(self) -> ImageOptions:
        return ImageOptions(
            model=self.image_model, width=self.image_width, height=self.image_height, steps=self.image_steps,
            guidance_scale=self.guidance_scale,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


def _pick(s: Settings, options: type, skip: set[str]) -> dict[str, Any]:
    """The settings named like the fields of a dataclass of options."""
    return {f.name: getattr(s, f.name) for f in fields(options) if f.name not in skip}


def _resolve_model(setting: str, name: str, models_dir: str, generator: str) -> str:
    """A name found in the model cache means that folder; a path or hub id goes to the loader as is. A
    bare name missing from the cache is an error for vLLM and diffusers, never a download from the hub."""
    cached = Path(models_dir) / name
    if cached.is_dir():
        return str(cached.resolve())  # absolute: workers may start elsewhere
    if generator in BUILTIN and "/" not in name:
        raise ValueError(
            f"{setting}: {name} is not in the model cache {models_dir}; run adforge models prepare, "
            "or name a local folder or a hub id (org/name)"
        )
    return name


def load_settings(config: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Build settings from the TOML file (if any), ADFORGE_* variables and explicit overrides; a bad
    value is a ValueError naming the setting and what was expected."""
    path = (
        config
        or os.environ.get("ADFORGE_CONFIG")
        or ("adforge.toml" if Path("adforge.toml").exists() else None)
    )
    token = _config_file.set(Path(path) if path else None)
    try:
        return Settings(**{k: v for k, v in (overrides or {}).items() if v is not None})
    except ValidationError as e:
        raise ValueError(_explain(e, path)) from None
    finally:
        _config_file.reset(token)


def _explain(e: ValidationError, path: str | Path | None) -> str:
    unknown = sorted(str(err["loc"][0]) for err in e.errors() if err["type"] == "extra_forbidden")
    if unknown:
        return f"{path}: unknown settings {', '.join(unknown)}"
    err = e.errors()[0]
    name = ".".join(map(str, err["loc"]))
    expected = {"bool_parsing": "true or false", "int_parsing": "a number", "float_parsing": "a number"}
    return f"{name}: expected {expected.get(err['type'], err['msg'])}, got {err['input']!r}"

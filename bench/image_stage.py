"""Image stage: the batched diffusers call the pipeline makes vs a per-image loop, on the same prompts
and seeds. Images per second, their ratio, and peak memory of each, each mode in its own process."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from bench.common import peak_rss_mib, save, timed


def run_mode(mode: str, images: int, batch_size: int) -> dict:
    """Generate `images` images in this process, batched or one by one; returns rate and peak memory."""
    import torch

    from adforge.flows.settings import load_settings
    from adforge.tasks.generation.diffusers_images import DiffusersImages

    settings = load_settings()
    options = settings.images()
    generator = DiffusersImages(settings.image_model_path(), settings.device)
    pipe, device = generator.pipe, generator.device
    prompts = [f"a product photo, variant {i}, soft light" for i in range(images)]
    size = batch_size if mode == "batched" else 1

    def call(start: int, n: int) -> None:
        pipe(
            prompt=prompts[start : start + n],
            generator=[torch.Generator(device).manual_seed(start + k) for k in range(n)],
            num_inference_steps=options.steps,
            guidance_scale=options.guidance_scale,
            width=options.width,
            height=options.height,
        )

    call(0, size)  # warm-up
    rss_before = peak_rss_mib()
    with timed() as t:
        for start in range(0, images, size):
            call(start, min(size, images - start))
    return {
        "images": images,
        "seconds": round(t["s"], 2),
        "images_per_s": round(images / t["s"], 2),
        "peak_rss_mib": peak_rss_mib(),
        "peak_rss_before_mib": rss_before,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument(
        "--batch-size", type=int, help="images per call (default: the image_batch_size setting)"
    )
    parser.add_argument("--mode", choices=["batched", "loop"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.batch_size is None:
        from adforge.flows.settings import load_settings

        args.batch_size = load_settings().image_batch_size
    if args.mode:  # child process: one mode, result on stdout
        print(json.dumps(run_mode(args.mode, args.images, args.batch_size)))
        return
    runs = {}
    for mode in ("batched", "loop"):
        cmd = [
            sys.executable,
            "-m",
            "bench.image_stage",
            "--mode",
            mode,
            "--images",
            str(args.images),
            "--batch-size",
            str(args.batch_size),
        ]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        runs[mode] = json.loads(out.strip().splitlines()[-1])
    save(
        "image_stage",
        {
            "batch_size": args.batch_size,
            "runs": runs,
            "ratios": {
                "batched/loop": round(runs["batched"]["images_per_s"] / runs["loop"]["images_per_s"], 2)
            },
            "targets": {"batched/loop": ">= 1.5"},
        },
    )


if __name__ == "__main__":
    main()

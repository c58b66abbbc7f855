"""Uploads: image files written by the image task to S3 (moto's server on loopback, in its own process,
as the tests start it), 1 worker vs `upload_workers` vs 16, for small and large PNGs of random noise
(which do not compress). Files per second side by side, and their ratios to one worker.

The images are made before the clock starts (a generator that hands back ready noise), so what is
timed is what the task does after the generator: PNG encoding and the writes, `upload_workers` at a
time. moto shares this machine's cores with the benchmark; a real object store adds network latency,
which is what more workers hide."""

from __future__ import annotations

import argparse
import io
import os
import random
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import save, timed
from bench.s3 import s3_server as server

GENERATOR = "bench.uploads:NoiseImages"
DISTINCT = 16  # distinct noise images per size, reused across the files


_noise: dict[tuple[int, int], list[Any]] = {}


def noise(width: int, height: int) -> list[Any]:
    """DISTINCT images of RGB noise of this size, made once."""
    from PIL import Image

    if (width, height) not in _noise:
        rng = random.Random(width * 100_003 + height)
        _noise[width, height] = [
            Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
            for _ in range(DISTINCT)
        ]
    return _noise[width, height]


class NoiseImages:
    """An image generator (module:Class) that hands back ready-made noise: nothing to compute."""

    def __init__(self, path: str, device: str, revision: str = ""):
        pass

    def generate(
        self, prompts: list[str], seeds: list[int], width: int, height: int, steps: int, guidance_scale: float
    ) -> list[Any]:
        images = noise(width, height)
        return [images[seed % DISTINCT] for seed in seeds]


@contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3 server (bench/s3.py), reached through the standard AWS variables."""
    with tempfile.TemporaryDirectory() as tmp, server(Path(tmp) / "server.log") as endpoint:
        os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="bench",
                          AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")  # fmt: skip
        yield endpoint


def jobs_for(n: int, options: Any) -> list:
    from adforge.tasks.images import plan_images

    copies = [{"copy_id": f"copy-{i:012x}", "brief_id": "bench", "brief_hash": "h", "image_prompt": "noise"}
              for i in range(n)]  # fmt: skip
    return plan_images(copies, {"h": 1}, options)


def write_all(root: str, size: int, images: int, batch_size: int, workers: int) -> dict[str, Any]:
    """`images` noise PNGs of size×size written by the image task to a fresh prefix, batch by batch."""
    from adforge.storage.artifacts import ArtifactStore
    from adforge.tasks.generation import image_generator
    from adforge.tasks.images import ImageOptions, generate_images

    options = ImageOptions(model="noise", width=size, height=size)
    jobs = jobs_for(images, options)
    image_generator(GENERATOR, "", "cpu").generate([""], [0], size, size, 1, 0.0)  # the noise, made now
    store = ArtifactStore(root)
    store.check_writable("images")  # as the flow does before its first batch: the connection is made
    rows = []
    with timed() as t:
        for start in range(0, images, batch_size):
            batch = jobs[start : start + batch_size]
            rows += generate_images.fn(batch, options, GENERATOR, "", "cpu", store, upload_workers=workers)
    assert len(rows) == images and len(store.fs.ls(store.location("images"), detail=False)) == images
    store.fs.rm(store.location(""), recursive=True)  # moto keeps objects in memory
    total = sum(r.bytes for r in rows)
    return {
        "size": f"{size}x{size}",
        "workers": workers,
        "files": images,
        "kib_per_file": round(total / images / 1024, 1),
        "seconds": round(t["s"], 2),
        "files_per_s": round(images / t["s"], 1),
        "mib_per_s": round(total / 2**20 / t["s"], 1),
    }


def encode_rate(size: int) -> float:
    """PNGs of this size one thread encodes per second, without writing them: the CPU's share."""
    images = noise(size, size)
    with timed() as t:
        for image in images:
            image.save(io.BytesIO(), format="PNG")
    return round(len(images) / t["s"], 1)


def main() -> None:
    from adforge.flows.settings import load_settings

    default_workers = load_settings().upload_workers
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=256, help="files written per size and worker count")
    parser.add_argument("--sizes", default="64,512", help="image sizes in pixels (square), comma-separated")
    parser.add_argument(
        "--batch-size", type=int, default=32,
        help="images per image task (a GPU-sized batch: a task never writes more files at once than it has)",
    )  # fmt: skip
    parser.add_argument("--workers", default=f"1,{default_workers},16", help="worker counts to compare")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    counts = [int(w) for w in args.workers.split(",")]
    table, ratios, encode = [], {}, {}
    with s3_server():
        import fsspec

        bucket = f"bench-{uuid.uuid4().hex[:12]}"
        fsspec.filesystem("s3").mkdir(bucket)
        for size in sizes:
            encode[f"{size}x{size}"] = encode_rate(size)
            write_all(f"s3://{bucket}/warm-up", size, min(args.batch_size, args.images), args.batch_size, 1)
            runs = [
                write_all(f"s3://{bucket}/{size}-{w}", size, args.images, args.batch_size, w) for w in counts
            ]
            for run in runs:
                run["vs_1_worker"] = round(run["files_per_s"] / runs[0]["files_per_s"], 2)
                if run["workers"] != counts[0]:
                    ratios[f"{size}x{size} {run['workers']}/{counts[0]} workers"] = run["vs_1_worker"]
            table += runs
            print(
                *(f"{r['size']} {r['workers']:>2} workers: {r['files_per_s']} files/s" for r in runs),
                sep="\n",
            )
    save(
        "uploads",
        {
            "store": "S3 API on loopback (moto.server, its own process on the same cores)",
            "images": args.images,
            "batch_size": args.batch_size,
            "upload_workers_default": default_workers,
            "encode_only_files_per_s_1_thread": encode,
            "table": table,
            "ratios": ratios,
        },
    )


if __name__ == "__main__":
    main()

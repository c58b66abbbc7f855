"""Image generation on the real diffusers pipeline, loaded from the cache with from_pretrained."""

from __future__ import annotations

import hashlib
from pathlib import Path

from PIL import Image

from adforge.storage.artifacts import ArtifactStore
from adforge.tasks.images import ImageOptions, generate_images, plan_images

COPIES = [
    {"copy_id": "copy-aaaa00000000", "brief_id": "../../etc/passwd", "brief_hash": "h1",
     "image_prompt": "a mug"},
    {"copy_id": "copy-bbbb00000000", "brief_id": "b2", "brief_hash": "h2", "image_prompt": "a bike"},
]  # fmt: skip


def test_batch_makes_requested_count_and_size(models_dir: str, tmp_path: Path):
    options = ImageOptions(model="tiny-sd", width=64, height=32, steps=2)
    jobs = plan_images(COPIES, {"h1": 2, "h2": 1}, options)
    assert len(jobs) == 3 and len({j.image_id for j in jobs}) == 3
    path = f"{models_dir}/tiny-sd"
    rows = generate_images.fn(jobs, options, "diffusers", path, "cpu", ArtifactStore(tmp_path))
    assert len(rows) == 3
    for row in rows:
        path = Path(row.path)
        assert path.parent == tmp_path / "images", "names come from ids, never from brief text"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == row.sha256
        with Image.open(path) as image:
            assert image.size == (64, 32) == (row.width, row.height)


def test_same_seed_same_image(models_dir: str, tmp_path: Path):
    options = ImageOptions(model="tiny-sd")
    jobs = plan_images(COPIES[:1], {"h1": 1}, options)
    path = f"{models_dir}/tiny-sd"
    first = generate_images.fn(jobs, options, "diffusers", path, "cpu", ArtifactStore(tmp_path / "a"))
    second = generate_images.fn(jobs, options, "diffusers", path, "cpu", ArtifactStore(tmp_path / "b"))
    assert first[0].sha256 == second[0].sha256


def test_zero_images_per_copy_plans_nothing():
    assert plan_images(COPIES, {"h1": 0, "h2": 0}, ImageOptions(model="tiny-sd")) == []

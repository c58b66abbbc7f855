"""Runs that share an artifacts folder never damage each other's files."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from adforge.storage.artifacts import ArtifactStore

IDS = [f"image-{i:020x}" for i in range(150)]


def _write_all(root: str, payload: bytes) -> None:
    store = ArtifactStore(root)
    store.check_writable("images")
    for item_id in IDS:
        store.write("images", item_id, ".png", payload)


def test_two_processes_write_the_same_files_at_once(tmp_path: Path):
    ctx = multiprocessing.get_context("spawn")
    writers = [ctx.Process(target=_write_all, args=(str(tmp_path), bytes([n]) * 50_000)) for n in (1, 2)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(timeout=120)
    assert [w.exitcode for w in writers] == [0, 0], "no run fails on the other's temporary or probe files"
    files = sorted((tmp_path / "images").iterdir())
    assert [f.name for f in files] == [f"{i}.png" for i in IDS], "no temporary or probe file left over"
    assert all(f.read_bytes() in (b"\x01" * 50_000, b"\x02" * 50_000) for f in files), "each file whole"


def test_a_failed_batch_removes_only_the_files_it_made(tmp_path: Path):
    other_run = ArtifactStore(tmp_path)
    kept, _ = other_run.write("images", IDS[0], ".png", b"recorded by another run")
    store = ArtifactStore(tmp_path)
    same, _ = store.write("images", IDS[0], ".png", b"recorded by another run")
    made, _ = store.write("images", IDS[1], ".png", b"only this run's")
    store.remove([same, made])
    assert Path(kept).exists() and not Path(made).exists()

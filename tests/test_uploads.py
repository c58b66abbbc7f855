"""An image batch's files are written `upload_workers` at a time, to a local folder and to S3 (moto's
server on loopback), and still all or none: a row only for a file that exists, no file of a failed batch."""

from __future__ import annotations

import errno
import hashlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fakes import IMAGES

from adforge.storage import artifacts as artifacts_module
from adforge.storage.artifacts import ArtifactError, ArtifactStore
from adforge.tasks import images as images_module
from adforge.tasks.images import ImageOptions, generate_images, plan_images

OPTIONS = ImageOptions(model="fake", width=16, height=16)


def jobs_for(n: int) -> list:
    copies = [{"copy_id": f"copy-{i:012x}", "brief_id": "b1", "brief_hash": "h1", "image_prompt": f"mug {i}"}
              for i in range(n)]  # fmt: skip
    return plan_images(copies, {"h1": 1}, OPTIONS)


class InFlight:
    """Wraps a write function and counts how many of its calls run at once. Each call waits, up to 10 s,
    until `expected` have been running together (after that, or once the wait has timed out, calls go
    straight through): writes one at a time show as a maximum of 1 after one wait, never as a hang."""

    def __init__(self, expected: int):
        self.expected, self.now, self.most, self.done = expected, 0, 0, 0
        self.released = False
        self.cond = threading.Condition()

    def wrap(self, write: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            with self.cond:
                self.now += 1
                self.most = max(self.most, self.now)
                if self.now >= self.expected:
                    self.released = True
                    self.cond.notify_all()
                if not self.cond.wait_for(lambda: self.released, timeout=10):
                    self.released = True  # they do not all run at once: let the rest through
            try:
                return write(*args, **kwargs)
            finally:
                with self.cond:
                    self.now -= 1
                    self.done += 1
                    self.cond.notify_all()

        return counted


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "local":
        return ArtifactStore(tmp_path / "art")
    return ArtifactStore(f"s3://{request.getfixturevalue('s3_bucket')}/art")


def wrap_writes(store: ArtifactStore, monkeypatch: pytest.MonkeyPatch, wrap: Callable) -> None:
    """Wrap the call that puts one file's bytes in place: the atomic local write, or the S3 PUT."""
    if store.local:
        monkeypatch.setattr(artifacts_module, "_write_atomic", wrap(artifacts_module._write_atomic))
    else:
        monkeypatch.setattr(store.fs, "pipe_file", wrap(store.fs.pipe_file))


def stored_files(store: ArtifactStore) -> set[str]:
    folder = store.location("images")
    if not store.fs.exists(folder):
        return set()
    return {store.location("images", Path(p).name) for p in store.fs.ls(folder, detail=False)}


def run_batch(jobs: list, store: ArtifactStore, workers: int) -> list:
    return generate_images.fn(jobs, OPTIONS, IMAGES, "", "cpu", store, upload_workers=workers)


@pytest.mark.parametrize(("images", "workers"), [(20, 8), (5, 8), (6, 1)])
def test_batch_is_written_workers_at_a_time(
    store: ArtifactStore, monkeypatch: pytest.MonkeyPatch, images: int, workers: int
):
    jobs = jobs_for(images)
    gate = InFlight(expected=min(images, workers))
    wrap_writes(store, monkeypatch, gate.wrap)
    rows = run_batch(jobs, store, workers)
    assert gate.most == min(images, workers), "as many writes at once as workers allow, never more"
    assert gate.done == images
    assert [r.image_id for r in rows] == [j.image_id for j in jobs], "rows in job order"
    assert stored_files(store) == {r.path for r in rows}
    again = ArtifactStore(store.location(""))  # another process reads what the rows point to
    for row in rows:
        data = again.read(row.path)
        assert hashlib.sha256(data).hexdigest() == row.sha256 and len(data) == row.bytes


def test_a_failed_write_mid_batch_leaves_no_row_and_no_file_of_the_batch(
    store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
):
    jobs = jobs_for(16)
    # One file of the batch was there before (another run's): it is not this batch's to remove.
    theirs = ArtifactStore(store.location("")).write("images", jobs[10].image_id, ".png", b"theirs")[0]
    bad = store.path_for("images", jobs[3].image_id, ".png")
    written = threading.Semaphore(0)

    def fails_on_one(write: Callable[..., Any]) -> Callable[..., Any]:
        def maybe(path: Any, data: bytes, *args: Any, **kwargs: Any) -> Any:
            if str(path) == bad:  # fails once the other writes of the first round have finished
                for _ in range(7):
                    written.acquire(timeout=10)
                raise OSError(errno.ENOSPC, "No space left on device")
            result = write(path, data, *args, **kwargs)
            written.release()
            return result

        return maybe

    with monkeypatch.context() as patch:
        wrap_writes(store, patch, fails_on_one)
        before: set[str] = set()
        remove = store.remove

        def seen_then_removed(locations: list[str]) -> None:
            before.update(stored_files(store))
            remove(locations)

        patch.setattr(store, "remove", seen_then_removed)
        with pytest.raises(ArtifactError, match=f"cannot write {bad}: No space left on device"):
            run_batch(jobs, store, 8)
    assert len(before - {theirs}) >= 7, "the other writes of the first round were done when it failed"
    assert stored_files(store) == {theirs}, "the batch's files are removed, another run's file stays"
    if store.local:
        assert [p.name for p in Path(store.root, "images").iterdir()] == [Path(theirs).name], "no temp file"

    rows = run_batch(jobs, store, 8)  # the task's retry, with room on the disk again
    assert stored_files(store) == {r.path for r in rows} and len(rows) == 16


def test_a_fault_after_a_written_file_removes_the_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from collections import Counter

    from adforge.storage import faults

    monkeypatch.setattr(faults, "_reached", Counter())
    monkeypatch.setenv("ADFORGE_FAULT", "raise:image-file-written:2")
    store = ArtifactStore(tmp_path / "art")
    with pytest.raises(faults.InjectedFault):
        run_batch(jobs_for(12), store, 8)
    assert list((tmp_path / "art" / "images").iterdir()) == []


def test_full_disk_is_an_artifact_error_and_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    store = ArtifactStore(tmp_path / "art")
    calls = 0
    fsync = artifacts_module.os.fsync

    def fills_up(fd: int) -> None:  # the disk fills up after two files
        nonlocal calls
        calls += 1
        if calls > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        fsync(fd)

    monkeypatch.setattr("adforge.storage.artifacts.os.fsync", fills_up)
    with pytest.raises(ArtifactError, match="No space left on device"):
        run_batch(jobs_for(12), store, 8)
    assert list((tmp_path / "art" / "images").iterdir()) == []


def test_upload_workers_setting_reaches_the_image_task(
    settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    from adforge.flows.generate_campaigns import generate_campaigns

    pools: list[int] = []

    class Recorded(images_module.ThreadPoolExecutor):
        def __init__(self, max_workers: int, **kwargs: Any):
            pools.append(max_workers)
            super().__init__(max_workers, **kwargs)

    monkeypatch.setattr(images_module, "ThreadPoolExecutor", Recorded)
    brief = {"brief_id": "alpha", "brand": "Nordbrew", "product": "Cold brew", "audience": "commuters",
             "key_message": "Coffee in 30 seconds", "channels": ["x", "email"], "variants": 2}  # fmt: skip
    pq.write_table(pa.Table.from_pylist([brief]), tmp_path / "briefs.parquet")
    overrides = {**settings.to_dict(), "upload_workers": 3, "image_batch_size": 4}
    summary = generate_campaigns(briefs=[str(tmp_path / "briefs.parquet")], settings=overrides)
    assert summary["images"] == 4 and pools == [3]

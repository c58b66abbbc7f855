"""Where image files go: a local folder or any fsspec URL (s3://bucket/prefix, gs://..., memory://...).

Names come from generated ids only, never from input text. Rows store a file's location as a local
path for a local folder, and as a full URL otherwise."""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import secrets
import socket
from pathlib import Path

import fsspec
from fsspec.implementations.local import LocalFileSystem

# Generated ids (`image-<hex>`) and run ids (`run-<date>-<time>-<hex>`).
SAFE_ID = re.compile(r"^[a-z]+-([0-9a-f]{8,64}|[0-9]{8}-[0-9]{6}-[0-9a-f]{6})$")


class ArtifactError(OSError):
    """The artifacts folder cannot take files: the run stops rather than record missing images."""


class ArtifactStore:
    """A folder of artifact files. Local files are written atomically (temporary file, then rename);
    on object storage an object appears only once its upload is complete. Temporary and probe names
    are unique per process, so runs that write the same folder never touch each other's. Several
    threads may write different files at once (an image batch writes `upload_workers` at a time)."""

    def __init__(self, root: str | Path):
        self.fs, path = fsspec.core.url_to_fs(str(root))
        self.local = isinstance(self.fs, LocalFileSystem)
        self.root = str(Path(path).resolve()) if self.local else path.rstrip("/")
        # Files this store made (they did not exist before); writing threads add to it (set.add is
        # atomic), and a lock would keep the store from being pickled for Ray's workers.
        self.created: set[str] = set()
        self.checked: set[str] = set()  # kinds whose folder check_writable has found writable

    def location(self, *parts: str) -> str:
        """What a row stores for a file or folder under the root: a local path, or a full URL."""
        path = posixpath.join(self.root, *parts)
        return path if self.local else self.fs.unstrip_protocol(path)

    def uri(self, location: str) -> str:
        """A link to a stored location (file:// for local files)."""
        return Path(location).as_uri() if self.local else location

    def path_for(self, kind: str, item_id: str, suffix: str) -> str:
        if not SAFE_ID.match(item_id) or not kind.isalpha():
            raise ValueError(f"refusing unsafe artifact name {kind}/{item_id!r}")
        return self.location(kind, f"{item_id}{suffix}")

    def check_writable(self, kind: str) -> None:
        """Fail early, with the folder's name, if files cannot be created there. A local folder is
        also swept of the temporary files a killed run of this machine left behind. Once per kind: a run
        asks before each slice of its work."""
        if kind in self.checked:
            return
        folder = self.location(kind)
        try:
            if self.local:  # object storage has no folders, and s3fs's makedirs would create a bucket
                self.fs.makedirs(folder, exist_ok=True)
                _remove_stale_temporaries(Path(folder))
            probe = posixpath.join(folder, f".write-check.{_unique()}.tmp")
            self.fs.pipe_file(probe, b"")
            self.fs.rm_file(probe)
        except OSError as e:
            raise ArtifactError(f"artifacts folder {folder} is not writable: {e.strerror or e}") from e
        self.checked.add(kind)

    def write(self, kind: str, item_id: str, suffix: str, data: bytes) -> tuple[str, str]:
        """Write one file; returns its location and sha256. A crash leaves no half-written file."""
        path = self.path_for(kind, item_id, suffix)
        try:
            if not self.fs.exists(path):
                self.created.add(path)
            if self.local:
                _write_atomic(Path(path), data)
            else:
                self.fs.pipe_file(path, data)
        except OSError as e:
            raise ArtifactError(f"cannot write {path}: {e.strerror or e}") from e
        return path, hashlib.sha256(data).hexdigest()

    def read(self, location: str) -> bytes:
        return self.fs.cat_file(location)

    def remove(self, locations: list[str]) -> None:
        """Delete files whose rows will not be written (a batch that failed part-way), if this store
        made them: a file that was there before belongs to another run, which may have recorded it."""
        for location in locations:
            if location in self.created and self.fs.exists(location):
                self.fs.rm_file(location)
            self.created.discard(location)


# Temporary names carry the writer's host and process id, so a later run can tell a dead writer's
# leftovers from a live one's (another machine may write the same shared folder).
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
_TEMPORARY = re.compile(rf"^\..+\.{_HOST}-(\d+)-[0-9a-f]+\.tmp$")


def _unique() -> str:
    return f"{_HOST}-{os.getpid()}-{secrets.token_hex(4)}"


def _remove_stale_temporaries(folder: Path) -> None:
    """Delete temporary files whose writer, a process of this machine, is no longer running."""
    for path in folder.iterdir():
        match = _TEMPORARY.match(path.name)
        if match and not _running(int(match[1])):
            path.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{_unique()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise

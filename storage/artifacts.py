"""Where image files go. Names come from generated ids only, never from input text."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

# Generated ids (`image-<hex>`) and run ids (`run-<date>-<time>-<hex>`).
SAFE_ID = re.compile(r"^[a-z]+-([0-9a-f]{8,64}|[0-9]{8}-[0-9]{6}-[0-9a-f]{6})$")


class ArtifactError(OSError):
    """The artifacts folder cannot take files: the run stops rather than record missing images."""


class ArtifactStore:
    """A folder of artifact files, written atomically (temporary file, then rename)."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()

    def path_for(self, kind: str, item_id: str, suffix: str) -> Path:
        if not SAFE_ID.match(item_id) or not kind.isalpha():
            raise ValueError(f"refusing unsafe artifact name {kind}/{item_id!r}")
        return self.root / kind / f"{item_id}{suffix}"

    def check_writable(self, kind: str) -> None:
        """Fail early, with the folder's name, if files cannot be created there."""
        folder = self.root / kind
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / ".write-check"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            raise ArtifactError(f"artifacts folder {folder} is not writable: {e.strerror or e}") from e

    def write(self, kind: str, item_id: str, suffix: str, data: bytes) -> tuple[Path, str]:
        """Write one file; returns its path and sha256. A crash leaves no half-written file."""
        path = self.path_for(kind, item_id, suffix)
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise ArtifactError(f"cannot write {path}: {e.strerror or e}") from e
        return path, hashlib.sha256(data).hexdigest()

    def remove(self, paths: list[Path]) -> None:
        """Delete files whose rows will not be written (a batch that failed part-way)."""
        for path in paths:
            path.unlink(missing_ok=True)

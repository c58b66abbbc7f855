"""Where image files go. Names come from generated ids only, never from input text."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

SAFE_ID = re.compile(r"^[a-z]+-[0-9a-f]{8,64}$")


class ArtifactStore:
    """A folder of artifact files, written atomically (temporary file, then rename)."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()

    def path_for(self, kind: str, item_id: str, suffix: str) -> Path:
        if not SAFE_ID.match(item_id) or not kind.isalpha():
            raise ValueError(f"refusing unsafe artifact name {kind}/{item_id!r}")
        return self.root / kind / f"{item_id}{suffix}"

    def write(self, kind: str, item_id: str, suffix: str, data: bytes) -> tuple[Path, str]:
        """Write one file; returns its path and sha256. A crash leaves no half-written file."""
        path = self.path_for(kind, item_id, suffix)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return path, hashlib.sha256(data).hexdigest()

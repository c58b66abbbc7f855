"""Deterministic ids and seeds: the same inputs always give the same id, on any machine."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def stable_hash(*parts: Any) -> str:
    """Hex sha256 of the parts as canonical JSON."""
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def make_id(prefix: str, *parts: Any) -> str:
    """A short, file-name-safe id such as `copy-3f2a...` (20 hex digits, 80 bits)."""
    return f"{prefix}-{stable_hash(*parts)[:20]}"


def derive_seed(*parts: Any) -> int:
    """A 31-bit seed derived from the parts, valid for vLLM and torch generators."""
    return int(stable_hash(*parts)[:8], 16) & 0x7FFFFFFF

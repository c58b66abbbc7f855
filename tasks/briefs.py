"""Read campaign briefs from Parquet, check them against the brief contract, set bad rows aside."""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from prefect import task
from prefect.cache_policies import NO_CACHE

from adforge.tasks.channels import CHANNELS
from adforge.tasks.domain import Brief, RejectedBrief
from adforge.tasks.ids import stable_hash

REQUIRED = ("brief_id", "brand", "product", "audience", "key_message")
OPTIONAL = ("campaign_id", "tone", "channels", "variants", "images_per_copy", "banned_words", "language")
# Longest accepted text per field: keeps every prompt well inside the model's context.
MAX_CHARS = {"brief_id": 200, "brand": 200, "product": 200, "audience": 500, "key_message": 2000,
             "campaign_id": 200, "tone": 100, "language": 20}  # fmt: skip
DEFAULTS = {"tone": "friendly", "channels": ["instagram"], "variants": 3, "images_per_copy": 1,
            "banned_words": [], "language": "en", "campaign_id": None}  # fmt: skip
RANGES = {"variants": (1, 10), "images_per_copy": (0, 4)}


class BriefFileError(Exception):
    """A briefs file that cannot be used at all: the run stops before generating anything."""


class RowError(ValueError):
    """One row breaks the contract; the message names the field."""


@dataclass
class BriefFile:
    path: str
    file_hash: str
    bytes: int
    reason: str | None = None  # why it was skipped unread


@dataclass
class ReadResult:
    briefs: list[Brief] = field(default_factory=list)
    rejected: list[RejectedBrief] = field(default_factory=list)
    files: list[BriefFile] = field(default_factory=list)  # read
    skipped: list[BriefFile] = field(default_factory=list)  # not read: processed before, or a repeat

    def ledger(self, settings_hash: str, unfinished: set[str | None]) -> list[dict[str, Any]]:
        """`ingested_files` rows for the files read, except the `unfinished` ones (read again next time)."""
        briefs = Counter(b.source_file for b in self.briefs)
        rejected = Counter(r.source_file for r in self.rejected)
        return [
            {"path": f.path, "file_hash": f.file_hash, "bytes": f.bytes, "settings_hash": settings_hash,
             "briefs": briefs[f.path], "rejected": rejected[f.path]}
            for f in self.files if f.path not in unfinished
        ]  # fmt: skip


def find_files(paths: Sequence[str | Path]) -> list[Path]:
    """Expand the given files and directories into the Parquet files to read, in a stable order."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(f for f in p.iterdir() if f.suffix == ".parquet" and f.is_file()))
        elif p.is_file():
            files.append(p)
        else:
            raise BriefFileError(f"{p}: no such file or directory")
    return files


def check_file(path: Path) -> None:
    """Fail with a one-line message if the file is not Parquet or lacks a required column."""
    try:
        schema = pq.read_schema(path)
    except Exception as e:  # pyarrow raises several types for unreadable files
        raise BriefFileError(f"{path}: not a readable Parquet file ({type(e).__name__})") from e
    for column in REQUIRED:
        if column not in schema.names:
            raise BriefFileError(f"{path}: missing required column '{column}'")


def file_hash(path: Path) -> str:
    """sha256 of the file's bytes: the same content has the same hash whatever its name."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@task(name="read-briefs", cache_policy=NO_CACHE)
def read_briefs(paths: Sequence[str | Path], done: dict[str, str] | None = None) -> ReadResult:
    """Read and validate every brief; valid rows are normalised, bad rows carry a reason.

    Files whose content hash is in `done` (hash → where it was processed), or repeats an
    earlier file of this call, are skipped unread."""
    done = done or {}
    result = ReadResult()
    first: dict[str, str] = {}
    for f in find_files(paths):
        check_file(f)
        digest = file_hash(f)
        entry = BriefFile(str(f), digest, f.stat().st_size)
        if digest in done or digest in first:
            entry.reason = (
                f"processed before: {done[digest]}" if digest in done else f"same content as {first[digest]}"
            )
            result.skipped.append(entry)
        else:
            first[digest] = str(f)
            result.files.append(entry)
    seen: dict[str, str] = {}
    for f in (Path(e.path) for e in result.files):
        try:
            rows = pq.read_table(f).to_pylist()
        except Exception as e:
            raise BriefFileError(f"{f}: not a readable Parquet file ({type(e).__name__}: {e})") from e
        for i, row in enumerate(rows):
            brief_id = row.get("brief_id") if isinstance(row.get("brief_id"), str) else None
            try:
                brief = normalise(row)
                if brief.brief_id in seen:
                    raise RowError(f"brief_id: duplicate of {seen[brief.brief_id]}")
            except RowError as e:
                result.rejected.append(RejectedBrief(brief_id, str(f), i, str(e)))
                continue
            seen[brief.brief_id] = f"row {i} of {f}"
            brief.source_file, brief.source_row = str(f), i
            result.briefs.append(brief)
    return result


def normalise(row: dict[str, Any]) -> Brief:
    """One raw row → one brief in the normalised schema, or RowError naming the field."""
    brief: dict[str, Any] = {}
    for name in REQUIRED:
        brief[name] = _text(name, row.get(name), required=True)
    for name in ("campaign_id", "tone", "language"):
        brief[name] = _text(name, row.get(name), required=False)
    brief["channels"] = _words("channels", row.get("channels"))
    unknown = [c for c in brief["channels"] or [] if c not in CHANNELS]
    if unknown:
        raise RowError(f"channels: unknown channel '{unknown[0]}' (known: {', '.join(CHANNELS)})")
    brief["banned_words"] = _words("banned_words", row.get("banned_words"))
    for name in RANGES:
        brief[name] = _count(name, row.get(name))
    for name, default in DEFAULTS.items():
        if brief[name] is None:
            brief[name] = default
    extra = {k: v for k, v in row.items() if k not in REQUIRED and k not in OPTIONAL}
    brief["metadata"] = json.dumps(extra, ensure_ascii=False, default=str, sort_keys=True) if extra else None
    brief["brief_hash"] = stable_hash({k: brief[k] for k in REQUIRED + OPTIONAL})
    return Brief(**brief)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _text(name: str, value: Any, required: bool) -> str | None:
    if _missing(value):
        if required:
            raise RowError(f"{name}: missing")
        return None
    if not isinstance(value, str):
        raise RowError(f"{name}: expected text, got {type(value).__name__}")
    if not value.strip():
        if required:
            raise RowError(f"{name}: empty")
        return None
    if len(value) > MAX_CHARS[name]:
        raise RowError(f"{name}: {len(value)} characters, at most {MAX_CHARS[name]} allowed")
    return value


def _words(name: str, value: Any) -> list[str] | None:
    """A list of strings, or one comma-separated string, as a clean list without repeats."""
    if _missing(value):
        return None
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RowError(f"{name}: expected a list of strings or a comma-separated string")
    words = list(dict.fromkeys(v.strip().lower() for v in value if v.strip()))
    if name == "channels" and not words:
        raise RowError("channels: empty")
    return words


def _count(name: str, value: Any) -> int | None:
    if _missing(value):
        return None
    # pandas writes integer columns with nulls as float64; accept whole numbers only.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RowError(f"{name}: expected a whole number, got {value!r}")
    low, high = RANGES[name]
    if not low <= value <= high:
        raise RowError(f"{name}: {value} is outside {low}..{high}")
    return value

"""Read campaign briefs from Parquet, check them against the brief contract, set bad rows and files aside."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import math
import os
import stat
import unicodedata
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from prefect import task
from prefect.cache_policies import NO_CACHE

from adforge.tasks.channels import CHANNELS
from adforge.tasks.domain import PER_AD, Brief, RejectedBrief, Segment
from adforge.tasks.ids import make_id, stable_hash
from adforge.tasks.locales import LocaleError, normalise_locale
from adforge.tasks.untrusted import shorten

REQUIRED = ("brief_id", "brand", "product", "audience", "key_message")
OPTIONAL = ("campaign_id", "tone", "channels", "variants", "images_per_copy", "banned_words", "language",
            "claims", *PER_AD)  # fmt: skip
FIELDS = REQUIRED + OPTIONAL  # any other column goes to metadata
# Names and codes are part of every prompt (and a brand must fit a headline): they keep these caps.
# Every text field, key_message included, is also held to the max_field_chars limit.
FIELD_CHARS = {"brief_id": 200, "brand": 200, "product": 200, "audience": 500, "campaign_id": 200,
               "tone": 100, "language": 20}  # fmt: skip
DEFAULTS = {"tone": "friendly", "channels": ["instagram"], "variants": 3, "images_per_copy": 1,
            "banned_words": [], "language": "en", "campaign_id": None, "claims": [], "segments": [],
            "locales": [], "locale_banned_words": {}}  # fmt: skip
RANGES = {"variants": (1, 10), "images_per_copy": (0, 4)}
BATCH_ROWS = 4096  # rows converted to Python at a time: memory follows a batch, not the file
SUFFIX = ".parquet"  # in any case
SEGMENTS_FILE = "segments.parquet"  # found beside the briefs (in a folder given, or beside a file given)
SEGMENT_FIELDS = ("segment_id", "name", "description")  # required; any other column is an attribute
SEGMENT_CHARS = {"segment_id": 200, "name": 200, "description": 1000}
# Letters that render as blank space (Hangul fillers, the blank Braille pattern).
BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


@dataclass(frozen=True)
class Limits:
    """Bounds on any input; the defaults are those of the limits settings (flows/settings.py)."""

    max_rows_per_file: int = 1_000_000
    max_field_chars: int = 2000
    max_list_items: int = 100
    max_metadata_bytes: int = 65_536


class BriefFileError(Exception):
    """A briefs file that cannot be used at all; `reason` says why without the path."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


class RowError(ValueError):
    """One row breaks the contract; the message names the field."""


@dataclass(frozen=True)
class Unreadable:
    """A cell pyarrow could not turn into a Python value (invalid UTF-8, a date out of range, ...)."""

    error: str


@dataclass
class BriefFile:
    path: str
    file_hash: str
    bytes: int
    reason: str | None = None  # why it was skipped unread


@dataclass
class RejectedFile:
    """A file that could not be used at all: a row of `rejected_files`."""

    path: str
    file_hash: str | None  # null when the file could not even be read
    reason: str


@dataclass
class ReadResult:
    briefs: list[Brief] = field(default_factory=list)
    rejected: list[RejectedBrief] = field(default_factory=list)
    files: list[BriefFile] = field(default_factory=list)  # read
    skipped: list[BriefFile] = field(default_factory=list)  # not read: processed before, or a repeat
    rejected_files: list[RejectedFile] = field(default_factory=list)  # unusable; tried again next run
    passed_over: list[str] = field(default_factory=list)  # why entries found in folders were left alone

    def ledger(self, settings_hash: str, unfinished: set[str | None]) -> list[dict[str, Any]]:
        """`ingested_files` rows for the files read, except the `unfinished` ones (read again next time)."""
        briefs = Counter(b.source_file for b in self.briefs)
        rejected = Counter(r.source_file for r in self.rejected)
        return [
            {"path": f.path, "file_hash": f.file_hash, "bytes": f.bytes, "settings_hash": settings_hash,
             "briefs": briefs[f.path], "rejected": rejected[f.path]}
            for f in self.files if f.path not in unfinished
        ]  # fmt: skip


def find_files(paths: Sequence[str | Path]) -> tuple[list[Path], list[str]]:
    """The Parquet files to read, in a stable order, and why entries were passed over. A folder is
    searched through its subfolders (Hive-style partitions too) for names ending in .parquet in any
    case; hidden names, links that lead nowhere, FIFOs, sockets and unreadable folders are passed
    over without being opened."""
    files: list[Path] = []
    notes: list[str] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = _walk(p, notes)
            if not found:
                notes.append(f"{p}: no Parquet files found")
            files += found
        elif p.is_file():
            files.append(p)
        elif p.exists():
            notes.append(f"{p}: not a regular file ({_kind(p)}), passed over")
        else:
            raise BriefFileError(p, "no such file or directory")
    return files, notes


def _walk(folder: Path, notes: list[str]) -> list[Path]:
    found: list[Path] = []

    def unreadable(e: OSError) -> None:
        notes.append(f"{e.filename}: folder not readable ({e.strerror})")

    for root, dirs, names in os.walk(folder, onerror=unreadable):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            path = Path(root) / name
            if not name.lower().endswith(SUFFIX) or name.lower() == SEGMENTS_FILE:
                continue
            if name.startswith("."):  # editors' and uploaders' temporary files, macOS's ._ files
                notes.append(f"{path}: hidden file, passed over")
            elif path.is_file():
                found.append(path)
            else:
                notes.append(f"{path}: not a regular file ({_kind(path)}), passed over")
    return found


def _kind(path: Path) -> str:
    """What a path that is not a regular file is, without opening it."""
    try:
        mode = path.stat().st_mode
    except OSError as e:
        return "a link that leads nowhere" if path.is_symlink() else e.strerror or type(e).__name__
    kinds = {stat.S_ISFIFO: "a FIFO", stat.S_ISSOCK: "a socket", stat.S_ISCHR: "a device",
             stat.S_ISBLK: "a device"}  # fmt: skip
    return next((name for test, name in kinds.items() if test(mode)), "not a file")


def open_briefs(path: Path, limits: Limits) -> pq.ParquetFile:
    """The file opened for reading in batches, or BriefFileError saying why it cannot be used at all."""
    return _open_parquet(path, REQUIRED, limits)


def _open_parquet(path: Path, required: Sequence[str], limits: Limits) -> pq.ParquetFile:
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as e:
        raise BriefFileError(path, f"not a readable Parquet file ({type(e).__name__})") from e
    names = parquet.schema_arrow.names
    repeated = [n for n, count in Counter(names).items() if count > 1]
    if repeated:  # which of the two was meant cannot be told, so neither is used
        raise BriefFileError(path, f"duplicate column name '{shorten(repeated[0])}'")
    for column in required:
        if column not in names:
            raise BriefFileError(path, f"missing required column '{column}'")
    rows = parquet.metadata.num_rows
    if rows > limits.max_rows_per_file:
        raise BriefFileError(path, f"{rows} rows, more than max_rows_per_file ({limits.max_rows_per_file})")
    return parquet


def file_hash(path: Path) -> str:
    """sha256 of the file's bytes: the same content has the same hash whatever its name."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class SegmentsRead:
    """The audience segments briefs may name by id, from segments files."""

    segments: dict[str, Segment] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # rows left out, and why
    digest: str = ""  # of the files' contents: briefs are read again when it changes; "" without files


def segment_files(paths: Sequence[str | Path], segments_file: str = "") -> list[Path]:
    """The segments file given, or those named segments.parquet beside the briefs (in a folder given, or
    in the folder of a file given)."""
    if segments_file:
        if not Path(segments_file).is_file():
            raise BriefFileError(segments_file, "segments file: no such file")
        return [Path(segments_file)]
    folders = dict.fromkeys(p if p.is_dir() else p.parent for p in map(Path, paths))
    return [f / SEGMENTS_FILE for f in folders if (f / SEGMENTS_FILE).is_file()]


def read_segments(files: list[Path], limits: Limits | None = None) -> SegmentsRead:
    """Every valid segment of the files; a bad row is left out with a note naming its row and field, a
    file that cannot be used at all is a BriefFileError. Columns besides SEGMENT_FIELDS are attributes."""
    limits = limits or Limits()
    result = SegmentsRead(files=[str(f) for f in files])
    for path in files:
        parquet = _open_parquet(path, SEGMENT_FIELDS, limits)
        for i, row in enumerate(_rows(parquet, str(path))):
            try:
                segment = _segment(row, limits)
                first = result.segments.get(segment.segment_id)
                if first:
                    raise RowError(f"segment_id: '{shorten(segment.segment_id)}' appears twice")
            except RowError as e:
                result.notes.append(f"{path} row {i}: {e} (segment left out)")
                continue
            result.segments[segment.segment_id] = segment
    if files:
        result.digest = stable_hash([file_hash(f) for f in files])
    return result


def _segment(row: dict[str, Any], limits: Limits) -> Segment:
    for name, value in row.items():
        if isinstance(value, Unreadable):
            raise RowError(f"{shorten(name)}: unreadable value ({value.error})")
    texts = {name: _text(name, row.get(name), True, limits, SEGMENT_CHARS) or "" for name in SEGMENT_FIELDS}
    extra = {k: v for k, v in row.items() if k not in SEGMENT_FIELDS and not _missing(v)}
    attributes = _metadata(extra, limits)
    return Segment(texts["segment_id"], stable_hash(texts["name"], texts["description"], attributes),
                   texts["name"], texts["description"], attributes)  # fmt: skip


def inline_segment(description: str) -> Segment:
    """A segment a brief describes in its own `segments` column: its description is its name."""
    return Segment(make_id("segment", description), stable_hash(description, description, None), description,
                   description)  # fmt: skip


@task(name="read-briefs", cache_policy=NO_CACHE)
def read_briefs(
    paths: Sequence[str | Path],
    done: dict[str, str] | None = None,
    limits: Limits | None = None,
    segments: dict[str, Segment] | None = None,
) -> ReadResult:
    """Read and validate every brief; valid rows are normalised, bad rows carry a reason, files that
    cannot be used at all are set aside with theirs (and are not part of the ledger). With `segments`
    (from segments files), a brief's `segments` are ids of those; without, each is a description.

    Files whose content hash is in `done` (hash → where it was processed), or repeats an
    earlier file of this call, are skipped unread."""
    done = done or {}
    limits = limits or Limits()
    result = ReadResult()
    files, result.passed_over = find_files(paths)
    first: dict[str, str] = {}
    seen: dict[str, str] = {}  # brief_id → where it was first read
    for f in files:
        try:
            digest = file_hash(f)
        except OSError as e:
            result.rejected_files.append(RejectedFile(str(f), None, f"cannot be read ({e.strerror})"))
            continue
        entry = BriefFile(str(f), digest, f.stat().st_size)
        if digest in done or digest in first:
            entry.reason = (
                f"processed before: {done[digest]}" if digest in done else f"same content as {first[digest]}"
            )
            result.skipped.append(entry)
            continue
        try:
            briefs, rejected = read_file(open_briefs(f, limits), str(f), limits, seen, segments)
        except BriefFileError as e:
            result.rejected_files.append(RejectedFile(str(f), digest, e.reason))
            continue
        first[digest] = str(f)
        result.files.append(entry)
        result.briefs += briefs
        result.rejected += rejected
    return result


def read_file(
    parquet: pq.ParquetFile, path: str, limits: Limits, seen: dict[str, str],
    segments: dict[str, Segment] | None = None,
) -> tuple[list[Brief], list[RejectedBrief]]:  # fmt: skip
    """The file's valid briefs and rejected rows; `seen` gains its brief ids only if the whole file
    could be read (a file that breaks off part-way is rejected as a whole)."""
    briefs: list[Brief] = []
    rejected: list[RejectedBrief] = []
    here: dict[str, str] = {}
    for i, row in enumerate(_rows(parquet, path)):
        brief_id = row.get("brief_id")
        if not isinstance(brief_id, str) or len(brief_id) > FIELD_CHARS["brief_id"]:
            brief_id = None  # only a usable id is kept with the rejected row
        try:
            brief = normalise(row, limits, segments)
            first = seen.get(brief.brief_id) or here.get(brief.brief_id)
            if first:
                raise RowError(f"brief_id: duplicate of {first}")
        except RowError as e:
            rejected.append(RejectedBrief(brief_id, path, i, str(e)))
            continue
        here[brief.brief_id] = f"row {i} of {path}"
        brief.source_file, brief.source_row = path, i
        briefs.append(brief)
    seen.update(here)
    return briefs, rejected


def _rows(parquet: pq.ParquetFile, path: str) -> Iterator[dict[str, Any]]:
    """The file's rows as dicts, one batch in memory at a time; a cell that cannot be converted is an
    Unreadable value, so that only its row is rejected."""
    batches = parquet.iter_batches(batch_size=BATCH_ROWS)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (pa.ArrowException, OSError) as e:  # a page that cannot be decoded: the file is damaged
            reason = f"not a readable Parquet file ({type(e).__name__}: {shorten(e)})"
            raise BriefFileError(path, reason) from e
        columns = {name: _cells(batch.column(j)) for j, name in enumerate(batch.schema.names)}
        for i in range(batch.num_rows):
            yield {name: values[i] for name, values in columns.items()}


def _cells(column: pa.Array) -> list[Any]:
    try:
        return column.to_pylist()
    except Exception:  # pyarrow's converters raise many types; find the cells that fail, one by one
        return [_cell(column, i) for i in range(len(column))]


def _cell(column: pa.Array, i: int) -> Any:
    try:
        return column[i].as_py()
    except Exception as e:  # UnicodeDecodeError, OverflowError, ValueError, an unknown time zone, ...
        return Unreadable(shorten(f"{type(e).__name__}: {e}"))


def normalise(
    row: dict[str, Any], limits: Limits | None = None, segments: dict[str, Segment] | None = None
) -> Brief:
    """One raw row → one brief in the normalised schema, or RowError naming the field; `segments`: those
    the brief's `segments` may name by id (None: the brief describes each segment itself)."""
    limits = limits or Limits()
    for name, value in row.items():
        if isinstance(value, Unreadable):
            raise RowError(f"{shorten(name)}: unreadable value ({value.error})")
    brief: dict[str, Any] = {}
    for name in REQUIRED:
        brief[name] = _text(name, row.get(name), True, limits)
    for name in ("campaign_id", "tone", "language"):
        brief[name] = _text(name, row.get(name), False, limits)
    brief["channels"] = _words("channels", row.get("channels"), limits)
    unknown = [c for c in brief["channels"] or [] if c not in CHANNELS]
    if unknown:
        raise RowError(f"channels: unknown channel '{shorten(unknown[0])}' (known: {', '.join(CHANNELS)})")
    brief["banned_words"] = _words("banned_words", row.get("banned_words"), limits)
    brief["claims"] = _words("claims", row.get("claims"), limits, separator=";")  # "10,000" is one claim
    for name in RANGES:
        brief[name] = _count(name, row.get(name))
    brief["segments"] = _segments(row.get("segments"), limits, segments)
    locales = _words("locales", row.get("locales"), limits, lower=False) or []
    brief["locales"] = [_locale("locales", v) for v in locales]
    brief["locale_banned_words"] = _locale_words(row.get("locale_banned_words"), brief["locales"], limits)
    for name, default in DEFAULTS.items():
        if brief[name] is None:
            brief[name] = default
    brief["metadata"] = _metadata({k: v for k, v in row.items() if k not in FIELDS}, limits)
    # A brief without claims hashes as it did before the column existed: its copy need not be written again.
    # Segments and locales are in the ids of their own ads only: a new one leaves the others' ads stored.
    shared = [k for k in FIELDS if k not in PER_AD and (k != "claims" or brief[k])]
    brief["brief_hash"] = stable_hash({k: brief[k] for k in shared})
    return Brief(**brief)


def _segments(value: Any, limits: Limits, known: dict[str, Segment] | None) -> list[Segment] | None:
    items = _words("segments", [value] if isinstance(value, str) else value, limits, lower=False)
    if items is None:
        return None
    if known is None:
        return [inline_segment(item) for item in items]
    unknown = [item for item in items if item not in known]
    if unknown:
        raise RowError(f"segments: unknown segment id '{shorten(unknown[0])}' (not in the segments file)")
    return [known[item] for item in items]


def _locale(name: str, text: str) -> str:
    try:
        return normalise_locale(text)
    except LocaleError as e:
        raise RowError(f"{name}: {shorten(e)}") from e


def _locale_words(value: Any, locales: list[str], limits: Limits) -> dict[str, list[str]] | None:
    """Banned words per locale: a map or struct column, or JSON text, of locale → words."""
    if _missing(value):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as e:
            raise RowError(f"locale_banned_words: not JSON ({shorten(e)})") from e
    if isinstance(value, list):  # a Parquet map arrives as (key, value) pairs
        value = dict(value) if all(isinstance(v, tuple) and len(v) == 2 for v in value) else None
    if not isinstance(value, dict):
        raise RowError("locale_banned_words: expected a map of locale to words")
    words: dict[str, list[str]] = {}
    for key, banned in value.items():
        locale = _locale("locale_banned_words", str(key))
        if locale not in locales:
            raise RowError(f"locale_banned_words: {locale} is not one of the brief's locales")
        words[locale] = _words("locale_banned_words", banned, limits) or []
    return words


def _over(name: str, amount: str, setting: str, limit: int) -> RowError:
    return RowError(f"{name}: {amount}, more than {setting} ({limit})")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _blank(text: str) -> bool:
    """No visible character: only spaces, zero-width, format or control characters."""
    return all(unicodedata.category(c)[0] in "ZC" or c in BLANK_LETTERS for c in text)


def _text(
    name: str, value: Any, required: bool, limits: Limits, caps: dict[str, int] = FIELD_CHARS
) -> str | None:
    if _missing(value):
        if required:
            raise RowError(f"{name}: missing")
        return None
    if not isinstance(value, str):
        raise RowError(f"{name}: expected text, got {type(value).__name__}")
    if _blank(value):
        if required:
            raise RowError(f"{name}: empty (no visible characters)")
        return None
    if len(value) > limits.max_field_chars:
        raise _over(name, f"{len(value)} characters", "max_field_chars", limits.max_field_chars)
    if name in caps and len(value) > caps[name]:
        raise RowError(f"{name}: {len(value)} characters, at most {caps[name]} allowed")
    return value


def _words(
    name: str, value: Any, limits: Limits, separator: str = ",", lower: bool = True
) -> list[str] | None:
    """A list of strings, or one string of items between separators, as a clean list without repeats."""
    if _missing(value):
        return None
    if isinstance(value, str):
        value = value.split(separator)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RowError(f"{name}: expected a list of strings or a comma-separated string")
    if len(value) > limits.max_list_items:
        raise _over(name, f"{len(value)} items", "max_list_items", limits.max_list_items)
    longest = max(map(len, value), default=0)
    if longest > limits.max_field_chars:
        raise _over(name, f"an item of {longest} characters", "max_field_chars", limits.max_field_chars)
    words = list(dict.fromkeys(v.strip().lower() if lower else v.strip() for v in value if not _blank(v)))
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
        raise RowError(f"{name}: expected a whole number, got {shorten(repr(value))}")
    low, high = RANGES[name]
    if not low <= value <= high:
        raise RowError(f"{name}: {value} is outside {low}..{high}")
    return value


def _metadata(extra: dict[str, Any], limits: Limits) -> str | None:
    """The columns adforge does not use, as strict JSON (any value pyarrow reads can be stored)."""
    if not extra:
        return None
    text = json.dumps(_json_value(extra), ensure_ascii=False, sort_keys=True, allow_nan=False)
    size = len(text.encode())
    if size > limits.max_metadata_bytes:
        raise _over("metadata", f"{size} bytes of other columns as JSON", "max_metadata_bytes",
                    limits.max_metadata_bytes)  # fmt: skip
    return text


def _json_value(value: Any) -> Any:
    """A value as JSON can hold it: NaN and infinities as null, bytes as base64, dates and times as
    ISO text, decimals as text (exact), durations as seconds, anything else as its text."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):  # lists, structs' tuples, map entries
        return [_json_value(v) for v in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return str(value)  # decimals (exactly), and any other type

"""Brand kits: a TOML file per brand in a kits folder, with the colours, logo and font of its creatives.

    brand = "Nordbrew"                  # the briefs' brand, matched exactly (after strip)
    business_name = "Nordbrew Coffee"   # at most 25 characters (Google Ads' limit)
    final_url = "https://nordbrew.example/"
    logo = "nordbrew.png"               # PNG or JPEG, relative to this file, inside the kits folder
    font = "DejaVuSerif-Bold.ttf"       # optional: a file name in the system's font folders, or a path
    tone_notes = "Short, upbeat."       # optional, at most 500 characters

    [colors]
    primary = "#1F4E79"                 # the call to action's button
    accent = "#F2A900"

Kit files are untrusted input: each is size-capped, its logo and font must lie inside the kits folder (no
`..`, absolute path or symlink out) and are size-capped, and the logo is decoded by Pillow with its
decompression-bomb limit. A bad file is reported in one line per problem and skipped.
"""

from __future__ import annotations

import hashlib
import io
import re
import tomllib
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fontTools.ttLib import TTFont
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from adforge.tasks.untrusted import printable, shorten

MAX_KIT_BYTES = 64 * 1024
MAX_LOGO_BYTES = 5 * 1024 * 1024
MAX_LOGO_SIDE = 4096  # pixels; checked from the header, before decoding
MAX_FONT_BYTES = 32 * 1024 * 1024  # a CJK collection is about 20 MB
LOGO_FORMATS = ("PNG", "JPEG")
FONT_SUFFIXES = (".ttf", ".otf", ".ttc")
BUSINESS_NAME_CHARS = 25  # Google Ads' business name
TONE_NOTES_CHARS = 500
BRAND_CHARS = 200  # as a brief's brand
URL_CHARS = 2048
HEX_COLOR = re.compile(r"#[0-9A-Fa-f]{6}")
FONT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._ -]*")  # no glob characters: the name is searched for


class Asset(BaseModel):
    """A file a kit names, checked when loaded: a path (or a system font's file name) and its sha256."""

    model_config = ConfigDict(frozen=True)

    path: str
    sha256: str = ""  # empty for a font named by file name, which the creatives find in the font folders
    data: bytes = Field(default=b"", repr=False)  # the logo's bytes, as checked: never read again


class Colors(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    primary: str
    accent: str

    @field_validator("primary", "accent")
    @classmethod
    def _hex(cls, value: str) -> str:
        if not HEX_COLOR.fullmatch(value):
            raise ValueError(f"must be a colour as '#RRGGBB', not {_quote(value)}")
        return value.upper()


class BrandKit(BaseModel):
    """One brand's kit, validated; build it with load_kit, which gives the validators the file's place."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    brand: str
    business_name: str
    final_url: str
    colors: Colors
    logo: Asset
    font: Asset | None = None
    tone_notes: str | None = None

    @field_validator("brand", "business_name")
    @classmethod
    def _name(cls, value: str, info: ValidationInfo) -> str:
        limit = BRAND_CHARS if info.field_name == "brand" else BUSINESS_NAME_CHARS
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        if len(value) > limit:
            raise ValueError(f"{len(value)} characters, at most {limit} allowed")
        return value

    @field_validator("final_url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip()
        parts = urlsplit(value)
        well_formed = value.isprintable() and " " not in value
        if parts.scheme not in ("http", "https") or not parts.hostname or not well_formed:
            raise ValueError(f"must be an http or https URL, not {_quote(value)}")
        if len(value) > URL_CHARS:
            raise ValueError(f"{len(value)} characters, at most {URL_CHARS} allowed")
        return value

    @field_validator("tone_notes")
    @classmethod
    def _notes(cls, value: str | None) -> str | None:
        value = (value or "").strip()
        if len(value) > TONE_NOTES_CHARS:
            raise ValueError(f"{len(value)} characters, at most {TONE_NOTES_CHARS} allowed")
        return value or None

    @field_validator("logo", mode="before")
    @classmethod
    def _logo(cls, value: Any, info: ValidationInfo) -> Asset:
        path = _inside(value, info)
        try:
            data = _read(path, MAX_LOGO_BYTES)
            check_logo(data)
        except ValueError as e:
            raise ValueError(f"{_quote(value)}: {e}") from e
        return Asset(path=str(path), sha256=hashlib.sha256(data).hexdigest(), data=data)

    @field_validator("font", mode="before")
    @classmethod
    def _font(cls, value: Any, info: ValidationInfo) -> Asset:
        if not isinstance(value, str) or not value.lower().endswith(FONT_SUFFIXES):
            raise ValueError(f"must name a {'/'.join(FONT_SUFFIXES)} font file, not {_quote(value)}")
        if "/" not in value:  # a file name, looked for in the system's font folders when drawing
            if not FONT_NAME.fullmatch(value):
                raise ValueError(f"{_quote(value)} is not a font file name")
            return Asset(path=value)
        path = _inside(value, info)
        try:
            data = _read(path, MAX_FONT_BYTES)
            with TTFont(io.BytesIO(data), fontNumber=0, lazy=True) as font:
                font["cmap"].getBestCmap()
        except Exception as e:  # fontTools raises many kinds on hostile bytes: all mean the same here
            raise ValueError(f"{_quote(value)}: not a readable TrueType or OpenType font") from e
        return Asset(path=str(path), sha256=hashlib.sha256(data).hexdigest())


def voice(kit: BrandKit | None) -> tuple[str, ...]:
    """What of a kit the copy prompt carries (business name, tone notes); part of the copy's id when set."""
    if kit is None:
        return ()
    notes = (f"Brand voice: {kit.tone_notes}",) if kit.tone_notes else ()
    return (f"Business name: {kit.business_name}", *notes)


def check_logo(data: bytes) -> None:
    """Raise ValueError unless data is a PNG or JPEG image of at most MAX_LOGO_SIDE pixels a side that Pillow
    decodes (within its decompression-bomb limit, a warning included) and converts to RGBA."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=LOGO_FORMATS) as image:
                width, height = image.size
                if max(width, height) <= MAX_LOGO_SIDE:  # read from the header: decoded only when small
                    image.convert("RGBA")
    except Exception as e:  # Pillow raises many kinds on hostile bytes (OSError, SyntaxError, ...)
        raise ValueError("not a readable PNG or JPEG image") from e
    if max(width, height) > MAX_LOGO_SIDE:
        raise ValueError(f"{width}x{height} pixels, at most {MAX_LOGO_SIDE} a side")


class KitError(ValueError):
    """A kit file that cannot be used; `problems` has one line for each thing wrong with it."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def load_kit(path: Path, root: Path) -> BrandKit:
    """The kit in a TOML file of the kits folder root; raises KitError with one line per problem."""
    name = printable(path)
    try:
        outside = not path.resolve().is_relative_to(root)
    except (OSError, RuntimeError):  # a symlink loop
        outside = True
    if outside:
        raise KitError([f"{name}: a link to a file outside the kits folder"])
    try:
        text = _read(path, MAX_KIT_BYTES).decode("utf-8")
        data = tomllib.loads(text)
    except (ValueError, OSError) as e:  # TOMLDecodeError and UnicodeDecodeError are ValueErrors
        raise KitError([f"{name}: {printable(e)}"]) from e
    try:
        return BrandKit.model_validate(data, context={"file": path, "root": root})
    except ValidationError as e:
        raise KitError([f"{name}: {_field(err)}: {_message(err)}" for err in e.errors()]) from e


def load_kits(folder: str | Path) -> tuple[dict[str, BrandKit], list[str]]:
    """The kits of the *.toml files in folder, by brand, and the problems found, one line each. A file with
    a problem is skipped; so are all the kits of a brand that has more than one."""
    root = Path(folder)
    if not root.is_dir():
        return {}, [f"{printable(root)}: brand kits folder not found"]
    kits: dict[str, BrandKit] = {}
    files: dict[str, list[Path]] = {}
    problems: list[str] = []
    for path in sorted(root.glob("*.toml")):
        try:
            kit = load_kit(path, root.resolve())
        except KitError as e:
            problems.extend(e.problems)
            continue
        kits[kit.brand] = kit
        files.setdefault(kit.brand, []).append(path)
    for brand, paths in files.items():
        if len(paths) > 1:
            named = " and ".join(printable(p) for p in paths)
            problems.append(f"{named}: brand {_quote(brand)} has {len(paths)} kits; none of them is used")
            del kits[brand]
    return kits, problems


def hex_rgb(color: str) -> tuple[int, int, int]:
    """'#1F4E79' as (31, 78, 121)."""
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def _inside(value: Any, info: ValidationInfo) -> Path:
    """The file a kit's value names, relative to the kit file: it must be a regular file inside the kits
    folder once symlinks are followed."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a file path relative to the kit file")
    if not info.context:
        raise ValueError("kits are loaded with load_kit, which knows the kit file's folder")
    kit_file: Path = info.context["file"]
    root: Path = info.context["root"]
    if Path(value).is_absolute():
        raise ValueError(f"{_quote(value)} must be relative to the kit file, not absolute")
    try:
        path = (kit_file.parent / value).resolve()
    except (OSError, RuntimeError) as e:  # a symlink loop
        raise ValueError(f"{_quote(value)} cannot be resolved") from e
    if not path.is_relative_to(root):
        raise ValueError(f"{_quote(value)} is outside the kits folder")
    if not path.is_file():
        raise ValueError(f"{_quote(value)} is not a file")
    return path


def _read(path: Path, limit: int) -> bytes:
    """The file's bytes; ValueError if it is not a regular file or holds more than limit bytes."""
    if not path.is_file():
        raise ValueError("not a regular file")
    with path.open("rb") as f:
        data = f.read(limit + 1)  # never more, whatever the file's size says
    if len(data) > limit:
        raise ValueError(f"larger than {limit:,} bytes")
    return data


def _quote(value: object) -> str:
    return repr(shorten(printable(value), 60))


def _field(error: Any) -> str:
    return ".".join(str(part) for part in error["loc"]) or "kit"


def _message(error: Any) -> str:
    """Pydantic's message, in the words of a kit file."""
    kind = error["type"]
    if kind == "value_error":
        return printable(error["ctx"]["error"])
    if kind == "missing":
        return "missing"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "string_type":
        return f"must be text, not {type(error['input']).__name__}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "must be a table"
    return printable(error["msg"])

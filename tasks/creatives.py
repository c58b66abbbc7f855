"""Finished creatives: the generated image in the channel's format with headline and call to action set on it.

Text is wrapped and shrunk until it fits, never cut off; it sits on a dark see-through panel
whose contrast with the text is measured on the rendered pixels (WCAG 2 contrast ratio) and
made more opaque, up to solid, until it reaches MIN_CONTRAST.

Each character is drawn by the first font of a chain (the configured font, then FALLBACK_FONTS, then
Pillow's built-in font) whose character map has it; text that no installed font draws is refused, so
a creative never shows empty boxes. A line that starts right to left (Arabic, Hebrew) draws its runs of
characters in one font right to left: a Latin brand name at its end is drawn at its left end.

With a brand kit (tasks/brand_kits.py) the call to action is a button in the brand's primary colour with a
white or black label, whichever contrasts more (the colour is darkened or lightened until the label reaches
MIN_CONTRAST), the logo is fitted to a safe zone in the top left corner above the panel, and the kit's font
comes first in the chain. Without one, a creative is drawn as it always was.
"""

from __future__ import annotations

import io
import logging
import os
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, cast

from fontTools.ttLib import TTFont, TTLibError
from PIL import Image, ImageDraw, ImageFont
from prefect import task
from prefect.cache_policies import NO_CACHE

from adforge.storage.artifacts import ArtifactStore
from adforge.tasks.brand_kits import LOGO_FORMATS, BrandKit, hex_rgb
from adforge.tasks.domain import CreativeJob, CreativeRow, Failure, FailureKind, failure
from adforge.tasks.ids import make_id

logger = logging.getLogger(__name__)

# Pixel sizes per channel, from each platform's recommended ad image size (X: its website card's 1.91:1).
SIZES = {"instagram": (1080, 1080), "facebook": (1200, 628), "linkedin": (1200, 628), "display": (1200, 628),
         "x": (1200, 628), "google_search": (1200, 628), "email": (1200, 600)}  # fmt: skip
# A platform that takes images in more than one shape gets a creative in each: a responsive display ad needs
# 1.91:1 and 1:1 (tasks/platforms.py IMAGE_SLOTS). The first is the channel's SIZES.
SHAPES = {"display": ((1200, 628), (1200, 1200))}
MIN_CONTRAST = 4.5  # WCAG AA for normal text
TEXT = (255, 255, 255)
BACKING = (0, 0, 0)
WHITE, BLACK = (255, 255, 255), (0, 0, 0)  # a branded button's label: whichever contrasts more
OPACITIES = (0.5, 0.65, 0.8, 1.0)  # of the dark panel behind the text, tried in this order
LAYOUT = 2  # bump when the layout changes: part of every creative_id
KIT_LAYOUT = 1  # bump when how a kit is drawn changes: part of every branded creative_id
LOGO_ZONE = (0.2, 0.15)  # the logo's largest width and height, as parts of the format's
# Tried after the configured font, in this order, for the characters it lacks: file names in the system's
# font folders (Debian's fonts-dejavu-core, fonts-noto-cjk, fonts-noto-core; `make fonts` installs them).
FALLBACK_FONTS = ("DejaVuSans-Bold.ttf", "NotoSansCJK-Bold.ttc", "NotoSansArabic-Bold.ttf",
                  "NotoSansHebrew-Bold.ttf", "NotoSansDevanagari-Bold.ttf", "NotoSansBengali-Bold.ttf",
                  "NotoSansThai-Bold.ttf")  # fmt: skip
PILLOW_FONT = "<Pillow's built-in font>"  # the chain's last resort: Latin only, but always there
ROW_COLUMNS = frozenset(f.name for f in fields(CreativeRow))  # the measurements a creative's row stores


class TextDoesNotFit(ValueError):
    """The headline cannot be set legibly in the space the format leaves."""


class GlyphMissing(ValueError):
    """The text has characters that no installed font draws (such as emoji)."""


@dataclass(frozen=True)
class Fonts:
    """A font chain at one size: font files in order of preference; the first with a character draws it."""

    chain: tuple[str, ...]
    size: int


def plan_creatives(
    rows: list[dict[str, Any]], font: str, kits: Mapping[str, BrandKit] | None = None
) -> list[CreativeJob]:
    """One creative per image and shape the channel's platform takes (sizes()); rows join images with their
    copy (image_id, copy_id, headline, ...) and, for its kit, the brief's brand. A branded creative's id has
    its kit's kit_id: a changed kit makes new ones."""
    jobs = []
    for r in rows:
        kit = kit_for(kits, r.get("brand"))
        branded = (kit_id(kit),) if kit else ()  # without a kit, the id creatives had before kits
        for size in sizes(r["channel"]):
            creative_id = make_id(
                "creative", r["image_id"], r["headline"], r["cta"], size, font, LAYOUT, *branded
            )
            jobs.append(CreativeJob(creative_id, r["copy_id"], r["image_id"], r["brief_id"], r["channel"],
                                    r["headline"], r["cta"], r["path"], r.get("brand"), size))  # fmt: skip
    return jobs


def sizes(channel: str) -> tuple[tuple[int, int], ...]:
    """The sizes of a channel's creatives: its SIZES, and any further shape its platform takes."""
    return SHAPES.get(channel, (SIZES[channel],))


def kit_for(kits: Mapping[str, BrandKit] | None, brand: object) -> BrandKit | None:
    """The kit of a brief's brand (matched after strip), if any."""
    return kits.get(brand.strip()) if kits and isinstance(brand, str) else None


def kit_id(kit: BrandKit) -> str:
    """An id of what in a kit shapes its creatives: the primary colour, the logo's bytes and the font (a file
    of the kit by its bytes, a system font by name). Names, URL and notes are not drawn, so not in it."""
    font = kit.font and (kit.font.sha256 or kit.font.path)  # a file of the kit by content, else its name
    return make_id("kit", kit.colors.primary, kit.logo.sha256, font, KIT_LAYOUT)


@cache  # the fitting loop asks for many sizes per creative
def load_font(path: str, size: int) -> Any:
    """The font file (the first font of a collection) at a size, laid out by raqm, which shapes and orders
    right-to-left and complex scripts; PILLOW_FONT is Pillow's built-in font."""
    if path == PILLOW_FONT:
        return ImageFont.load_default(size)
    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.RAQM)


def _font_folders() -> list[Path]:
    """Where fonts are installed on Linux (the XDG data folders' fonts/, as fontconfig and Pillow look)."""
    data = [os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local/share"),
            *(os.environ.get("XDG_DATA_DIRS") or "/usr/local/share:/usr/share").split(":")]  # fmt: skip
    return [Path.home() / ".fonts", *(Path(folder) / "fonts" for folder in data if folder)]


@cache  # a font that is not installed is reported once
def font_path(name: str) -> str | None:
    """The file of a font given as a path or as a file name in the system's font folders; None if absent."""
    if name == PILLOW_FONT or Path(name).is_file():
        return name
    if name and Path(name).name == name:  # a bare file name: look for it in the font folders
        for folder in _font_folders():
            found = sorted(folder.rglob(name))
            if found:
                return str(found[0])
    logger.warning("font %s is not installed; the creatives' font chain goes without it", name)
    return None


@cache
def coverage(path: str) -> frozenset[int]:
    """The code points that the font file (the first font of a collection) has glyphs for, from its cmap."""
    source: Any = io.BytesIO(load_font(path, 10).font_bytes) if path == PILLOW_FONT else path
    with TTFont(source, fontNumber=0, lazy=True) as font:
        return frozenset(font["cmap"].getBestCmap() or {})


@cache
def font_chain(*preferred: str) -> tuple[str, ...]:
    """The installed, readable font files to draw with: the preferred fonts (a kit's, the configured one),
    FALLBACK_FONTS, PILLOW_FONT."""
    chain: list[str] = []
    for name in (*preferred, *FALLBACK_FONTS, PILLOW_FONT):
        path = font_path(name)
        if path is None or path in chain:
            continue
        try:
            coverage(path)
        except (OSError, TTLibError) as e:
            logger.warning("font %s cannot be read (%s); the creatives' font chain goes without it", path, e)
            continue
        chain.append(path)
    return tuple(chain)


def needs_no_glyph(char: str) -> bool:
    """Spaces, format and control characters, and variation selectors, which the layout hides when the
    font has no glyph for them."""
    return unicodedata.category(char) in ("Zs", "Cf", "Cc") or "\ufe00" <= char <= "\ufe0f"


def _drawing_font(char: str, chain: tuple[str, ...], current: str | None) -> str | None:
    """The first font of the chain with a glyph for char; a character that needs none stays in the current
    run's font, so that spaces do not split runs. None when no font has it."""
    if current is not None and needs_no_glyph(char):
        return current
    covering = (path for path in chain if ord(char) in coverage(path))
    return next(covering, chain[0] if needs_no_glyph(char) and chain else None)


def missing_glyphs(text: str, chain: tuple[str, ...]) -> list[str]:
    """The distinct characters of text that no font of the chain draws."""
    return list(dict.fromkeys(char for char in text if _drawing_font(char, chain, None) is None))


def runs(text: str, chain: tuple[str, ...]) -> list[tuple[str, str]]:
    """Text split into (run, font file): consecutive characters that the same font draws."""
    split: list[tuple[str, str]] = []
    for char in text:
        path = _drawing_font(char, chain, split[-1][1] if split else None)
        if path is None:
            raise GlyphMissing(f"no installed font draws {describe(char)}")
        if split and split[-1][1] == path:
            split[-1] = (split[-1][0] + char, path)
        else:
            split.append((char, path))
    return split


def describe(chars: str) -> str:
    """Characters as the reader sees them and by code point: '😀' (U+1F600)."""
    return ", ".join(f"'{char}' (U+{ord(char):04X})" for char in chars)


def base_direction(text: str) -> str:
    """'rtl' when the first character of text with a strong bidi class is right-to-left (Hebrew, Arabic),
    else 'ltr' (also for text without one)."""
    strong = (bidi for bidi in map(unicodedata.bidirectional, text) if bidi in ("L", "R", "AL"))
    return "rtl" if next(strong, "L") in ("R", "AL") else "ltr"


def visual_runs(text: str, fonts: Fonts) -> list[tuple[str, Any, str | None]]:
    """Text's runs in the order they are drawn, left to right, each with its font and the direction raqm
    lays it out in (None: raqm's own, from the run's first strong character). A left-to-right line is drawn
    in logical order as always; a right-to-left line (base_direction) in reverse, each run laid out right to
    left, so that a run's edge spaces fall between the runs (Pillow's built-in font takes no direction)."""
    # Short of full bidi: direction per line; runs move whole (an RTL line swaps a Latin run and a CJK run).
    split = [(run, load_font(path, fonts.size), path) for run, path in runs(text, fonts.chain)]
    if base_direction(text) == "ltr":
        return [(run, font, None) for run, font, _ in split]
    return [(run, font, None if path == PILLOW_FONT else "rtl") for run, font, path in reversed(split)]


def text_length(text: str, fonts: Fonts) -> float:
    """The width of text drawn run by run, each run in its own font."""
    return sum(font.getlength(run, direction=direction) for run, font, direction in visual_runs(text, fonts))


def draw_text(
    draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, fonts: Fonts, fill: tuple[int, ...] = TEXT
) -> None:
    """Draw text's runs in visual order (visual_runs) from xy (the top left), on the baseline of the chain's
    first font."""
    x, y = xy
    baseline = y + load_font(fonts.chain[0], fonts.size).getmetrics()[0]
    for run, font, direction in visual_runs(text, fonts):
        draw.text((x, baseline), run, font=font, fill=fill, anchor="ls", direction=direction)
        x += font.getlength(run, direction=direction)


def wrap(text: str, fonts: Fonts, width: int) -> list[str]:
    """Lines no wider than width: break between words, and inside a word only when it alone is
    too wide (scripts without spaces, such as Chinese or Japanese, break between characters)."""
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if text_length(candidate, fonts) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        line = ""
        for char in word:  # the word does not fit on a line of its own: break it by characters
            if text_length(line + char, fonts) > width and line:
                lines.append(line)
                line = ""
            line += char
    return [*lines, line] if line else lines


def relative_luminance(rgb: tuple[float, ...]) -> float:
    def channel(c: float) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """WCAG 2 contrast ratio between two colours, from 1 (none) to 21 (black on white)."""
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def button_colors(color: tuple[int, int, int], minimum: float = MIN_CONTRAST) -> tuple[
    tuple[int, int, int], tuple[int, int, int]
]:  # fmt: skip
    """A branded button's fill and label: the colour with white or black, whichever contrasts more. A colour
    with which neither reaches minimum is darkened (white label) or lightened (black label), whichever takes
    the smaller step, until one does; for 4.5 none needs it (the worst colour has 4.58 with one of them)."""
    for step in range(101):
        t = step / 100
        darker, lighter = _mix(color, BLACK, t), _mix(color, WHITE, t)
        ratio, fill, label = max((contrast_ratio(WHITE, darker), darker, WHITE),
                                 (contrast_ratio(BLACK, lighter), lighter, BLACK))  # fmt: skip
        if ratio >= minimum:
            return fill, label
    return BLACK, WHITE  # not reached: black and white have 21


def _mix(color: tuple[int, int, int], target: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    r, g, b = (round(c + (goal - c) * t) for c, goal in zip(color, target, strict=True))
    return r, g, b


@lru_cache(maxsize=256)  # a few formats per brand; a fitted logo is small
def fit_logo(data: bytes, size: tuple[int, int]) -> Image.Image:
    """A logo (a kit's checked PNG or JPEG bytes) scaled to fit the format's safe zone, as RGBA."""
    with Image.open(io.BytesIO(data), formats=LOGO_FORMATS) as source:
        logo = source.convert("RGBA")
    zone = (int(size[0] * LOGO_ZONE[0]), int(size[1] * LOGO_ZONE[1]))
    scale = min(zone[0] / logo.width, zone[1] / logo.height)
    fit_width = min(zone[0], max(1, round(logo.width * scale)))
    fit_height = min(zone[1], max(1, round(logo.height * scale)))
    # Resized with premultiplied alpha: transparent pixels' colours do not bleed into the edges.
    return logo.convert("RGBa").resize((fit_width, fit_height), Image.Resampling.LANCZOS).convert("RGBA")


def compose(
    background: Image.Image,
    headline: str,
    cta: str,
    size: tuple[int, int],
    font: str,
    kit: BrandKit | None = None,
) -> tuple[Image.Image, dict[str, Any]]:
    """The creative and its measurements: font size, lines, the backing's opacity and the lowest contrast
    between the text colour and any pixel of the backing; with a kit, also the kit's id, the button's
    colour (the brand's primary, or the colour it was adjusted to) and its label's contrast."""
    width, height = size
    chain = font_chain(kit.font.path, font) if kit and kit.font else font_chain(font)
    missing = [f"{describe(''.join(chars))} in the {where}"
               for where, text in (("headline", headline), ("call to action", cta))
               if (chars := missing_glyphs(text, chain))]  # fmt: skip
    if missing:  # checked before drawing: a character no font has would be an empty box
        raise GlyphMissing(f"no installed font draws {' or '.join(missing)}")
    canvas = _cover(background.convert("RGB"), size)
    margin = width // 20
    text_width = width - 4 * margin
    logo = fit_logo(kit.logo.data, size) if kit else None
    tallest = height * 0.6  # the panel's
    if logo is not None:  # the panel stays below the logo
        tallest = min(tallest, height - 2 * margin - logo.height - margin // 2)
    for font_size in range(height // 10, height // 40 - 1, -2):  # largest legible size that fits
        title = Fonts(chain, font_size)
        lines = wrap(headline, title, text_width)
        button = Fonts(chain, max(font_size * 2 // 3, 12))
        line_height = int(font_size * 1.25)
        panel_height = margin * 3 + line_height * len(lines) + int(button.size * 1.6)
        if panel_height <= tallest and text_length(cta, button) <= text_width - button.size:
            break
    else:
        raise TextDoesNotFit(f"headline of {len(headline)} characters does not fit {width}x{height}")
    top = height - panel_height - margin
    box = (margin, top, width - margin, height - margin)
    for opacity in OPACITIES:  # the most see-through backing that keeps the contrast
        shaded = _shade(canvas, box, opacity)
        contrast = _lowest_contrast(shaded, box)
        if contrast >= MIN_CONTRAST:
            break
    draw = ImageDraw.Draw(shaded)
    x, y = 2 * margin, top + margin
    for line in lines:
        draw_text(draw, (x, y), line, title)
        y += line_height
    y += margin // 2
    size_px = button.size
    pad = size_px // 2
    right = x + pad + text_length(cta, button) + pad
    branded: dict[str, Any] = {}
    if kit is None:
        draw.rectangle((x, y, right, y + size_px + 2 * pad), outline=TEXT, width=max(2, size_px // 12))
        draw_text(draw, (x + pad, y + pad // 2), cta, button)
    else:
        fill, label = button_colors(hex_rgb(kit.colors.primary), MIN_CONTRAST)
        draw.rectangle((x, y, right, y + size_px + 2 * pad), fill=fill)
        draw_text(draw, (x + pad, y + pad // 2), cta, button, fill=label)
        if logo is not None:
            shaded.paste(logo, (margin, margin), logo)
        branded = {"brand_kit": kit_id(kit), "button_color": "#{:02X}{:02X}{:02X}".format(*fill),
                   "cta_contrast": round(contrast_ratio(label, fill), 2)}  # fmt: skip
    # "font" names the families that drew the headline and the call to action, in order of first use,
    # joined with '+' when the chain's fallbacks drew some characters (e.g. "DejaVu Sans+Noto Sans CJK JP").
    used = [path for text in (*lines, cta) for _, path in runs(text, chain)]
    families = "+".join(dict.fromkeys(load_font(path, font_size).getname()[0] for path in used))
    return shaded, {"font": families, "font_size": font_size, "headline_lines": len(lines),
                    "backing_opacity": opacity, "contrast_ratio": round(contrast, 2), **branded}  # fmt: skip


def _cover(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scale to cover the format, then crop the centre."""
    scale = max(size[0] / image.width, size[1] / image.height)
    scaled = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    left, top = (scaled.width - size[0]) // 2, (scaled.height - size[1]) // 2
    return scaled.crop((left, top, left + size[0], top + size[1]))


def _shade(canvas: Image.Image, box: tuple[int, int, int, int], opacity: float) -> Image.Image:
    shaded = canvas.copy()
    region = shaded.crop(box)
    solid = Image.new("RGB", region.size, BACKING)
    shaded.paste(Image.blend(region, solid, opacity), box[:2])
    return shaded


def _lowest_contrast(image: Image.Image, box: tuple[int, int, int, int]) -> float:
    """Contrast of the text colour against the backing's per-channel maxima: no pixel of the
    backing is lighter, so every pixel's contrast with the text is at least this."""
    extrema = cast(tuple[tuple[int, int], ...], image.crop(box).getextrema())
    lightest = tuple(high for _, high in extrema)
    return contrast_ratio(TEXT, lightest)


@task(name="render-creatives", cache_policy=NO_CACHE)
def render_creatives(
    jobs: list[CreativeJob], font: str, artifacts: ArtifactStore, kits: Mapping[str, BrandKit] | None = None
) -> tuple[list[CreativeRow], list[Failure]]:
    """Compose and save a batch of creatives, each with its brand's kit if kits has one (the kits that
    planned them); returns (rows, failures).

    A creative whose image cannot be read, whose text cannot fit or has characters that no installed font
    draws (such as most emoji) is a failure; a file that cannot be written (full disk) stops the batch and
    removes the files it had written."""
    rows: list[CreativeRow] = []
    failures: list[Failure] = []
    try:
        for job in jobs:
            kit = kit_for(kits, job.brand)
            try:
                with Image.open(io.BytesIO(artifacts.read(job.image_path))) as source:
                    image, measured = compose(
                        source, job.headline, job.cta, job.size or SIZES[job.channel], font, kit
                    )
            except (TextDoesNotFit, GlyphMissing, OSError) as e:
                failures.append(failure(job, FailureKind.CREATIVE, f"creative: {e}", 1))
                continue
            buffer = io.BytesIO()
            image.save(buffer, format="PNG", compress_level=1)
            path, sha256 = artifacts.write("creatives", job.creative_id, ".png", buffer.getvalue())
            rows.append(CreativeRow(
                creative_id=job.creative_id, copy_id=job.copy_id, image_id=job.image_id,
                brief_id=job.brief_id, channel=job.channel, kind="creative", path=path,
                width=image.width, height=image.height,
                **{k: v for k, v in measured.items() if k in ROW_COLUMNS},  # those with a column
                sha256=sha256, bytes=len(buffer.getvalue()),
            ))  # fmt: skip
    except BaseException:
        artifacts.remove([row.path for row in rows])  # no file without its row
        raise
    return rows, failures

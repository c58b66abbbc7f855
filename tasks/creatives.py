"""Finished creatives: the generated image in the channel's format with headline and call to action set on it.

Text is wrapped and shrunk until it fits, never cut off; it sits on a dark see-through panel
whose contrast with the text is measured on the rendered pixels (WCAG 2 contrast ratio) and
made more opaque, up to solid, until it reaches MIN_CONTRAST.
"""

from __future__ import annotations

import io
import logging
from functools import cache
from typing import Any, cast

from PIL import Image, ImageDraw, ImageFont
from prefect import task
from prefect.cache_policies import NO_CACHE

from adforge.storage.artifacts import ArtifactStore
from adforge.tasks.domain import CreativeJob, CreativeRow, Failure, FailureKind, failure
from adforge.tasks.ids import make_id

logger = logging.getLogger(__name__)

# Pixel sizes per channel, from each platform's recommended ad image size.
SIZES = {"instagram": (1080, 1080), "facebook": (1200, 628), "linkedin": (1200, 628), "display": (1200, 628),
         "x": (1600, 900), "google_search": (1200, 628), "email": (1200, 600)}  # fmt: skip
MIN_CONTRAST = 4.5  # WCAG AA for normal text
TEXT = (255, 255, 255)
BACKING = (0, 0, 0)
OPACITIES = (0.5, 0.65, 0.8, 1.0)  # of the dark panel behind the text, tried in this order
LAYOUT = 1  # bump when the layout changes: part of every creative_id


class TextDoesNotFit(ValueError):
    """The headline cannot be set legibly in the space the format leaves."""


def plan_creatives(rows: list[dict[str, Any]], font: str) -> list[CreativeJob]:
    """One creative per image; rows join images with their copy (image_id, copy_id, headline, ...)."""
    jobs = []
    for r in rows:
        creative_id = make_id(
            "creative", r["image_id"], r["headline"], r["cta"], SIZES[r["channel"]], font, LAYOUT
        )
        jobs.append(CreativeJob(creative_id, r["copy_id"], r["image_id"], r["brief_id"], r["channel"],
                                r["headline"], r["cta"], r["path"]))  # fmt: skip
    return jobs


@cache  # the fitting loop asks for many sizes per creative, and a missing font is reported once
def load_font(name: str, size: int) -> Any:
    """The named TrueType font (a path, or a file name found in the system's font folders),
    or Pillow's built-in font when it is not installed."""
    try:
        return ImageFont.truetype(name, size)
    except OSError:
        logger.warning("font %s not found; using Pillow's built-in font", name)
        return ImageFont.load_default(size)


def wrap(text: str, font: Any, width: int) -> list[str]:
    """Lines no wider than width: break between words, and inside a word only when it alone is
    too wide (scripts without spaces, such as Chinese or Japanese, break between characters)."""
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if font.getlength(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        line = ""
        for char in word:  # the word does not fit on a line of its own: break it by characters
            if font.getlength(line + char) > width and line:
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


def compose(background: Image.Image, headline: str, cta: str, size: tuple[int, int], font: str) -> tuple[
    Image.Image, dict[str, Any]
]:  # fmt: skip
    """The creative and its measurements: font size, lines, the backing's opacity and the lowest contrast
    between the text colour and any pixel of the backing."""
    width, height = size
    canvas = _cover(background.convert("RGB"), size)
    margin = width // 20
    text_width = width - 4 * margin
    for font_size in range(height // 10, height // 40 - 1, -2):  # largest legible size that fits
        title = load_font(font, font_size)
        lines = wrap(headline, title, text_width)
        button = load_font(font, max(font_size * 2 // 3, 12))
        line_height = int(font_size * 1.25)
        panel_height = margin * 3 + line_height * len(lines) + int(button.size * 1.6)
        if panel_height <= height * 0.6 and button.getlength(cta) <= text_width - button.size:
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
        draw.text((x, y), line, font=title, fill=TEXT)
        y += line_height
    y += margin // 2
    size_px = int(button.size)
    pad = size_px // 2
    right = x + pad + button.getlength(cta) + pad
    draw.rectangle((x, y, right, y + size_px + 2 * pad), outline=TEXT, width=max(2, size_px // 12))
    draw.text((x + pad, y + pad // 2), cta, font=button, fill=TEXT)
    return shaded, {"font": title.getname()[0], "font_size": font_size, "headline_lines": len(lines),
                    "backing_opacity": opacity, "contrast_ratio": round(contrast, 2)}  # fmt: skip


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
    jobs: list[CreativeJob], font: str, artifacts: ArtifactStore
) -> tuple[list[CreativeRow], list[Failure]]:
    """Compose and save a batch of creatives; returns (rows, failures).

    A creative whose image cannot be read or whose text cannot fit is a failure; a file that
    cannot be written (full disk) stops the batch and removes the files it had written."""
    rows: list[CreativeRow] = []
    failures: list[Failure] = []
    try:
        for job in jobs:
            try:
                with Image.open(io.BytesIO(artifacts.read(job.image_path))) as source:
                    image, measured = compose(source, job.headline, job.cta, SIZES[job.channel], font)
            except (TextDoesNotFit, OSError) as e:
                failures.append(failure(job, FailureKind.CREATIVE, f"creative: {e}", 1))
                continue
            buffer = io.BytesIO()
            image.save(buffer, format="PNG", compress_level=1)
            path, sha256 = artifacts.write("creatives", job.creative_id, ".png", buffer.getvalue())
            rows.append(CreativeRow(
                creative_id=job.creative_id, copy_id=job.copy_id, image_id=job.image_id,
                brief_id=job.brief_id, channel=job.channel, kind="creative", path=path,
                width=image.width, height=image.height, **measured,
                sha256=sha256, bytes=len(buffer.getvalue()),
            ))  # fmt: skip
    except BaseException:
        artifacts.remove([row.path for row in rows])  # no file without its row
        raise
    return rows, failures

"""Creatives: channel formats, text that always fits, fonts that have every glyph, and measured contrast."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from adforge.storage.artifacts import ArtifactStore
from adforge.tasks import creatives
from adforge.tasks.creatives import (
    MIN_CONTRAST,
    SIZES,
    TEXT,
    Fonts,
    compose,
    contrast_ratio,
    coverage,
    draw_text,
    font_chain,
    load_font,
    needs_no_glyph,
    runs,
    text_length,
    wrap,
)

FONT = "DejaVuSans-Bold.ttf"
CHAIN = font_chain(FONT)
NOISE = Image.effect_noise((64, 64), 90).convert("RGB")
WHITE = Image.new("RGB", (64, 64), (255, 255, 255))
BLACK = Image.new("RGB", (64, 64), (0, 0, 0))


@pytest.mark.parametrize("channel", sorted(SIZES))
def test_each_channel_gets_its_format(channel: str):
    image, measured = compose(NOISE, "Cold brew in 30 seconds", "Shop now", SIZES[channel], FONT)
    assert image.size == SIZES[channel]
    assert measured["contrast_ratio"] >= MIN_CONTRAST


def test_contrast_ratio_matches_wcag():
    assert contrast_ratio((255, 255, 255), (0, 0, 0)) == pytest.approx(21)
    assert contrast_ratio((255, 255, 255), (255, 255, 255)) == pytest.approx(1)
    assert contrast_ratio((119, 119, 119), (255, 255, 255)) == pytest.approx(4.48, abs=0.01)


def test_panel_darkens_until_the_contrast_holds():
    on_black = compose(BLACK, "Headline", "Go", (1200, 628), FONT)[1]
    image, on_white = compose(WHITE, "Headline", "Go", (1200, 628), FONT)
    assert on_black["backing_opacity"] == creatives.OPACITIES[0]
    assert on_white["backing_opacity"] > creatives.OPACITIES[0] and on_white["contrast_ratio"] >= MIN_CONTRAST
    # Checked on the pixels: the panel's bottom strip (no text there) against the text colour.
    margin = 1200 // 20  # the panel ends one margin above the bottom; its last rows hold no text
    strip = image.crop((2 * margin, 628 - margin - 8, 1200 - 2 * margin, 628 - margin - 2))
    lightest = max(strip.getdata(), key=sum)
    assert contrast_ratio(TEXT, lightest) >= MIN_CONTRAST


@pytest.mark.parametrize(
    "text",
    [
        "A headline far longer than any channel allows, written to provoke wrapping across many lines",
        "Supercalifragilisticexpialidociousbutwithoutanyspacesatallsoitmustbreakinsideaword",
        "冷萃咖啡三十秒就好喝上一口就停不下来冷萃咖啡三十秒就好喝",  # no spaces: breaks between characters
        "Sakura 桜の紅茶 tea, ready in 三十秒 and iced 冷萃咖啡三十秒就好喝 for everyone",  # two fonts a line
    ],
)
def test_wrapped_lines_fit_and_lose_nothing(text: str):
    fonts = Fonts(CHAIN, 60)
    lines = wrap(text, fonts, 500)
    assert len(lines) > 1
    assert all(text_length(line, fonts) <= 500 for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", ""), "every character is kept, in order"
    for line in lines:  # measured run by run as drawn: the ink stays within the width (a pixel of overhang)
        assert _ink(line, fonts).getbbox()[2] <= 10 + 500 + 2
    image, measured = compose(NOISE, text, "Learn more", (1200, 628), FONT)
    assert measured["headline_lines"] >= 1 and image.size == (1200, 628)


def test_text_that_cannot_fit_is_refused_not_cut():
    with pytest.raises(creatives.TextDoesNotFit):
        compose(NOISE, "word " * 400, "Go", (1200, 628), FONT)


def test_render_writes_files_and_rows(tmp_path: Path):
    source = tmp_path / "img.png"
    NOISE.save(source)
    rows = [{"image_id": "image-0123456789abcdef0123", "copy_id": "copy-1", "brief_id": "b1", "channel": c,
             "headline": "Fresh", "cta": "Buy", "path": str(source)} for c in ("x", "instagram")]  # fmt: skip
    rows.append({**rows[0], "image_id": "image-ffff456789abcdef0123", "headline": "word " * 400})
    jobs = creatives.plan_creatives(rows, FONT)
    assert len({j.creative_id for j in jobs}) == 3
    made, refused = creatives.render_creatives.fn(jobs, FONT, ArtifactStore(tmp_path / "art"))
    assert [Image.open(r.path).size for r in made] == [SIZES["x"], SIZES["instagram"]]
    assert all(r.kind == "creative" and r.contrast_ratio >= MIN_CONTRAST for r in made)
    assert [(f.kind, f.reason.split(":")[0]) for f in refused] == [("creative", "creative")]


def test_full_disk_removes_the_batch_files(tmp_path: Path):
    from adforge.storage.artifacts import ArtifactError

    class FillsUp(ArtifactStore):
        def write(self, kind, item_id, suffix, data):
            if len(list(Path(self.root, kind).glob("*.png"))) == 1:
                raise ArtifactError("no space left on device")
            return super().write(kind, item_id, suffix, data)

    source = tmp_path / "img.png"
    NOISE.save(source)
    rows = [{"image_id": f"image-{i:020x}", "copy_id": "copy-1", "brief_id": "b1", "channel": "x",
             "headline": "Fresh", "cta": "Buy", "path": str(source)} for i in range(3)]  # fmt: skip
    store = FillsUp(tmp_path / "art")
    with pytest.raises(ArtifactError):
        creatives.render_creatives.fn(creatives.plan_creatives(rows, FONT), FONT, store)
    assert list((tmp_path / "art" / "creatives").glob("*.png")) == []


def _ink(text: str, fonts: Fonts) -> Image.Image:
    """text drawn by draw_text at (10, 10) on black, as greyscale."""
    image = Image.new("RGB", (1600, 2 * fonts.size + 20))
    draw_text(ImageDraw.Draw(image), (10, 10), text, fonts)
    return image.convert("L")


def _assert_every_glyph_is_drawn(text: str) -> list[str]:
    """The fonts that draw text; each of its characters is in the character map of the font that draws it."""
    split = runs(text, CHAIN)
    assert "".join(run for run, _ in split) == text
    for run, path in split:
        uncovered = [char for char in run if ord(char) not in coverage(path) and not needs_no_glyph(char)]
        assert uncovered == [], f"{path} would draw .notdef boxes for {uncovered}"
    return [path for _, path in split]


def test_latin_and_cjk_are_drawn_by_two_fonts_without_missing_glyphs():
    text = "Sakura 桜の紅茶 tea"
    assert creatives.missing_glyphs(text, CHAIN[:1]) == list("桜の紅茶"), "the configured font lacks the CJK"
    paths = _assert_every_glyph_is_drawn(text)
    assert [Path(p).name for p in dict.fromkeys(paths)] == ["DejaVuSans-Bold.ttf", "NotoSansCJK-Bold.ttc"]
    measured = compose(NOISE, text, "今すぐ購入", (1200, 628), FONT)[1]
    assert measured["font"] == "DejaVu Sans+Noto Sans CJK JP" and measured["headline_lines"] == 1
    with pytest.raises(creatives.GlyphMissing, match="U\\+685C"):  # DejaVu alone: refused, not drawn as boxes
        _ink(text, Fonts(CHAIN[:1], 60))


def test_arabic_is_shaped_by_raqm():
    text = "قهوة باردة في ثلاثين ثانية"
    [path] = set(_assert_every_glyph_is_drawn(text))
    shaped = load_font(path, 60)
    assert shaped.layout_engine == ImageFont.Layout.RAQM
    basic = ImageFont.truetype(path, 60, layout_engine=ImageFont.Layout.BASIC)
    # Shaping joins the letters: contextual forms, narrower than the isolated forms drawn one by one.
    assert shaped.getlength("قهوة") < sum(shaped.getlength(char) for char in "قهوة")
    assert shaped.getlength(text) != basic.getlength(text)
    fonts = Fonts(CHAIN, 60)
    unshaped = Image.new("L", (1600, 140))
    ImageDraw.Draw(unshaped).text((10, 10), text, font=basic, fill=255)
    assert _ink(text, fonts).tobytes() != unshaped.tobytes()
    assert compose(NOISE, text, "اشتر الآن", (1200, 628), FONT)[1]["font_size"] > 0


def _widest_gap(image: Image.Image) -> tuple[int, int]:
    """The first and last column of the widest run of blank columns inside the ink's bounding box."""
    left, _, right, _ = image.getbbox()
    blank = [not any(image.crop((x, 0, x + 1, image.height)).getdata()) for x in range(left, right)]
    best, start = (0, 0), None
    for x, empty in enumerate([*blank, False]):
        if empty and start is None:
            start = x
        elif not empty and start is not None:
            best, start = max(best, (start, x - 1), key=lambda g: g[1] - g[0]), None
    return left + best[0], left + best[1]


def test_hebrew_runs_right_to_left():
    text = "בשלושים קר"  # the long word first: read right to left, it is on the right
    assert len(set(_assert_every_glyph_is_drawn(text))) == 1
    ink = _ink(text, Fonts(CHAIN, 60))
    left, _, right, _ = ink.getbbox()
    gap = _widest_gap(ink)
    assert gap[1] < (left + right) / 2, "the space is left of the middle: the first word is on the right"
    assert compose(NOISE, "קפה קר בשלושים שניות", "קנו עכשיו", (1200, 628), FONT)[1]["headline_lines"] >= 1


def test_characters_no_font_draws_are_a_failure_not_boxes(tmp_path: Path):
    source = tmp_path / "img.png"
    NOISE.save(source)
    rows = [{"image_id": "image-0123456789abcdef0123", "copy_id": "copy-1", "brief_id": "b1", "channel": "x",
             "headline": "Party time 🎉", "cta": "Buy", "path": str(source)}]  # fmt: skip
    rows.append({**rows[0], "image_id": "image-ffff456789abcdef0123", "headline": "Fresh"})
    jobs = creatives.plan_creatives(rows, FONT)
    made, refused = creatives.render_creatives.fn(jobs, FONT, ArtifactStore(tmp_path / "art"))
    assert [r.image_id for r in made] == ["image-ffff456789abcdef0123"]
    assert [(f.kind, f.reason) for f in refused] == [
        ("creative", "creative: no installed font draws '🎉' (U+1F389) in the headline")
    ]
    with pytest.raises(creatives.GlyphMissing, match=r"'🚀' \(U\+1F680\) in the call to action"):
        compose(NOISE, "Fresh", "Launch 🚀", (1200, 628), FONT)


def test_a_font_that_is_not_installed_is_left_out_with_a_warning(caplog: pytest.LogCaptureFixture):
    with caplog.at_level(logging.WARNING, logger="adforge.tasks.creatives"):
        chain = font_chain("NoSuchFont-Bold.ttf")
    assert chain == CHAIN and "NoSuchFont-Bold.ttf is not installed" in caplog.text
    assert compose(NOISE, "Fresh", "Buy", (1200, 628), "NoSuchFont-Bold.ttf")[1]["font"] == "DejaVu Sans"

"""Creatives: channel formats, text that always fits, every glyph drawn, measured contrast, brand kits."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from adforge.storage.artifacts import ArtifactStore
from adforge.tasks import creatives
from adforge.tasks.brand_kits import hex_rgb, load_kit
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
from adforge.tasks.ids import make_id

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


def test_a_display_image_gets_both_shapes_of_a_responsive_display_ad(tmp_path: Path):
    """Google's display ad takes a 1.91:1 and a 1:1 image: one creative each, the first with the id a
    creative in the channel's size always had."""
    source = tmp_path / "img.png"
    NOISE.save(source)
    row = {"image_id": "image-0123456789abcdef0123", "copy_id": "copy-1", "brief_id": "b1",
           "channel": "display", "headline": "Fresh", "cta": "Buy", "path": str(source)}  # fmt: skip
    jobs = creatives.plan_creatives([row], FONT)
    assert [j.size for j in jobs] == [(1200, 628), (1200, 1200)]
    assert jobs[0].creative_id == make_id("creative", row["image_id"], "Fresh", "Buy", SIZES["display"], FONT,
                                          creatives.LAYOUT)  # fmt: skip
    made, refused = creatives.render_creatives.fn(jobs, FONT, ArtifactStore(tmp_path / "art"))
    assert refused == [] and [(r.width, r.height) for r in made] == [(1200, 628), (1200, 1200)]
    assert [Image.open(r.path).size for r in made] == [(1200, 628), (1200, 1200)]


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


def _gaps(image: Image.Image) -> list[tuple[int, int]]:
    """The first and last column of each run of blank columns inside the ink's bounding box, left to right."""
    left, _, right, _ = image.getbbox()
    blank = [not any(image.crop((x, 0, x + 1, image.height)).getdata()) for x in range(left, right)]
    gaps, start = [], None
    for x, empty in enumerate([*blank, False]):
        if empty and start is None:
            start = x
        elif not empty and start is not None:
            gaps.append((left + start, left + x - 1))
            start = None
    return gaps


def _widest_gap(image: Image.Image) -> tuple[int, int]:
    """The first and last column of the widest run of blank columns inside the ink's bounding box."""
    return max(_gaps(image), key=lambda g: g[1] - g[0], default=(0, 0))


def test_hebrew_runs_right_to_left():
    text = "בשלושים קר"  # the long word first: read right to left, it is on the right
    assert len(set(_assert_every_glyph_is_drawn(text))) == 1
    ink = _ink(text, Fonts(CHAIN, 60))
    left, _, right, _ = ink.getbbox()
    gap = _widest_gap(ink)
    assert gap[1] < (left + right) / 2, "the space is left of the middle: the first word is on the right"
    assert compose(NOISE, "קפה קר בשלושים שניות", "קנו עכשיו", (1200, 628), FONT)[1]["headline_lines"] >= 1


# The sample kits' font: it has no Arabic or Hebrew letters, which the fallbacks (DejaVu Sans) draw.
SERIF = "DejaVuSerif-Bold.ttf"


@pytest.mark.parametrize("text", ["قهوة باردة من Nordbrew", "קפה קר של Nordbrew"])
def test_a_latin_brand_ending_a_right_to_left_line_is_drawn_at_its_left_end(text: str):
    fonts = Fonts(font_chain(SERIF), 60)
    (words, words_font), (brand, brand_font) = runs(text, fonts.chain)
    assert brand == "Nordbrew" and Path(brand_font).name == SERIF != Path(words_font).name, "two runs"
    line, alone = _ink(text, fonts), _ink(brand, fonts)
    right = alone.getbbox()[2]  # the brand's ink ends here when it is drawn first, from the line's start
    start, start_alone = (image.crop((0, 0, right, image.height)).tobytes() for image in (line, alone))
    assert start == start_alone, "the brand's ink is the line's left end, as the brand drawn alone"
    assert line.getbbox()[2] > right + fonts.size, "the right-to-left words are right of the brand"
    assert line.getbbox()[2] <= 10 + text_length(text, fonts) + 2, "text_length measures what is drawn"
    assert creatives.base_direction(text) == "rtl" and creatives.base_direction(f"{brand} {words}") == "ltr"


@pytest.mark.parametrize("text", ["قهوة Nordbrew الباردة", "קפה Nordbrew קר"])
def test_a_latin_brand_inside_a_right_to_left_line_has_a_space_on_each_side(text: str):
    fonts = Fonts(font_chain(SERIF), 60)
    assert len(runs(text, fonts.chain)) == 3
    line = _ink(text, fonts)
    gaps = sorted(_gaps(line), key=lambda g: g[1] - g[0])[-2:]
    (_, before), (after, _) = sorted(gaps)  # the two widest blank stretches, left to right: the spaces
    assert all(end - start + 1 >= fonts.size // 4 for start, end in gaps), "a whole space on each side"
    left, _, right, _ = _ink("Nordbrew", fonts).getbbox()
    assert abs((after - before - 1) - (right - left)) <= 1, "between the spaces: the brand, as wide as alone"


def test_cjk_and_arabic_creatives_are_rendered_through_the_whole_path(tmp_path: Path):
    source = tmp_path / "img.png"
    WHITE.save(source)  # on white, the only white pixels in the dark panel are the text's
    texts = {"ja-JP": ("桜の紅茶、朝の一杯に", "今すぐ購入"),
             "ar-SA": ("قهوة باردة في ثلاثين ثانية", "اشتر الآن")}  # fmt: skip
    rows = [{"image_id": f"image-{i:020x}", "copy_id": f"copy-{locale}", "brief_id": "b1", "channel": "x",
             "headline": headline, "cta": cta, "path": str(source)}
            for i, (locale, (headline, cta)) in enumerate(texts.items())]  # fmt: skip
    jobs = creatives.plan_creatives(rows, FONT)
    made, refused = creatives.render_creatives.fn(jobs, FONT, ArtifactStore(tmp_path / "art"))
    assert refused == [] and [r.copy_id for r in made] == ["copy-ja-JP", "copy-ar-SA"]
    # The configured font, DejaVu Sans, has Arabic letters: it draws them, not Noto Sans Arabic after it.
    assert [r.font for r in made] == ["Noto Sans CJK JP", "DejaVu Sans"]
    for row, (headline, cta) in zip(made, texts.values(), strict=True):
        _assert_every_glyph_is_drawn(headline + cta)
        assert row.headline_lines >= 1 and Path(row.path).is_file()
        image = Image.open(row.path).convert("RGB")
        assert image.size == SIZES["x"]
        margin = image.width // 20
        top = _panel_top(image) + margin  # the first line's top
        bottom = top + int(row.font_size * 1.25) * row.headline_lines
        grey = image.convert("L")
        headline_area = grey.crop((2 * margin, top, image.width - 2 * margin, bottom))
        cta_area = grey.crop((2 * margin, bottom, image.width - 2 * margin, image.height - margin))
        assert headline_area.histogram()[255] > 500 and cta_area.histogram()[255] > 500, "text in both"


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


# Brand kits: the button in the brand's colour, the logo in its safe zone, the kit's font first.

BRAND = (200, 30, 60)
LOGO_GREEN = (0, 200, 0)


def _kit(folder: Path, primary: str = "#C81E3C", logo_size: tuple[int, int] = (400, 100), **fields: str):
    """A kit loaded from files in folder: a solid green logo of logo_size and the given fields."""
    folder.mkdir(exist_ok=True)
    Image.new("RGBA", logo_size, (*LOGO_GREEN, 255)).save(folder / "logo.png")
    values = {"brand": "Nordbrew", "business_name": "Nordbrew Coffee", "final_url": "https://nordbrew.example/",
              "logo": "logo.png", **fields}  # fmt: skip
    text = "".join(f'{key} = "{value}"\n' for key, value in values.items())
    (folder / "kit.toml").write_text(f'{text}[colors]\nprimary = "{primary}"\naccent = "#000000"\n')
    return load_kit(folder / "kit.toml", folder.resolve())


def _box(image: Image.Image, matches) -> tuple[int, int, int, int] | None:
    """The bounding box of the pixels for which matches((r, g, b)) holds."""
    mask = Image.new("1", image.size)
    mask.putdata([255 if matches(pixel) else 0 for pixel in image.getdata()])
    return mask.getbbox()


def _panel_top(image: Image.Image) -> int:
    """On a white background: the first row, down the panel's right edge, that is not white."""
    x = image.width - image.width // 20 - 2
    return next(y for y in range(image.height) if image.getpixel((x, y)) != (255, 255, 255))


def test_the_cta_button_is_filled_with_the_brand_colour(tmp_path: Path):
    image, measured = compose(BLACK, "Headline", "Shop now", (1200, 628), FONT, _kit(tmp_path))
    button = _box(image, lambda p: p == BRAND)
    assert button is not None and button[1] > 628 * 0.4, "in the panel, below the headline"
    area = (button[2] - button[0]) * (button[3] - button[1])
    assert sum(1 for p in image.crop(button).getdata() if p == BRAND) > 0.7 * area, "filled, not outlined"
    assert _box(image.crop(button), lambda p: p == (255, 255, 255)) is not None, "a white label"
    assert measured["button_color"] == "#C81E3C" and measured["brand_kit"].startswith("kit-")
    assert measured["cta_contrast"] == round(contrast_ratio((255, 255, 255), BRAND), 2) >= MIN_CONTRAST
    assert measured["contrast_ratio"] >= MIN_CONTRAST, "the headline's contrast rule holds as before"


@pytest.mark.parametrize(
    ("primary", "label"),
    [("#0B2545", (255, 255, 255)), ("#FFD600", (0, 0, 0)), ("#767676", (0, 0, 0)), ("#8A8A8A", (0, 0, 0)),
     ("#707070", (255, 255, 255))],
)  # fmt: skip
def test_the_label_is_white_or_black_whichever_contrasts_more(tmp_path: Path, primary: str, label: tuple):
    image, measured = compose(WHITE, "Headline", "Shop now", (1200, 628), FONT, _kit(tmp_path, primary))
    fill = hex_rgb(primary)
    button = _box(image, lambda p: p == fill)
    assert button is not None and _box(image.crop(button), lambda p: p == label) is not None
    assert measured["cta_contrast"] >= MIN_CONTRAST and measured["button_color"] == primary


def test_a_colour_without_enough_label_contrast_is_adjusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # With 4.5 no colour needs it: every colour has at least 4.58 with white or with black.
    for level in range(256):
        fill, label = creatives.button_colors((level, level, level))
        assert fill == (level, level, level) and contrast_ratio(label, fill) >= MIN_CONTRAST
    # A stricter minimum (WCAG AAA's 7) moves mid-grey, darker or lighter, until its label reaches it.
    grey = (119, 119, 119)
    assert max(contrast_ratio(grey, (255, 255, 255)), contrast_ratio(grey, (0, 0, 0))) < 7.0
    fill, label = creatives.button_colors(grey, 7.0)
    assert fill[0] == fill[1] == fill[2] and contrast_ratio(label, fill) >= 7.0
    assert fill[0] > 119 if label == (0, 0, 0) else fill[0] < 119, "lightened for black, darkened for white"
    monkeypatch.setattr(creatives, "MIN_CONTRAST", 7.0)
    image, measured = compose(WHITE, "Headline", "Shop now", (1200, 628), FONT, _kit(tmp_path, "#777777"))
    assert measured["button_color"] == "#{:02X}{:02X}{:02X}".format(*fill) and measured["cta_contrast"] >= 7.0
    button = _box(image, lambda p: p == fill)
    assert button is not None and button[1] > 628 * 0.4, "the button has the adjusted colour"


@pytest.mark.parametrize("channel", sorted(SIZES))
@pytest.mark.parametrize("logo_size", [(400, 100), (60, 400), (16, 16)])
def test_the_logo_fits_its_safe_zone_above_the_panel(tmp_path: Path, channel: str, logo_size: tuple):
    width, height = SIZES[channel]
    kit = _kit(tmp_path, logo_size=logo_size)
    headline = "A headline long enough to take three lines or more on most of the formats here"
    image, _ = compose(WHITE, headline, "Learn more", (width, height), FONT, kit)
    logo = _box(image, lambda p: p[1] - p[0] > 100 and p[1] - p[2] > 100)  # the green pixels
    margin = width // 20
    zone = (margin + int(width * 0.2), margin + int(height * 0.15))
    assert logo is not None and logo[:2] == (margin, margin)
    assert logo[2] <= zone[0] and logo[3] <= zone[1]
    assert zone[0] - logo[2] <= 1 or zone[1] - logo[3] <= 1, "scaled to fill the zone's width or height"
    assert logo[3] < _panel_top(image), "the logo never overlaps the text panel"


def test_the_kits_font_comes_first(tmp_path: Path):
    kit = _kit(tmp_path / "a", font="DejaVuSerif-Bold.ttf")
    assert compose(NOISE, "Fresh", "Buy", (1200, 628), FONT, kit)[1]["font"] == "DejaVu Serif"
    mixed = compose(NOISE, "Sakura 桜", "Buy", (1200, 628), FONT, kit)[1]["font"]
    assert mixed == "DejaVu Serif+Noto Sans CJK JP", "the fallbacks still draw what the kit's font lacks"
    (tmp_path / "b").mkdir()
    shutil.copy(str(creatives.font_path("DejaVuSansMono-Bold.ttf")), tmp_path / "b" / "brand.ttf")
    kit = _kit(tmp_path / "b", font="./brand.ttf")
    assert compose(NOISE, "Fresh", "Buy", (1200, 628), FONT, kit)[1]["font"] == "DejaVu Sans Mono"


def _rows(source: Path, brands: list[str | None]) -> list[dict]:
    return [{"image_id": f"image-{i:020x}", "copy_id": "copy-1", "brief_id": "b1", "channel": "x",
             "headline": "Fresh", "cta": "Buy", "path": str(source), "brand": brand}
            for i, brand in enumerate(brands)]  # fmt: skip


def test_without_a_kit_ids_and_pixels_are_as_before(tmp_path: Path):
    source = tmp_path / "img.png"
    NOISE.save(source)
    rows = _rows(source, ["Other", None, "Nordbrew"])
    kits = {"Nordbrew": _kit(tmp_path / "kits")}
    layout = creatives.LAYOUT
    before = [make_id("creative", r["image_id"], "Fresh", "Buy", SIZES["x"], FONT, layout) for r in rows]
    assert [j.creative_id for j in creatives.plan_creatives(rows, FONT)] == before
    with_kits = creatives.plan_creatives(rows, FONT, kits)
    assert [j.creative_id for j in with_kits][:2] == before[:2] and with_kits[2].creative_id != before[2]
    plain_jobs = creatives.plan_creatives(rows, FONT)
    plain, _ = creatives.render_creatives.fn(plain_jobs, FONT, ArtifactStore(tmp_path / "p"))
    branded, _ = creatives.render_creatives.fn(with_kits, FONT, ArtifactStore(tmp_path / "k"), kits)
    assert [r.sha256 for r in branded][:2] == [r.sha256 for r in plain][:2]
    assert branded[2].sha256 != plain[2].sha256
    assert _box(Image.open(branded[2].path).convert("RGB"), lambda p: p == BRAND) is not None
    assert _box(Image.open(branded[0].path).convert("RGB"), lambda p: p == BRAND) is None


def test_the_creative_id_changes_with_the_kit_and_only_then(tmp_path: Path):
    rows = _rows(tmp_path / "img.png", ["Nordbrew", "Other", " Nordbrew "])

    def ids(kit) -> list[str]:
        return [j.creative_id for j in creatives.plan_creatives(rows, FONT, {"Nordbrew": kit})]

    first = ids(_kit(tmp_path / "a"))
    assert first[0] != first[2], "two images: two creatives"
    unchanged = _kit(tmp_path / "b", business_name="Nordbrew Roasters", final_url="https://n.example/",
                     tone_notes="Calm.")  # fmt: skip
    assert ids(unchanged) == first, "what the creative does not show does not re-render it"
    for changed in (_kit(tmp_path / "c", "#C81E3D"), _kit(tmp_path / "d", logo_size=(401, 100)),
                    _kit(tmp_path / "e", font="DejaVuSerif-Bold.ttf")):  # fmt: skip
        again = ids(changed)
        assert again[1] == first[1] and again[0] != first[0] and again[2] != first[2]

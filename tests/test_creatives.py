"""Creatives: channel formats, text that always fits, and measured contrast."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from adforge.storage.artifacts import ArtifactStore
from adforge.tasks import creatives
from adforge.tasks.creatives import MIN_CONTRAST, SIZES, TEXT, compose, contrast_ratio, load_font, wrap

FONT = "DejaVuSans-Bold.ttf"
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
    ],
)
def test_wrapped_lines_fit_and_lose_nothing(text: str):
    font = load_font(FONT, 60)
    lines = wrap(text, font, 500)
    assert len(lines) > 1
    assert all(font.getlength(line) <= 500 for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", ""), "every character is kept, in order"
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

"""Brand kits: valid files load, each bad field is named in one line, files outside the folder are refused."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from adforge.tasks import brand_kits
from adforge.tasks.brand_kits import hex_rgb, load_kits
from adforge.tasks.creatives import font_path
from adforge.tasks.sample_brand_kits import write_sample_kits
from adforge.tasks.sample_briefs import SAMPLE_BRIEFS

VALID: dict[str, Any] = {
    "brand": " Nordbrew ", "business_name": "Nordbrew Coffee", "final_url": "https://nordbrew.example/",
    "logo": "logo.png", "tone_notes": "Upbeat and brief.",
    "colors": {"primary": "#1f4e79", "accent": "#F2A900"},
}  # fmt: skip


def write_kit(folder: Path, fields: dict[str, Any], name: str = "nordbrew.toml") -> Path:
    """fields as a TOML file: tables (dicts) after the plain keys."""
    lines = [f"{key} = {json.dumps(value)}" for key, value in fields.items() if not isinstance(value, dict)]
    for table, values in ((k, v) for k, v in fields.items() if isinstance(v, dict)):
        lines += [f"[{table}]", *(f"{key} = {json.dumps(value)}" for key, value in values.items())]
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def kits(tmp_path: Path) -> Path:
    """A kits folder with a logo."""
    folder = tmp_path / "kits"
    folder.mkdir()
    Image.new("RGBA", (120, 60), (200, 30, 60, 128)).save(folder / "logo.png")
    return folder


def test_a_valid_kit_loads(kits: Path):
    write_kit(kits, VALID)
    loaded, problems = load_kits(kits)
    assert problems == []
    kit = loaded["Nordbrew"]  # matched after strip
    assert (kit.business_name, kit.final_url, kit.tone_notes) == ("Nordbrew Coffee", VALID["final_url"],
                                                                  "Upbeat and brief.")  # fmt: skip
    assert (kit.colors.primary, kit.colors.accent, kit.font) == ("#1F4E79", "#F2A900", None)
    data = (kits / "logo.png").read_bytes()
    assert (kit.logo.data, kit.logo.sha256) == (data, hashlib.sha256(data).hexdigest())
    assert hex_rgb(kit.colors.primary) == (31, 78, 121)


def test_jpeg_logos_and_kit_fonts_load(kits: Path):
    Image.new("RGB", (80, 80), (10, 20, 30)).save(kits / "logo.jpg")
    (kits / "fonts").mkdir()
    shutil.copy(str(font_path("DejaVuSans-Bold.ttf")), kits / "fonts" / "brand.ttf")
    write_kit(kits, VALID | {"logo": "logo.jpg", "font": "fonts/brand.ttf"})
    write_kit(kits, VALID | {"brand": "Other", "font": "DejaVuSerif-Bold.ttf"}, "other.toml")
    loaded, problems = load_kits(kits)
    assert problems == []
    font = loaded["Nordbrew"].font
    assert font is not None and font.path == str((kits / "fonts" / "brand.ttf").resolve())
    assert font.sha256 == hashlib.sha256((kits / "fonts" / "brand.ttf").read_bytes()).hexdigest()
    assert loaded["Other"].font == brand_kits.Asset(path="DejaVuSerif-Bold.ttf")  # found when drawing


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"business_name": "x" * 26}, "business_name: 26 characters, at most 25 allowed"),
        ({"brand": "  "}, "brand: must not be empty"),
        ({"brand": 7}, "brand: must be text, not int"),
        ({"final_url": "ftp://nordbrew.example/"}, "final_url: must be an http or https URL, not 'ftp://"),
        ({"final_url": "javascript:alert(1)"}, "final_url: must be an http or https URL"),
        ({"final_url": "https://"}, "final_url: must be an http or https URL"),
        ({"colors": {"primary": "red", "accent": "#F2A900"}},
         "colors.primary: must be a colour as '#RRGGBB', not 'red'"),
        ({"colors": {"primary": "#1F4E79"}}, "colors.accent: missing"),
        ({"colors": "#1F4E79"}, "colors: must be a table"),
        ({"tone_notes": "x" * 501}, "tone_notes: 501 characters, at most 500 allowed"),
        ({"slogan": "Coffee!"}, "slogan: unknown field"),
        ({"logo": "missing.png"}, "logo: 'missing.png' is not a file"),
        ({"logo": 3}, "logo: must be a file path relative to the kit file"),
        ({"font": "Brand.woff"}, "font: must name a .ttf/.otf/.ttc font file, not 'Brand.woff'"),
        ({"font": "*.ttf"}, "font: '*.ttf' is not a font file name"),
    ],
)  # fmt: skip
def test_each_bad_field_is_one_line_naming_file_and_field(kits: Path, change: dict[str, Any], problem: str):
    path = write_kit(kits, VALID | change)
    loaded, problems = load_kits(kits)
    assert loaded == {}
    assert len(problems) == 1 and problems[0].startswith(f"{path}: {problem}")
    assert "\n" not in problems[0]


def test_a_missing_field_is_named(kits: Path):
    path = write_kit(kits, {k: v for k, v in VALID.items() if k != "logo"})
    assert load_kits(kits) == ({}, [f"{path}: logo: missing"])


def test_a_bad_kit_is_skipped_and_the_others_load(kits: Path):
    write_kit(kits, VALID | {"brand": "Other", "colors": {}}, "other.toml")
    write_kit(kits, VALID)
    (kits / "garbage.toml").write_bytes(b"\xff\xfe\x00 not text")
    (kits / "broken.toml").write_text('brand = "x"\n[colors\n')
    (kits / "folder.toml").mkdir()
    loaded, problems = load_kits(kits)
    assert list(loaded) == ["Nordbrew"]
    assert [line.split(": ")[0] for line in problems] == [str(kits / name) for name in (
        "broken.toml", "folder.toml", "garbage.toml", "other.toml", "other.toml")]  # fmt: skip
    assert "(at line 2" in problems[0] and "not a regular file" in problems[1] and "utf-8" in problems[2]


@pytest.mark.parametrize("logo", ["../outside.png", "sub/../../outside.png", "ABSOLUTE", "link.png"])
def test_a_logo_outside_the_kits_folder_is_refused(kits: Path, logo: str):
    outside = kits.parent / "outside.png"
    Image.new("RGB", (10, 10)).save(outside)
    (kits / "sub").mkdir()
    (kits / "link.png").symlink_to(outside)
    logo = str(outside) if logo == "ABSOLUTE" else logo
    path = write_kit(kits, VALID | {"logo": logo})
    _, [problem] = load_kits(kits)
    reason = (
        "must be relative to the kit file, not absolute" if logo == str(outside) else "is outside the kits"
    )
    assert problem.startswith(f"{path}: logo: ") and reason in problem


def test_a_kit_file_linked_from_outside_is_refused(kits: Path):
    outside = write_kit(kits.parent, VALID | {"logo": "kits/logo.png"}, "outside.toml")
    (kits / "linked.toml").symlink_to(outside)
    assert load_kits(kits) == ({}, [f"{kits / 'linked.toml'}: a link to a file outside the kits folder"])


def test_a_font_outside_the_folder_or_unreadable_is_refused(kits: Path):
    (kits / "fake.ttf").write_bytes(b"not a font at all")
    write_kit(kits, VALID | {"font": "./fake.ttf"})
    write_kit(kits, VALID | {"brand": "B", "font": "../x.ttf"}, "b.toml")
    _, problems = load_kits(kits)
    assert problems == [
        f"{kits / 'b.toml'}: font: '../x.ttf' is outside the kits folder",
        f"{kits / 'nordbrew.toml'}: font: './fake.ttf': not a readable TrueType or OpenType font",
    ]


def test_logos_are_size_capped_and_must_be_png_or_jpeg(kits: Path, monkeypatch: pytest.MonkeyPatch):
    (kits / "text.png").write_text("<svg/>")
    Image.new("RGB", (10, 10)).save(kits / "anim.gif")
    for name, logo in (("a", "text.png"), ("b", "anim.gif"), ("c", "logo.png")):
        write_kit(kits, VALID | {"brand": name, "logo": logo}, f"{name}.toml")
    monkeypatch.setattr(brand_kits, "MAX_LOGO_SIDE", 100)
    problems = load_kits(kits)[1]
    assert [p.split(": ", 1)[1] for p in problems] == [
        "logo: 'text.png': not a readable PNG or JPEG image",
        "logo: 'anim.gif': not a readable PNG or JPEG image",
        "logo: 'logo.png': 120x60 pixels, at most 100 a side",
    ]
    monkeypatch.setattr(brand_kits, "MAX_LOGO_BYTES", 100)
    assert load_kits(kits)[1][2].endswith("logo: 'logo.png': larger than 100 bytes")


def test_a_decompression_bomb_is_refused_by_pillows_limit(kits: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5000)  # 120x60 is over it, not twice: Pillow only warns
    write_kit(kits, VALID)
    assert load_kits(kits)[1][0].endswith("logo: 'logo.png': not a readable PNG or JPEG image")


def test_kit_files_are_size_capped(kits: Path, monkeypatch: pytest.MonkeyPatch):
    path = write_kit(kits, VALID)
    monkeypatch.setattr(brand_kits, "MAX_KIT_BYTES", 50)
    assert load_kits(kits) == ({}, [f"{path}: larger than 50 bytes"])


def test_two_kits_for_one_brand_are_a_problem_naming_both(kits: Path):
    first = write_kit(kits, VALID, "a.toml")
    second = write_kit(kits, VALID | {"brand": "Nordbrew"}, "b.toml")
    write_kit(kits, VALID | {"brand": "Other"}, "c.toml")
    loaded, problems = load_kits(kits)
    assert list(loaded) == ["Other"]
    assert problems == [f"{first} and {second}: brand 'Nordbrew' has 2 kits; none of them is used"]


def test_a_missing_folder_is_a_problem(tmp_path: Path):
    assert load_kits(tmp_path / "nowhere") == ({}, [f"{tmp_path / 'nowhere'}: brand kits folder not found"])


def test_sample_kits_load_for_every_sample_brand(tmp_path: Path):
    written = write_sample_kits(tmp_path / "kits")
    loaded, problems = load_kits(tmp_path / "kits")
    assert problems == [] and len(written) == len(loaded)
    assert set(loaded) == {brief[2] for brief in SAMPLE_BRIEFS}
    for kit in loaded.values():
        with Image.open(kit.logo.path) as logo:
            assert logo.mode == "RGBA" and logo.getpixel((0, 0))[3] == 0, "a transparent background"
            assert logo.getpixel((logo.width // 2, 20))[:3] == hex_rgb(kit.colors.primary)
    again = write_sample_kits(tmp_path / "again")
    assert [p.read_bytes() for p in written] == [p.read_bytes() for p in again]
    assert load_kits(tmp_path / "again")[0]["Nordbrew"].logo.sha256 == loaded["Nordbrew"].logo.sha256


def test_a_run_draws_each_brand_with_its_kit_and_says_so(settings, tmp_path: Path):
    """Through the flow (fake generators): the brand with a kit gets it in its prompts and creatives, the
    other brand's copy keeps the ids it would have without kits."""
    import duckdb
    import pyarrow.parquet as pq

    from adforge.flows.generate_campaigns import generate_campaigns
    from adforge.tasks.sample_briefs import write_sample_briefs

    briefs = tmp_path / "briefs.parquet"
    write_sample_briefs(briefs)
    pq.write_table(pq.read_table(briefs).slice(1, 2), briefs)  # a Nordbrew and a PeakGear brief
    folder = tmp_path / "kits"
    write_sample_kits(folder)
    kits, _ = load_kits(folder)
    branded = "Nordbrew"
    for path in folder.glob("*.toml"):  # keep one brand's kit
        if f'brand = "{branded}"' not in path.read_text():
            path.unlink()
    plain = settings.to_dict() | {"db": str(tmp_path / "plain.duckdb")}
    generate_campaigns(briefs=[str(briefs)], settings=plain)
    generate_campaigns(briefs=[str(briefs)], settings=settings.to_dict() | {"brand_kits": str(folder)})
    sql = (
        "SELECT b.brand, c.copy_id, c.prompt, k.brand_kit, k.button_color, k.cta_contrast "
        "FROM creatives k JOIN copies c USING (copy_id) "
        "JOIN briefs b ON b.brief_id = c.brief_id AND b.brief_hash = c.brief_hash"
    )
    with duckdb.connect(settings.db, read_only=True) as con:
        rows = con.execute(sql).fetchall()
    with duckdb.connect(plain["db"], read_only=True) as con:
        before = {copy_id for (copy_id,) in con.execute("SELECT copy_id FROM copies").fetchall()}
    kit = kits[branded]
    for brand, copy_id, prompt, kit_id, button, contrast in rows:
        if brand == branded:
            assert kit_id and button and contrast >= 4.5 and kit.business_name in prompt
            assert copy_id not in before  # the kit's voice is part of the copy's id
        else:
            assert kit_id is None and "Business name" not in prompt and copy_id in before

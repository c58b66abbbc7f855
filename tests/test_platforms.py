"""Platform-native ad formats (tasks/platforms.py) and the bulk-upload sheets written from them
(tasks/platform_export.py): counting, every rule, and each format's sheet read back and checked again."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from adforge.tasks.channels import CHANNELS, CTA_BUTTONS
from adforge.tasks.platform_export import (
    COLUMNS,
    EXPORT_FORMATS,
    escape_cell,
    unescape_cell,
    write_export,
)
from adforge.tasks.platforms import (
    LINKEDIN_CTA_LABELS,
    META_CTA_TYPES,
    PLATFORM_FORMATS,
    advice,
    choose_images,
    count,
    image_problems,
    platform_cta,
    problems,
    x_count,
)

LONG_URL = "https://example.com/" + "cold-brew/" * 30

# --- Counting ------------------------------------------------------------------------------------------


def test_google_counts_double_width_characters_twice():
    assert count("冷萃咖啡", "google") == 8
    assert count("冷萃咖啡", "chars") == 4
    assert count("Cold brew", "google") == 9
    assert count("ＡＢ", "google") == 4  # fullwidth Latin
    assert count("ｺｰﾋｰ", "google") == 4  # halfwidth katakana: single width
    assert count("한국어", "google") == 6


def test_x_counts_a_url_as_23_whatever_its_length():
    assert len(LONG_URL) > 300
    assert x_count(LONG_URL) == 23
    assert x_count("https://x.co") == 23
    assert x_count(f"Iced: {LONG_URL}") == 6 + 23
    assert x_count("See https://example.com/a.") == 4 + 23 + 1  # the final period is not part of the URL
    assert x_count("www.example.com") == 23


def test_x_weighs_cjk_and_emoji_two():
    assert x_count("冷萃咖啡") == 8
    assert x_count("café — “best”") == 13  # Latin, dashes and quotes: one each
    assert x_count("…") == 2  # U+2026 is outside X's one-weight ranges
    assert x_count("☕") == 2
    assert x_count("😀") == 2
    assert x_count("©") == 2  # an emoji to twitter-text, though in the one-weight range
    assert x_count("e\u0301") == 1  # normalised to é first


@pytest.mark.parametrize(
    "text, weighted",
    [  # weighted lengths from twitter-text-parser 3.0.0, a port that passes twitter-text's conformance suite
        ("詳しくはexample.comまで", 35),
        ("詳しくはhttps://example.com/jaまで", 35),
        ("https://例え.jp/パス", 27),
        ("café.fr", 23),
        ("price 3.50 at shop.co.uk!", 38),
        ("mail hi@shop.com", 16),
        ("#sale at shop.com", 32),
        ("“shop.com”", 25),
        ("shop.com/ですね", 29),
        ("Try it: https://shop.example.com/p/123?utm_source=x&utm_medium=y.", 32),
        ("冷萃咖啡.com", 12),
    ],
)
def test_x_count_matches_twitter_text(text: str, weighted: int):
    assert x_count(text) == weighted


@pytest.mark.parametrize(
    "text, weighted",
    [("👨\u200d👩\u200d👧", 2), ("1️⃣", 2), ("Node.js", 7), ("see https://example.com/über", 27)],
)
def test_x_count_errs_on_the_long_side(text: str, weighted: int):
    """Where the count differs from X's (emoji sequences, words that look like domains), it is longer."""
    assert x_count(text) >= weighted


def test_x_limit_is_280_weighted():
    fits = {"post": ["a" * 280], "card_headline": ["Cold brew"], "final_url": ["https://example.com/"]}
    assert problems("x", fits) == []
    assert problems("x", fits | {"post": ["冷" * 140]}) == []
    assert problems("x", fits | {"post": ["a" * 256 + " " + LONG_URL]}) == []  # 256 + 1 + 23
    for post in ("a" * 281, "冷" * 141, "a" * 257 + " " + LONG_URL):
        assert problems("x", fits | {"post": [post]}) == [
            f"post: {x_count(post)} characters as x counts them, the limit is 280"
        ]


def test_unknown_counting():
    with pytest.raises(ValueError, match="unknown counting"):
        count("x", "bytes")


# --- Rules ---------------------------------------------------------------------------------------------

URL = "https://example.com/cold-brew"
VALID: dict[str, dict[str, list[str]]] = {
    "google_search": {
        "headlines": ["Cold Brew, Delivered", "Order Cold Brew Online", "冷萃咖啡 外送",
                      "Fresh Every Morning", "Free Delivery Over $20"],
        "descriptions": ["-20% on cold brew this week. Order online and get it by noon.",
                         "Small-batch coffee, brewed 18 hours. Delivered chilled to your door."],
        "path1": ["cold-brew"],
        "path2": ["deals"],
    },
    "display": {
        "headlines": ["Cold Brew, Delivered", "Brewed for 18 Hours"],
        "long_headline": ["Small-batch cold brew, brewed for 18 hours and delivered chilled"],
        "descriptions": ["Order by 10am, sip by noon."],
        "business_name": ["Northside Coffee"],
    },
    "facebook": {
        "primary_text": ["+1 free cup with every order this week. Cold brew, brewed for 18 hours."],
        "headline": ["Cold brew, delivered"],
        "description": ["Free delivery over $20"],
        "cta": ["SHOP_NOW"],
    },
    "instagram": {
        "primary_text": ["Cold brew season is here. Brewed 18 hours, delivered chilled."],
        "headline": ["Cold brew, delivered"],
        "cta": ["ORDER_NOW"],
    },
    "linkedin": {
        "intro_text": ["@Northside brings small-batch cold brew to your office, delivered every Monday."],
        "headline": ["Office cold brew, delivered weekly"],
        "cta": ["REQUEST_DEMO"],
    },
    "x": {
        "post": ["@northside Cold brew season: 冷萃咖啡 ☕ https://example.com/cold-brew?utm_source=x"],
        "card_headline": ["Cold brew, delivered"],
    },
    "email": {
        "subject": ["Your cold brew is waiting"],
        "preheader": ["Order by 10am, sip by noon"],
        "body": ["=Hi there, our small-batch cold brew is back: brewed for 18 hours, delivered chilled."],
        "cta": ["Order now"],
    },
}  # fmt: skip


def assets_of(channel: str, **changes: list[str]) -> dict[str, list[str]]:
    return {**VALID[channel], "final_url": [URL], **changes}


def test_formats_cover_every_channel():
    assert set(PLATFORM_FORMATS) == set(CHANNELS)
    assert {c for channels in EXPORT_FORMATS.values() for c in channels} == set(CHANNELS)


@pytest.mark.parametrize("channel", list(PLATFORM_FORMATS))
def test_valid_assets_have_no_problems(channel: str):
    assert problems(channel, assets_of(channel)) == []


def test_count_out_of_range():
    two = VALID["google_search"]["headlines"][:2]
    assert problems("google_search", assets_of("google_search", headlines=two)) == [
        "headlines: 2 given, google_search takes 3 to 15"
    ]
    sixteen = [f"Cold brew offer {i}" for i in range(16)]
    assert "headlines: 16 given, google_search takes 3 to 15" in problems(
        "google_search", assets_of("google_search", headlines=sixteen)
    )
    assert problems("email", assets_of("email", subject=[])) == ["subject: 0 given, email takes 1"]
    assert problems("display", assets_of("display", business_name=["A", "B"])) == [
        "business_name: 2 given, display takes 1"
    ]


def test_too_long_under_googles_counting():
    wide = "冷萃咖啡" * 4  # 16 characters, 32 wide
    assets = assets_of("google_search", headlines=[wide, *VALID["google_search"]["headlines"][1:]])
    assert problems("google_search", assets) == [
        "headlines[1]: 32 characters as google_search counts them, the limit is 30"
    ]
    assert problems("display", assets_of("display", business_name=["北区咖啡烘焙工作室有限公司"])) == [
        "business_name: 26 characters as display counts them, the limit is 25"
    ]
    assert problems("facebook", assets_of("facebook", description=["x" * 31])) == [
        "description: 31 characters, the limit is 30"
    ]


def test_duplicates_ignore_case_and_spaces():
    headlines = [*VALID["google_search"]["headlines"], "  cold brew,   DELIVERED "]
    assert problems("google_search", assets_of("google_search", headlines=headlines)) == [
        "headlines: '  cold brew,   DELIVERED ' repeats another value (case and spaces ignored)"
    ]


def test_path2_needs_path1():
    assert problems("google_search", assets_of("google_search", path1=[])) == ["path2: set without path1"]
    assert problems("google_search", assets_of("google_search", path2=[])) == []
    too_wide = assets_of("google_search", path1=["コールドブリュー"])  # 8 characters, 16 wide
    assert problems("google_search", too_wide) == [
        "path1: 16 characters as google_search counts them, the limit is 15"
    ]


def test_cta_must_be_the_platforms_type():
    assert problems("facebook", assets_of("facebook", cta=["Shop now"])) == [
        "cta: 'Shop now' is not one of facebook's call-to-action types"
    ]
    assert problems("linkedin", assets_of("linkedin", cta=["SHOP_NOW_PLEASE"])) == [
        "cta: 'SHOP_NOW_PLEASE' is not one of linkedin's call-to-action types"
    ]
    assert problems("linkedin", assets_of("linkedin", cta=[])) == []  # optional on LinkedIn
    assert problems("email", assets_of("email", cta=["Grab a cup"])) == []  # free text in email


def test_every_adforge_button_maps_to_a_platform_type():
    for button in CTA_BUTTONS:
        assert platform_cta("facebook", button) in META_CTA_TYPES
        assert platform_cta("linkedin", button) in (*LINKEDIN_CTA_LABELS, None)
    assert platform_cta("facebook", "Book now") == "BOOK_NOW"
    assert platform_cta("linkedin", "Get quote") == "VIEW_QUOTE"
    assert platform_cta("linkedin", "Contact us") is None
    assert platform_cta("email", "Order now") is None


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/", "javascript:alert(1)", "example.com/cold-brew", "https://", "https://a b.com/"],
)
def test_final_url_must_be_http(url: str):
    assert problems("x", assets_of("x", final_url=[url])) == [f"final_url: {url!r} is not an http(s) URL"]


def test_malformed_assets():
    assert problems("x", assets_of("x", post=["  "])) == ["post: empty"]
    assert problems("x", {**assets_of("x"), "post": "not a list"}) == ["post: not a list of texts"]  # type: ignore[dict-item]
    assert problems("x", assets_of("x", hashtags=["#coffee"])) == ["hashtags: not a field of x ads"]
    with pytest.raises(ValueError, match="unknown channel"):
        problems("tiktok", {})


def test_advice_is_not_a_problem():
    three = VALID["google_search"]["headlines"][:3]
    assets = assets_of("google_search", headlines=three)
    assert problems("google_search", assets) == []
    assert advice("google_search", assets) == [
        "headlines: 3 distinct; Google advises at least 5 distinct headlines"
    ]
    assert advice("google_search", assets_of("google_search")) == []
    long_intro = assets_of("linkedin", intro_text=["Cold brew " * 20])  # 200 characters: cut after 150
    assert problems("linkedin", long_intro) == []
    assert advice("linkedin", long_intro) == [
        "intro_text: 200 characters; linkedin shows about 150 before cutting"
    ]
    assert problems("linkedin", assets_of("linkedin", intro_text=["x" * 601])) == [
        "intro_text: 601 characters, the limit is 600"
    ]


def test_images_fill_slots_by_shape_size_and_format():
    landscape, square, small = (1200, 628, "PNG"), (1200, 1200, "PNG"), (200, 200, "PNG")
    assert choose_images("display", [square, landscape]) == [1, 0]
    assert image_problems("display", [landscape, square]) == []
    assert image_problems("display", [square]) == [
        "marketing image: no GIF/JPEG/PNG image 1.91:1 of at least 600x314"
    ]
    assert image_problems("instagram", [landscape]) == ["image: no JPEG/PNG image 1:1 of at least 600x600"]
    assert image_problems("facebook", [landscape]) == []  # 1.91:1 serves Facebook's feed
    assert image_problems("facebook", [small]) != []
    assert image_problems("x", [(1200, 1200, "GIF")]) != []  # X cards take PNG or JPEG
    assert image_problems("google_search", []) == []


# --- Exports -------------------------------------------------------------------------------------------


@pytest.fixture
def pictures(tmp_path: Path) -> dict[str, str]:
    """Real PNG files: a 1.91:1, a 1:1 and one too small for any platform."""
    made = {}
    for name, size in {"landscape": (1200, 628), "square": (1200, 1200), "tiny": (120, 120)}.items():
        path = tmp_path / "source" / f"{name}.png"
        path.parent.mkdir(exist_ok=True)
        Image.new("RGB", size, (120, 80, 40)).save(path)
        made[name] = str(path)
    return made


IMAGES_FOR = {"display": ["square", "landscape"], "facebook": ["landscape"],
              "instagram": ["square", "landscape"], "linkedin": ["square"], "x": ["landscape"]}  # fmt: skip


def ad(channel: str, copy_id: str, pictures: dict[str, str], **changes: list[str]) -> dict[str, Any]:
    return {
        "copy_id": copy_id,
        "campaign": "Spring launch",
        "ad_group": "Cold brew",
        "channel": channel,
        "final_url": URL,
        "assets": {**VALID[channel], **changes},
        "images": [pictures[name] for name in IMAGES_FOR.get(channel, [])],
    }


# One broken ad per format, and the reason it is refused.
BROKEN: dict[str, tuple[str, dict[str, list[str]], str]] = {
    "google-ads": ("google_search", {"headlines": ["冷萃咖啡" * 4, "Order Cold Brew", "Fresh Daily"]},
                   "headlines[1]: 32 characters as google_search counts them, the limit is 30"),
    "meta": ("facebook", {"cta": ["Shop now"]},
             "cta: 'Shop now' is not one of facebook's call-to-action types"),
    "linkedin": ("linkedin", {"headline": ["x" * 201]}, "headline: 201 characters, the limit is 200"),
    "x": ("x", {"post": ["冷" * 141]}, "post: 282 characters as x counts them, the limit is 280"),
    "email": ("email", {"subject": []}, "subject: 0 given, email takes 1"),
}  # fmt: skip


def read_back(fmt: str, row: dict[str, str]) -> tuple[str, dict[str, list[str]], list[str]]:
    """The ad name, assets and image files of a sheet row, from its cells alone."""
    cell = {column: unescape_cell(text) for column, text in row.items()}

    def given(*columns: str) -> list[str]:
        return [cell[c] for c in columns if cell[c]]

    if fmt == "google-ads":
        assets = {
            "headlines": given(*(f"Headline {i}" for i in range(1, 16))),
            "descriptions": given(*(f"Description {i}" for i in range(1, 6))),
            "final_url": given("Final URL"),
        }
        if cell["Ad type"] == "Responsive display ad":
            assets |= {"long_headline": given("Long headline 1"), "business_name": given("Business name")}
            return "", assets, given("Marketing image", "Square marketing image")
        assert cell["Ad type"] == "Responsive search ad"
        return "", assets | {"path1": given("Path 1"), "path2": given("Path 2")}, []
    if fmt == "meta":
        assets = {"primary_text": given("Body"), "headline": given("Title"),
                  "description": given("Link Description"), "cta": given("Call to Action"),
                  "final_url": given("Link")}  # fmt: skip
        return cell["Ad Name"], assets, given("Image File Name")
    if fmt == "linkedin":
        assets = {"intro_text": given("Introductory text"), "headline": given("Headline"),
                  "cta": given("Call to action"), "final_url": given("Destination URL")}  # fmt: skip
        return cell["Ad name"], assets, given("Image file")
    if fmt == "x":
        assets = {
            "post": given("Post text"),
            "card_headline": given("Card headline"),
            "final_url": given("Website URL"),
        }
        return cell["Post name"], assets, given("Image file")
    assets = {"subject": given("Subject line"), "preheader": given("Preheader"), "body": given("Body"),
              "cta": given("CTA"), "final_url": given("Link")}  # fmt: skip
    return cell["Copy id"], assets, []


def nonempty(assets: dict[str, list[str]]) -> dict[str, list[str]]:
    return {name: values for name, values in assets.items() if values}


@pytest.mark.parametrize("fmt", list(EXPORT_FORMATS))
def test_export_writes_valid_ads_and_refuses_the_broken_one(
    fmt: str, pictures: dict[str, str], tmp_path: Path
):
    ads = [ad(channel, f"{channel}-1", pictures) for channel in EXPORT_FORMATS[fmt]]
    channel, changes, reason = BROKEN[fmt]
    ads.insert(1, ad(channel, "broken-1", pictures, **changes))
    out = tmp_path / "export"

    result = write_export(ads, fmt, out)

    assert result.refused == [("broken-1", reason)]
    assert result.written_rows == len(EXPORT_FORMATS[fmt])
    sheet = out / f"{fmt}.csv"
    assert result.files[0] == sheet and all(f.is_file() for f in result.files)
    text = sheet.read_text(encoding="utf-8")
    assert "broken-1" not in text
    with sheet.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == COLUMNS[fmt]
        rows = list(reader)
    assert len(rows) == result.written_rows
    by_id = {a["copy_id"]: a for a in ads}
    for index, row in enumerate(rows):
        for raw in row.values():  # untrusted text never reads as a formula
            assert not raw.startswith(("=", "+", "-", "@", "\t", "\r")), raw
        name, assets, images = read_back(fmt, row)
        original = by_id[name] if name else ads[[0, 2][index]]  # google-ads rows carry no ad name
        channel = original["channel"]
        assert problems(channel, assets) == [], row
        assert nonempty(assets) == {**original["assets"], "final_url": [URL]}
        infos = []
        for image in images:
            path = out / "images" / image
            assert path.is_file() and image.startswith(f"{original['copy_id']}-")
            with Image.open(path) as picture:
                infos.append((picture.width, picture.height, picture.format or ""))
                assert image == f"{original['copy_id']}-{picture.width}x{picture.height}.png"
        assert image_problems(channel, infos) == []
        assert len(images) == len(choose_images(channel, infos))
    assert sorted(p.name for p in (out / "images").glob("*")) == sorted(p.name for p in result.files[1:])


def test_google_ads_sheet_uses_editors_headers(pictures: dict[str, str], tmp_path: Path):
    write_export(
        [ad("google_search", "s-1", pictures), ad("display", "d-1", pictures)], "google-ads", tmp_path
    )
    with (tmp_path / "google-ads.csv").open(newline="", encoding="utf-8") as f:
        search, display = csv.DictReader(f)
    assert search["Ad type"] == "Responsive search ad"
    assert search["Headline 3"] == "冷萃咖啡 外送"
    assert search["Description 1"] == "'-20% on cold brew this week. Order online and get it by noon."
    assert (search["Path 1"], search["Path 2"], search["Final URL"]) == ("cold-brew", "deals", URL)
    assert display["Ad type"] == "Responsive display ad"
    assert display["Marketing image"] == "d-1-1200x628.png"
    assert display["Square marketing image"] == "d-1-1200x1200.png"
    assert display["Path 1"] == "" and search["Long headline 1"] == ""


def test_cells_escape_formulas_and_round_trip():
    for text in ['=HYPERLINK("http://evil")', "+1 free", "-20%", "@brand", "\tx", "'quoted", "plain", ""]:
        cell = escape_cell(text)
        assert not cell.startswith(("=", "+", "-", "@", "\t")) and unescape_cell(cell) == text
    assert escape_cell("plain") == "plain"


def test_export_refuses_ads_it_cannot_place(pictures: dict[str, str], tmp_path: Path):
    ok = ad("display", "d-1", pictures)
    ads = [
        ok,
        ad("display", "d-1", pictures),  # same copy_id twice
        ad("facebook", "f-1", pictures),  # not a Google channel
        {**ad("display", "../evil", pictures)},
        {**ad("display", "d-2", pictures), "images": [pictures["square"]]},
        {**ad("display", "d-3", pictures), "images": [pictures["tiny"], pictures["landscape"]]},
        {**ad("display", "d-4", pictures), "images": [str(tmp_path / "missing.png"), pictures["square"]]},
        {**ad("display", "d-5", pictures), "ad_group": ""},
        {**ad("display", "d-6", pictures), "final_url": "javascript:alert(1)"},
    ]
    result = write_export(ads, "google-ads", tmp_path / "out")
    assert result.written_rows == 1
    reasons = dict(result.refused[1:])
    assert result.refused[0] == ("d-1", "copy_id: 'd-1' is already in this sheet")
    assert reasons["f-1"] == (
        "channel: 'facebook' does not go into google-ads sheets (google_search, display do)"
    )
    assert reasons["../evil"] == "copy_id: '../evil' is not letters, digits, '.', '_' and '-'"
    assert reasons["d-2"] == "marketing image: no GIF/JPEG/PNG image 1.91:1 of at least 600x314"
    assert reasons["d-3"] == "square marketing image: no GIF/JPEG/PNG image 1:1 of at least 300x300"
    assert reasons["d-4"].startswith("image '") and "not a readable image file" in reasons["d-4"]
    assert reasons["d-5"] == "ad_group: empty, google-ads sheets need one"
    assert reasons["d-6"] == "final_url: 'javascript:alert(1)' is not an http(s) URL"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["google-ads.csv", "images"]
    assert sorted(p.name for p in (tmp_path / "out" / "images").iterdir()) == [
        "d-1-1200x1200.png",
        "d-1-1200x628.png",
    ]


def test_final_url_may_come_with_the_assets(pictures: dict[str, str], tmp_path: Path):
    x_ad = ad("x", "x-1", pictures)
    del x_ad["final_url"]
    x_ad["assets"] = {**x_ad["assets"], "final_url": [URL]}
    assert write_export([x_ad], "x", tmp_path).refused == []
    with (tmp_path / "x.csv").open(newline="", encoding="utf-8") as f:
        assert next(csv.DictReader(f))["Website URL"] == URL


def test_unknown_format(tmp_path: Path):
    with pytest.raises(ValueError, match="unknown format"):
        write_export([], "tiktok", tmp_path)


def test_empty_export_writes_the_header(tmp_path: Path):
    result = write_export([], "meta", tmp_path)
    assert result.written_rows == 0 and result.files == [tmp_path / "meta.csv"]
    assert (tmp_path / "meta.csv").read_text(encoding="utf-8").splitlines() == [",".join(COLUMNS["meta"])]


def test_stored_ads_export_through_the_cli(sample_db, tmp_path: Path, capsys):
    """The flow's own ads (fake generators, the sample briefs and kits): every format's sheet is written
    from the stored platform fields, holds exactly the ads the CLI reports, and every row read back passes
    its platform's rules; search ads carry the set chosen from the candidates, not one headline."""
    import duckdb

    from adforge.flows.cli import main

    _, db, settings = sample_db
    with duckdb.connect(db, read_only=True) as con:
        search = con.execute("SELECT * FROM v_google_search_ads").fetchall()
        without = con.execute(
            "SELECT count(*) FROM copies WHERE copy_id NOT IN (SELECT copy_id FROM copy_assets)"
        ).fetchone()[0]
    assert search and without == 0
    assert main(["approve", "--all-pending", "--db", db]) == 0
    for fmt in EXPORT_FORMATS:
        out = tmp_path / fmt
        argv = ["export", "--format", fmt, "--to", str(out), "--db", db, "--brand-kits", settings.brand_kits]
        assert main(argv) == 0
        printed = capsys.readouterr()
        with open(out / f"{fmt}.csv", newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        written = int(printed.out.split(": ")[1].split(" ads")[0])
        assert len(rows) == written and written > 0, printed.err
        for row in rows:
            channel = {"meta": "facebook", "google-ads": None}.get(fmt, fmt.replace("-", "_"))
            _, assets, _ = read_back(fmt, row)
            if fmt == "google-ads":
                channel = "display" if row["Ad type"] == "Responsive display ad" else "google_search"
            elif fmt == "meta" and not assets["description"]:
                del assets["description"]
            assert (
                problems(channel or "", {k: v for k, v in assets.items() if v or k != "preheader"}) == []
            ), row
            if channel == "google_search":
                assert len(assets["headlines"]) >= 3 and len(assets["descriptions"]) >= 2
        for row in rows:
            images = [v for k, v in row.items() if "image" in k.lower() and v]
            assert all((out / name).exists() or (out / "images" / name).exists() for name in images), images

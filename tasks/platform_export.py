"""Bulk-upload sheets for the ad platforms, written from platform-native ads (tasks/platforms.py).

An ad, in memory (other keys are ignored):

    {"copy_id": "copy-3f2a...",           # names the ad and its image files: letters, digits, ".", "_", "-"
     "campaign": "Spring launch",         # Campaign / Campaign Name
     "ad_group": "Cold brew",             # Ad group / Ad Set Name: google-ads and meta need one
     "channel": "google_search",          # a key of tasks.platforms.PLATFORM_FORMATS
     "final_url": "https://example.com/", # the landing page, checked as the format's final_url field
     "assets": {"headlines": ["..."], "descriptions": ["..."], "path1": ["..."]},  # the channel's fields
     "images": ["/local/a.png", ...]}     # each fills the channel's image slot it fits (1.91:1, 1:1)

`write_export(ads, fmt, out_dir)` checks every ad first (tasks.platforms.problems, image_problems, the ad's
own keys): an ad that breaks a rule is listed in `refused` with its reasons and left out, never exported
broken. It writes out_dir/<fmt>.csv with the csv module (UTF-8, a header row, one row per ad) and copies the
images the sheet names into out_dir/images/ as <copy_id>-<width>x<height>.<ext>.

The formats:

google-ads  Google Ads Editor's CSV import (https://support.google.com/google-ads/editor/answer/57747,
            "Import a CSV file in Google Ads Editor": English headers, case and spaces ignored, a blank cell
            changes nothing). "Ad type" is "Responsive search ad" (google_search) or "Responsive display ad"
            (display); Campaign, Ad group, Headline 1..15, Description 1..5, Path 1, Path 2, Final URL, Long
            headline 1, Business name: the headers of Google Ads Editor's own exports. Editor's CSV takes no
            image files: "Marketing image" and "Square marketing image" (the Google Ads API's names) name the
            files in images/ for whoever attaches them in Editor, and are left unmapped at import.
meta        Meta Ads Manager's bulk import sheet (Ads Manager, Import ads in bulk; the columns of its export
            template): Campaign Name, Ad Set Name, Ad Name, Body (primary text), Title (headline), Link
            Description, Call to Action (Meta's type, SHOP_NOW), Link, Image File Name (the image uploaded to
            the ad account's library under that name). facebook and instagram ads.
linkedin    No sheet import of ads is documented by LinkedIn: an adforge CSV of the single image ad's fields
            (https://www.linkedin.com/help/lms/answer/a426534): Campaign, Ad name, Introductory text,
            Headline, Call to action (LinkedIn's label), Destination URL, Image file.
x           No sheet import of promoted posts is documented by X: an adforge CSV of a post with a website
            card: Campaign, Ad group, Post name, Post text, Card headline, Website URL, Image file.
email       Not an ad platform: an adforge CSV for a mailing tool: Campaign, Copy id, Subject line,
            Preheader, Body, CTA, Link.

Ad text is untrusted and stays text, never a formula: a cell that starts with =, +, -, @, a tab or a carriage
return gets a leading single quote (OWASP, https://owasp.org/www-community/attacks/CSV_Injection), and so does
one that starts with a quote, so that `unescape_cell` gives back the text exactly. An importer that does not
drop the quote imports it, one character more: look at such ads in the importer's preview."""

from __future__ import annotations

import csv
import re
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from adforge.tasks.brand_kits import BrandKit
from adforge.tasks.platforms import (
    CTA_MAPS,
    IMAGE_SLOTS,
    ImageInfo,
    choose_images,
    image_problems,
    platform_cta,
    problems,
)

EXPORT_FORMATS: dict[str, tuple[str, ...]] = {  # format: the channels it exports
    "google-ads": ("google_search", "display"),
    "meta": ("facebook", "instagram"),
    "linkedin": ("linkedin",),
    "x": ("x",),
    "email": ("email",),
}
COLUMNS: dict[str, tuple[str, ...]] = {
    "google-ads": (
        "Campaign", "Ad group", "Ad type", *(f"Headline {i}" for i in range(1, 16)), "Long headline 1",
        *(f"Description {i}" for i in range(1, 6)), "Business name", "Path 1", "Path 2", "Final URL",
        "Marketing image", "Square marketing image",
    ),
    "meta": ("Campaign Name", "Ad Set Name", "Ad Name", "Body", "Title", "Link Description", "Call to Action",
             "Link", "Image File Name"),
    "linkedin": ("Campaign", "Ad name", "Introductory text", "Headline", "Call to action", "Destination URL",
                 "Image file"),
    "x": ("Campaign", "Ad group", "Post name", "Post text", "Card headline", "Website URL", "Image file"),
    "email": ("Campaign", "Copy id", "Subject line", "Preheader", "Body", "CTA", "Link"),
}  # fmt: skip
NEEDS_AD_GROUP = frozenset({"google-ads", "meta"})
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")  # a file name on any system, no path
_EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "GIF": "gif"}
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")


@dataclass
class ExportResult:
    """What write_export did: rows written, ads refused as (copy_id, reasons), files written (sheet first)."""

    written_rows: int
    refused: list[tuple[str, str]]
    files: list[Path]


def escape_cell(text: str) -> str:
    """The cell for text: a leading quote where a spreadsheet would read a formula (or a quote)."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def unescape_cell(text: str) -> str:
    """The text a cell written by escape_cell holds."""
    return text[1:] if text.startswith("'") else text


def _assets(ad: Mapping[str, Any]) -> dict[str, Any]:
    """The ad's assets with its final URL, as tasks.platforms checks them."""
    assets = dict(ad.get("assets") or {})
    if "final_url" in ad:
        url = ad["final_url"]
        assets["final_url"] = [url] if isinstance(url, str) else url
    return assets


def _image_info(path: Path) -> ImageInfo | None:
    """Width, height and format of an image file (its header only), or None if it is not one."""
    try:
        with Image.open(path) as image:
            return image.width, image.height, image.format or ""
    except (OSError, Image.DecompressionBombError):
        return None


def _images(ad: Mapping[str, Any], channel: str) -> tuple[list[tuple[Path, ImageInfo]], list[str]]:
    """The image filling each of the channel's slots, and what is wrong with the ad's images."""
    if not IMAGE_SLOTS[channel]:
        return [], []
    paths = ad.get("images") or []
    if isinstance(paths, str) or not all(isinstance(p, str | Path) for p in paths):
        return [], ["images: not a list of file paths"]
    infos: list[ImageInfo] = []
    out = []
    for path in map(Path, paths):
        info = _image_info(path)
        if info is None:
            out.append(f"image {str(path)!r}: not a readable image file")
        infos.append(info or (0, 0, ""))
    out += image_problems(channel, infos)
    chosen = [(Path(paths[i]), infos[i]) for i in choose_images(channel, infos) if i is not None]
    return chosen, out


def _ad_problems(ad: object, fmt: str, seen: set[str]) -> list[str]:
    """Why the ad cannot go into a fmt sheet: its own keys, then its platform's rules."""
    if not isinstance(ad, Mapping):
        return ["not an ad (a mapping)"]
    copy_id = ad.get("copy_id")
    if not isinstance(copy_id, str) or not _SAFE_ID.fullmatch(copy_id):
        return [f"copy_id: {copy_id!r} is not letters, digits, '.', '_' and '-'"]
    if copy_id in seen:
        return [f"copy_id: {copy_id!r} is already in this sheet"]
    channel = ad.get("channel")
    if channel not in EXPORT_FORMATS[fmt]:
        return [f"channel: {channel!r} does not go into {fmt} sheets ({', '.join(EXPORT_FORMATS[fmt])} do)"]
    if not isinstance(ad.get("assets"), Mapping):
        return ["assets: not a mapping of field to texts"]
    needed = ("campaign", "ad_group") if fmt in NEEDS_AD_GROUP else ()
    out = [f"{key}: empty, {fmt} sheets need one" for key in needed if not str(ad.get(key) or "").strip()]
    return out + problems(channel, _assets(ad))


def _first(assets: Mapping[str, Any], name: str) -> str:
    values = assets.get(name) or []
    return values[0] if values else ""


def _numbered(prefix: str, values: Iterable[str]) -> dict[str, str]:
    return {f"{prefix} {i}": text for i, text in enumerate(values, 1)}


def _row(fmt: str, ad: Mapping[str, Any], images: list[str]) -> dict[str, str]:
    """The sheet row of a checked ad whose images (one name per slot) are copied."""
    a = _assets(ad)
    campaign, ad_group, copy_id = str(ad.get("campaign") or ""), str(ad.get("ad_group") or ""), ad["copy_id"]
    url = _first(a, "final_url")
    image = images[0] if images else ""
    if fmt == "google-ads":
        row = {"Campaign": campaign, "Ad group": ad_group, "Final URL": url}
        row |= _numbered("Headline", a["headlines"]) | _numbered("Description", a["descriptions"])
        if ad["channel"] == "display":
            return row | {
                "Ad type": "Responsive display ad",
                "Long headline 1": _first(a, "long_headline"),
                "Business name": _first(a, "business_name"),
                "Marketing image": images[0],
                "Square marketing image": images[1],
            }
        return row | {
            "Ad type": "Responsive search ad",
            "Path 1": _first(a, "path1"),
            "Path 2": _first(a, "path2"),
        }
    if fmt == "meta":
        return {
            "Campaign Name": campaign, "Ad Set Name": ad_group, "Ad Name": copy_id,
            "Body": _first(a, "primary_text"), "Title": _first(a, "headline"),
            "Link Description": _first(a, "description"), "Call to Action": _first(a, "cta"), "Link": url,
            "Image File Name": image,
        }  # fmt: skip
    if fmt == "linkedin":
        return {
            "Campaign": campaign, "Ad name": copy_id, "Introductory text": _first(a, "intro_text"),
            "Headline": _first(a, "headline"), "Call to action": _first(a, "cta"), "Destination URL": url,
            "Image file": image,
        }  # fmt: skip
    if fmt == "x":
        return {
            "Campaign": campaign, "Ad group": ad_group, "Post name": copy_id, "Post text": _first(a, "post"),
            "Card headline": _first(a, "card_headline"), "Website URL": url, "Image file": image,
        }  # fmt: skip
    return {
        "Campaign": campaign, "Copy id": copy_id, "Subject line": _first(a, "subject"),
        "Preheader": _first(a, "preheader"), "Body": _first(a, "body"), "CTA": _first(a, "cta"), "Link": url,
    }  # fmt: skip


def _write_sheet(path: Path, columns: tuple[str, ...], rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="", extrasaction="raise")
        writer.writeheader()
        writer.writerows({column: escape_cell(text) for column, text in row.items()} for row in rows)


def write_export(ads: Iterable[Mapping[str, Any]], fmt: str, out_dir: str | Path) -> ExportResult:
    """Write the fmt sheet of the ads that pass their platform's rules, and copy their images beside it;
    the others are refused with their reasons."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown format {fmt!r} (known: {', '.join(EXPORT_FORMATS)})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, str]] = []
    refused: list[tuple[str, str]] = []
    copied: list[Path] = []
    seen: set[str] = set()
    for ad in ads:
        reasons = _ad_problems(ad, fmt, seen)
        chosen, image_reasons = ([], []) if reasons else _images(ad, ad["channel"])
        if reasons or image_reasons:
            copy_id = ad.get("copy_id") if isinstance(ad, Mapping) else None
            refused.append((str(copy_id or ""), "; ".join(reasons + image_reasons)))
            continue
        names = [f"{ad['copy_id']}-{w}x{h}.{_EXTENSIONS[kind]}" for _, (w, h, kind) in chosen]
        for (source, _), name in zip(chosen, names, strict=True):
            (out / "images").mkdir(exist_ok=True)
            shutil.copyfile(source, out / "images" / name)
            copied.append(out / "images" / name)
        seen.add(ad["copy_id"])
        rows.append(_row(fmt, ad, names))
    sheet = out / f"{fmt}.csv"
    _write_sheet(sheet, COLUMNS[fmt], rows)
    return ExportResult(len(rows), refused, [sheet, *copied])


# A copy stored without platform fields (written before they were) as each platform's fields: one headline,
# body and CTA per ad. A format that needs more (a search ad's 3 headlines and 2 descriptions) refuses such an
# ad, with the reason, rather than pad it.
COPY_FIELDS: dict[str, dict[str, str]] = {
    "google_search": {"headlines": "headline", "descriptions": "body"},
    "display": {"headlines": "headline", "descriptions": "body"},
    "facebook": {"primary_text": "body", "headline": "headline"},
    "instagram": {"primary_text": "body", "headline": "headline"},
    "linkedin": {"intro_text": "body", "headline": "headline"},
    "x": {"post": "body", "card_headline": "headline"},
    "email": {"subject": "headline", "body": "body"},
}


def stored_ads(rows: Iterable[Mapping[str, Any]], kits: Mapping[str, BrandKit]) -> list[dict[str, Any]]:
    """Ads in write_export's shape from stored copies (rows of v_assets with `assets`, the copy's rows of
    copy_assets as (field, position, text)); the final URL and a display ad's business name come from the
    brand's kit (an ad without one is refused for the missing URL)."""
    ads = []
    for row in rows:
        channel, kit = row["channel"], kits.get(row["brand"].strip())
        assets: dict[str, list[str]] = {}
        for field, _, text in sorted(row.get("assets") or [], key=lambda a: (a[0], a[1])):
            assets.setdefault(field, []).append(text)
        if not assets:
            assets = {field: [row[name]] for field, name in COPY_FIELDS[channel].items()}
        if channel in CTA_MAPS:
            cta = platform_cta(channel, row["cta"])
            assets["cta"] = [cta] if cta else []
        elif channel == "email":
            assets["cta"] = [row["cta"]]
        if kit and channel == "display":
            assets["business_name"] = [kit.business_name]
        campaign = row["campaign_id"] or row["brand"]
        ads.append({"copy_id": row["copy_id"], "campaign": campaign, "ad_group": row["brief_id"],
                    "channel": channel, "assets": assets, "final_url": kit.final_url if kit else "",
                    "images": list(row["creative_paths"] or [])})  # fmt: skip
    return ads

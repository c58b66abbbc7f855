"""Platform-native ad formats: each channel's fields, how many values each takes, how long each may be under
the platform's own way of counting characters, and the images each platform needs.

`problems` lists every rule an ad breaks (an ad with problems must not be exported); `advice` lists what the
platforms recommend but accept. Pure data and functions: nothing here reads files or the database.

Assets are plain text, one list per field: `{"headlines": ["...", ...], "descriptions": [...], ...}`; a field
that takes one value still takes a list. Call-to-action fields hold the platform's own type (`SHOP_NOW`);
`platform_cta` maps adforge's buttons (tasks/channels.py CTA_BUTTONS) to it."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeGuard
from urllib.parse import urlsplit

COUNTINGS = ("chars", "google", "x")
URL_MAX = 2000  # LinkedIn's documented cap on destination URLs (see LinkedIn below), used for every platform


@dataclass(frozen=True)
class Field:
    """One field of a platform's ad: how many values it takes and how long each may be."""

    name: str
    max_chars: int
    min_count: int = 1
    max_count: int = 1
    counting: str = "chars"  # 'chars' (code points), 'google' (double width counts 2) or 'x' (weighted)
    advised_chars: int | None = None  # longer is accepted but cut on screen: an advice, not a problem
    choices: tuple[str, ...] = ()  # the platform's fixed list (call-to-action types); empty: free text
    url: bool = False  # an http(s) URL

    @property
    def required(self) -> bool:
        """Whether the ad needs at least one value."""
        return self.min_count > 0


@dataclass(frozen=True)
class ImageSpec:
    """An accepted image shape: aspect ratio (width / height) and minimum size in pixels."""

    label: str
    ratio: float
    min_width: int
    min_height: int

    def fits(self, width: int, height: int) -> bool:
        """Whether an image of this size has the ratio (within 1%) and the minimum size."""
        # Google's tolerance ("aspect ratio must be 1.91:1 (+-1%)"), applied to every platform.
        return (
            width >= self.min_width
            and height >= self.min_height
            and height > 0
            and abs(width / height / self.ratio - 1) <= 0.01
        )


ImageInfo = tuple[int, int, str]  # an image's width, height and Pillow's name for its format ("PNG")


@dataclass(frozen=True)
class ImageSlot:
    """One image an ad carries: the first of `specs` that an image fits fills it."""

    name: str
    specs: tuple[ImageSpec, ...]


# --- Counting ------------------------------------------------------------------------------------------

# X counts with twitter-text's v3 configuration,
# https://github.com/twitter/twitter-text/blob/master/config/v3.json ("scale": 100, "defaultWeight": 200,
# "transformedURLLength": 23, "emojiParsingEnabled": true): code points in these ranges weigh 100 (1
# character), every other 200 (2); config/README.md there explains the fields. X's "Counting characters" page
# (https://developer.x.com/en/docs/counting-characters) says it in prose: a URL counts 23 whatever its length,
# CJK characters and emoji 2.
X_LIGHT_RANGES = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))
X_URL_LENGTH = 23
X_MAX = 280
# With emoji parsing on, twitter-text counts © and ® as emoji (2), though they sit in the light range.
_X_HEAVY = frozenset("\u00a9\u00ae")
# twitter-text links a URL with a scheme or "www." (any letters in its domain), and a bare domain (ASCII and
# Latin accented letters: café.fr) when its top-level domain is in its list; then an optional :port and /path
# or ?query. Without that list, a bare domain counts as the longer of 23 and its own weight. Paths take ASCII
# URL characters only and end before punctuation ("see x.com/a." ends at "a"); where X's URL runs further
# (accented paths), the rest is counted character by character. Both err on the long side.
_LATIN = "\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f"
_TLD = r"[a-z]{2,}(?![a-z0-9])"
_URL_CHARS = r"[a-z0-9_\-.~:/?#\[\]@!$&'()*+,;=%]"
_URL_REST = rf"(?::[0-9]{{1,5}})?(?:/(?:{_URL_CHARS}*[a-z0-9_/=#+-])?|\?{_URL_CHARS}*[a-z0-9_=#+-])?"
_LINKED_DOMAIN = rf"(?:[^\W_](?:[\w-]*[^\W_])?\.)+{_TLD}"
_BARE_DOMAIN = rf"(?:[a-z0-9{_LATIN}](?:[a-z0-9{_LATIN}-]*[a-z0-9{_LATIN}])?\.)+{_TLD}"
_X_URLS = re.compile(
    rf"(?i)(?P<linked>(?<![a-z0-9_])(?:https?://|www\.){_LINKED_DOMAIN}{_URL_REST})"
    rf"|(?P<bare>(?<![a-z0-9_@{_LATIN}]){_BARE_DOMAIN}{_URL_REST})"
)


def _x_weight(text: str) -> int:
    """X's weighted length of text without URLs: 1 per light code point, 2 for any other."""
    return sum(
        2 if ch in _X_HEAVY or not any(lo <= ord(ch) <= hi for lo, hi in X_LIGHT_RANGES) else 1 for ch in text
    )


def x_count(text: str) -> int:
    """X's weighted length: URLs 23, CJK and emoji 2. Where it differs from X's it counts more: emoji
    sequences (each code point weighs), words like Node.js (taken for domains); except a URL run into the next
    word with no space ("x.comnow"), which can count a few short."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n")  # as twitter-text does before counting
    total, last = 0, 0
    for match in _X_URLS.finditer(text):
        total += _x_weight(text[last : match.start()])
        total += X_URL_LENGTH if match["linked"] else max(X_URL_LENGTH, _x_weight(match[0]))
        last = match.end()
    return total + _x_weight(text[last:])


def google_count(text: str) -> int:
    """Google Ads' length: double-width (East Asian Wide or Fullwidth) characters count as two."""
    # Google's limits for double-width languages are half the others ("Headline: 25 characters, 12 characters
    # (double-width languages)", https://support.google.com/admob/answer/6177141); Google Ads counts each
    # double-width character as two against the one limit (a display path is "15 characters or 7 double-byte
    # characters", Adobe's Google RSA settings page, https://experienceleague.adobe.com/en/docs/advertising/
    # search-social-commerce/campaign-management/management/campaigns/ads/ad-settings-by-network/
    # ad-settings-google-rsa; the API speaks of a business name's "maximum display width").
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def count(text: str, counting: str) -> int:
    """The length of text as the platform counts it: 'chars', 'google' or 'x'."""
    if counting == "chars":
        return len(text)
    if counting == "google":
        return google_count(text)
    if counting == "x":
        return x_count(text)
    raise ValueError(f"unknown counting {counting!r} (known: {', '.join(COUNTINGS)})")


# --- Calls to action -----------------------------------------------------------------------------------

# Meta's call-to-action types (AdCreativeLinkDataCallToAction.Type in Meta's Business SDK,
# https://github.com/facebook/facebook-python-business-sdk/blob/main/facebook_business/adobjects/
# adcreativelinkdatacalltoaction.py): those a link ad to a website offers; the full list adds app, message,
# call and event types.
META_CTA_TYPES = ("SHOP_NOW", "LEARN_MORE", "SIGN_UP", "BOOK_NOW", "BOOK_TRAVEL", "ORDER_NOW", "GET_OFFER",
                  "SUBSCRIBE", "GET_STARTED", "DOWNLOAD", "CONTACT_US", "APPLY_NOW", "GET_QUOTE", "BUY_NOW",
                  "BUY_TICKETS", "DONATE_NOW", "INQUIRE_NOW", "SEE_MORE", "WATCH_MORE",
                  "LISTEN_NOW")  # fmt: skip
# LinkedIn's call-to-action labels (the Posts API's callToAction label, https://learn.microsoft.com/en-us/
# linkedin/marketing/community-management/shares/posts-api): a fixed list, no free text.
LINKEDIN_CTA_LABELS = ("APPLY", "DOWNLOAD", "VIEW_QUOTE", "LEARN_MORE", "SIGN_UP", "SUBSCRIBE", "REGISTER",
                       "JOIN", "ATTEND", "REQUEST_DEMO", "SEE_MORE", "BUY_NOW", "SHOP_NOW")  # fmt: skip

_META_CTA = {"Shop now": "SHOP_NOW", "Learn more": "LEARN_MORE", "Sign up": "SIGN_UP", "Book now": "BOOK_NOW",
             "Order now": "ORDER_NOW", "Get offer": "GET_OFFER", "Subscribe": "SUBSCRIBE",
             "Get started": "GET_STARTED", "Try it free": "SIGN_UP",  # Meta has no free-trial type
             "Download": "DOWNLOAD", "Contact us": "CONTACT_US", "Apply now": "APPLY_NOW",
             "Get quote": "GET_QUOTE"}  # fmt: skip
# LinkedIn has no label for "Get offer" or "Contact us": those ads go without a button (it is optional).
_LINKEDIN_CTA = {"Shop now": "SHOP_NOW", "Learn more": "LEARN_MORE", "Sign up": "SIGN_UP",
                 "Book now": "REGISTER", "Order now": "BUY_NOW", "Subscribe": "SUBSCRIBE",
                 "Get started": "SIGN_UP", "Try it free": "SIGN_UP", "Download": "DOWNLOAD",
                 "Apply now": "APPLY", "Get quote": "VIEW_QUOTE"}  # fmt: skip
CTA_MAPS: dict[str, dict[str, str]] = {
    "facebook": _META_CTA,
    "instagram": _META_CTA,
    "linkedin": _LINKEDIN_CTA,
}


def platform_cta(channel: str, button: str) -> str | None:
    """The platform's call-to-action type for one of adforge's CTA buttons; None where it has none (or
    where the channel's CTA is free text: email)."""
    return CTA_MAPS.get(channel, {}).get(button)


# --- Formats -------------------------------------------------------------------------------------------

# Google responsive search ad: 3 to 15 headlines of 30, 2 to 4 descriptions of 90, paths of 15, path2 only
# with path1. https://support.google.com/google-ads/answer/7684791 (About responsive search ads) and the API's
# ResponsiveSearchAdInfo (https://developers.google.com/google-ads/api/reference/rpc/latest/
# ResponsiveSearchAdInfo: path2 "can only be set when path1 is also set"). "Provide at least 5 distinct
# headlines" is advice (https://developers.google.com/adwords/api/docs/reference/v201809/
# AdService.ResponsiveSearchAd); 3 is the minimum the platform accepts.
_GOOGLE_SEARCH = (
    Field("headlines", 30, min_count=3, max_count=15, counting="google"),
    Field("descriptions", 90, min_count=2, max_count=4, counting="google"),
    Field("path1", 15, min_count=0, counting="google"),
    Field("path2", 15, min_count=0, counting="google"),
    Field("final_url", URL_MAX, url=True),
)
# Google responsive display ad (https://developers.google.com/google-ads/api/reference/rpc/latest/
# ResponsiveDisplayAdInfo): "Short format headlines ... maximum length is 30 characters. At least 1 and max
# 5", "A required long format headline. The maximum length is 90", descriptions of 90, 1 to 5, business
# name of "maximum display width" 25; marketing image 1.91:1, at least 600x314, and square marketing image
# 1:1, at least 300x300, each "(+-1%)", GIF, JPEG or PNG.
_GOOGLE_DISPLAY = (
    Field("headlines", 30, min_count=1, max_count=5, counting="google"),
    Field("long_headline", 90, counting="google"),
    Field("descriptions", 90, min_count=1, max_count=5, counting="google"),
    Field("business_name", 25, counting="google"),
    Field("final_url", URL_MAX, url=True),
)
# Meta feed ads (Meta Ads Guide, https://www.facebook.com/business/ads-guide/image/facebook-feed and
# /instagram-feed): primary text 125, headline 40, description 30 characters, recommended; longer text is
# accepted and cut with "See more". adforge takes the recommendations as limits, as tasks/channels.py does for
# facebook: an ad whose text is cut is not the ad that was approved. Images 1:1 (both feeds; 1.91:1 also on
# Facebook's), JPG or PNG.
_META = (
    Field("primary_text", 125),
    Field("headline", 40),
    Field("description", 30, min_count=0),
    Field("cta", 20, choices=META_CTA_TYPES),
    Field("final_url", URL_MAX, url=True),
)
# LinkedIn single image ad (https://www.linkedin.com/help/lms/answer/a426534, "Single image ads advertising
# specifications"): introductory text "up to 150 characters ... to avoid truncation (600 character maximum)",
# headline "up to 70 characters to avoid truncation (200 max characters)", optional CTA from LinkedIn's list,
# destination URL with http:// or https:// of up to 2,000 characters; images 1.91:1 (at least 640 wide) or
# 1:1 (at least 360x360), JPG, PNG or GIF. (A newer version of the page allows 3,000 characters of
# introductory text; the stricter 600 is kept.)
_LINKEDIN = (
    Field("intro_text", 600, advised_chars=150),
    Field("headline", 200, advised_chars=70),
    Field("cta", 20, min_count=0, choices=LINKEDIN_CTA_LABELS),
    Field("final_url", URL_MAX, url=True),
)
# X promoted post with a website card: the post at most 280 weighted (x_count above), the card headline at
# most 70 characters; card image 1.91:1 (800x418) or 1:1 (800x800), PNG or JPEG (X Ads website card specs,
# https://business.x.com/en/help/campaign-setup/creative-ad-specifications).
_X = (
    Field("post", X_MAX, counting="x"),
    Field("card_headline", 70),
    Field("final_url", URL_MAX, url=True),
)
# Email is not an ad platform: the subject line's 60 and the body's 500 are adforge's own (tasks/channels.py),
# from inbox clients that cut subjects near 60; a preheader of up to 100 characters shows after the subject.
_EMAIL = (
    Field("subject", 60),
    Field("preheader", 100, min_count=0),
    Field("body", 500),
    Field("cta", 25),
    Field("final_url", URL_MAX, url=True),
)

PLATFORM_FORMATS: dict[str, tuple[Field, ...]] = {
    "google_search": _GOOGLE_SEARCH,
    "display": _GOOGLE_DISPLAY,
    "facebook": _META,
    "instagram": _META,
    "linkedin": _LINKEDIN,
    "x": _X,
    "email": _EMAIL,
}

_LANDSCAPE = 1.91
IMAGE_SLOTS: dict[str, tuple[ImageSlot, ...]] = {
    "google_search": (),
    "display": (
        ImageSlot("marketing image", (ImageSpec("1.91:1", _LANDSCAPE, 600, 314),)),
        ImageSlot("square marketing image", (ImageSpec("1:1", 1.0, 300, 300),)),
    ),
    # Meta's minimum for feed images is 600 pixels wide.
    "facebook": (
        ImageSlot("image", (ImageSpec("1:1", 1.0, 600, 600), ImageSpec("1.91:1", _LANDSCAPE, 600, 314))),
    ),
    "instagram": (ImageSlot("image", (ImageSpec("1:1", 1.0, 600, 600),)),),
    # LinkedIn's landscape minimum is 640 wide; at 1.91:1 that is 335 high.
    "linkedin": (
        ImageSlot("image", (ImageSpec("1.91:1", _LANDSCAPE, 640, 335), ImageSpec("1:1", 1.0, 360, 360))),
    ),
    "x": (
        ImageSlot("card image", (ImageSpec("1.91:1", _LANDSCAPE, 800, 418), ImageSpec("1:1", 1.0, 800, 800))),
    ),
    "email": (),
}
# Pillow's format names.
IMAGE_FORMATS: dict[str, frozenset[str]] = {
    "google_search": frozenset(),
    "display": frozenset({"GIF", "JPEG", "PNG"}),
    "facebook": frozenset({"JPEG", "PNG"}),
    "instagram": frozenset({"JPEG", "PNG"}),
    "linkedin": frozenset({"GIF", "JPEG", "PNG"}),
    "x": frozenset({"JPEG", "PNG"}),
    "email": frozenset(),
}


# --- Rules ---------------------------------------------------------------------------------------------


def _fields(channel: str) -> tuple[Field, ...]:
    if channel not in PLATFORM_FORMATS:
        raise ValueError(f"unknown channel {channel!r} (known: {', '.join(PLATFORM_FORMATS)})")
    return PLATFORM_FORMATS[channel]


def field_spec(channel: str, name: str) -> Field:
    """One field of the channel's platform format."""
    found = [f for f in _fields(channel) if f.name == name]
    if not found:
        raise ValueError(f"{name!r} is not a field of {channel} ads")
    return found[0]


def _key(text: str) -> str:
    """Text compared for duplicates: case and runs of spaces ignored."""
    return " ".join(text.split()).casefold()


def _label(field: Field, index: int) -> str:
    return f"{field.name}[{index}]" if field.max_count > 1 else field.name


def _is_http_url(text: str) -> bool:
    try:
        parts = urlsplit(text)
    except ValueError:  # an invalid IPv6 netloc
        return False
    return (
        parts.scheme.lower() in ("http", "https")
        and bool(parts.hostname)
        and not any(c.isspace() for c in text)
    )


def value_problems(channel: str, field: Field, index: int, text: str) -> list[str]:
    """What is wrong with one value of a field."""
    label = _label(field, index)
    if not text.strip():
        return [f"{label}: empty"]
    out = []
    length = count(text, field.counting)
    if length > field.max_chars:
        how = "" if field.counting == "chars" else f" as {channel} counts them"
        out.append(f"{label}: {length} characters{how}, the limit is {field.max_chars}")
    if field.choices and text not in field.choices:
        out.append(f"{label}: {text!r} is not one of {channel}'s call-to-action types")
    if field.url and not _is_http_url(text):
        out.append(f"{label}: {text!r} is not an http(s) URL")
    return out


def _is_texts(values: object) -> TypeGuard[Sequence[str]]:
    return (
        not isinstance(values, str)
        and isinstance(values, Sequence)
        and all(isinstance(v, str) for v in values)
    )


def _texts(assets: Mapping[str, object], name: str) -> list[str]:
    """A field's values, or none where they are not a list of texts (a problem reported on its own)."""
    values = assets.get(name, [])
    return list(values) if _is_texts(values) else []


def _field_problems(channel: str, field: Field, values: object) -> list[str]:
    """What is wrong with a field's list of values: its type, its count, each value, duplicates."""
    if not _is_texts(values):
        return [f"{field.name}: not a list of texts"]
    out = []
    if not field.min_count <= len(values) <= field.max_count:
        wanted = (
            str(field.min_count)
            if field.min_count == field.max_count
            else f"{field.min_count} to {field.max_count}"
        )
        out.append(f"{field.name}: {len(values)} given, {channel} takes {wanted}")
    for index, text in enumerate(values, 1):
        out += value_problems(channel, field, index, text)
    seen: set[str] = set()
    for text in values:
        key = _key(text)
        if key and key in seen:
            out.append(f"{field.name}: {text!r} repeats another value (case and spaces ignored)")
        seen.add(key)
    return out


def problems(channel: str, assets: Mapping[str, Sequence[str]]) -> list[str]:
    """Every rule of the channel's platform format the assets break, one line each; empty when the ad can be
    exported. Unknown fields are problems too (a misspelt field would otherwise be dropped silently)."""
    fields = _fields(channel)
    names = {f.name for f in fields}
    out = [f"{name}: not a field of {channel} ads" for name in assets if name not in names]
    for field in fields:
        out += _field_problems(channel, field, assets.get(field.name, []))
    has = {name: any(t.strip() for t in _texts(assets, name)) for name in ("path1", "path2")}
    if "path2" in names and has["path2"] and not has["path1"]:
        out.append("path2: set without path1")
    return out


def advice(channel: str, assets: Mapping[str, Sequence[str]]) -> list[str]:
    """What the platform recommends and the assets do not follow; the ad is still accepted."""
    out = []
    for field in _fields(channel):
        if field.advised_chars is None:
            continue
        for index, text in enumerate(_texts(assets, field.name), 1):
            length = count(text, field.counting)
            if length > field.advised_chars:
                out.append(
                    f"{_label(field, index)}: {length} characters; {channel} shows about "
                    f"{field.advised_chars} before cutting"
                )
    if channel == "google_search":
        distinct = len({_key(h) for h in _texts(assets, "headlines") if h.strip()})
        if distinct < 5:
            out.append(f"headlines: {distinct} distinct; Google advises at least 5 distinct headlines")
    return out


def choose_images(channel: str, images: Sequence[ImageInfo]) -> list[int | None]:
    """For each of the channel's image slots, the index of the image that fills it (None if none fits); an
    image fills one slot at most, and a slot prefers its first spec."""
    _fields(channel)
    used: set[int] = set()
    chosen: list[int | None] = []
    for slot in IMAGE_SLOTS[channel]:
        pick = next(
            (
                i
                for spec in slot.specs
                for i, (width, height, fmt) in enumerate(images)
                if i not in used and fmt in IMAGE_FORMATS[channel] and spec.fits(width, height)
            ),
            None,
        )
        if pick is not None:
            used.add(pick)
        chosen.append(pick)
    return chosen


def image_problems(channel: str, images: Sequence[ImageInfo]) -> list[str]:
    """The channel's image slots that no image fills, each with the shapes and formats it accepts."""
    out = []
    for slot, pick in zip(IMAGE_SLOTS[channel], choose_images(channel, images), strict=True):
        if pick is None:
            shapes = " or ".join(f"{s.label} of at least {s.min_width}x{s.min_height}" for s in slot.specs)
            formats = "/".join(sorted(IMAGE_FORMATS[channel]))
            out.append(f"{slot.name}: no {formats} image {shapes}")
    return out

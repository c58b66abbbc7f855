"""Locales as briefs name them (`en-US`, `es-MX`, `ja-JP`): checked and written one way, with the language
the rules read the copy in and the words the prompt names the market with (ISO 639 and 3166, by pycountry)."""

from __future__ import annotations

import re
from functools import cache

import pycountry

# language[-Script][-REGION]: en, es-MX, zh-Hant-TW, es-419 (a UN M.49 region: Latin America)
_LOCALE = re.compile(r"([a-z]{2,3})(?:[-_]([a-z]{4}))?(?:[-_]([a-z]{2}|\d{3}))?", re.IGNORECASE)


class LocaleError(ValueError):
    """Not a locale adforge can read; the message says why."""


def normalise_locale(text: str) -> str:
    """The locale in its usual spelling (`es_mx` → `es-MX`), or LocaleError."""
    match = _LOCALE.fullmatch(text.strip())
    if not match:
        raise LocaleError(f"'{text}' is not a locale such as en-US or es-MX")
    language, script, region = match.groups()
    if _language_name(language.lower()) is None:
        raise LocaleError(f"'{text}': unknown language '{language}'")
    if region and region.isalpha() and pycountry.countries.get(alpha_2=region.upper()) is None:
        raise LocaleError(f"'{text}': unknown region '{region}'")
    parts = [language.lower(), script and script.title(), region and region.upper()]
    return "-".join(p for p in parts if p)


def language_of(locale: str) -> str:
    """The language code the language rule reads copy in: `es` for `es-MX`."""
    return locale.split("-")[0]


def describe_locale(locale: str) -> str:
    """The locale in words for the prompt: `Spanish, Mexico`."""
    language, *rest = locale.split("-")
    region = rest[-1] if rest and (rest[-1].isupper() or rest[-1].isdigit()) else ""
    country = pycountry.countries.get(alpha_2=region) if region.isalpha() else None
    name = _language_name(language) or language
    return f"{name}, {country.name}" if country else name


@cache
def _language_name(code: str) -> str | None:
    key = "alpha_2" if len(code) == 2 else "alpha_3"
    found = pycountry.languages.get(**{key: code})
    return found.name if found else None

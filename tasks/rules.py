"""The rules every stored copy passes: channel limits, brand rules, language and distinct variants.

Some rules are built into the output grammar (the body starts with the brand, the CTA is one of the
platform buttons, a field may run one character past its limit so that an overflow shows instead of a
silent cut); every rule is then checked on the parsed output, and a copy that breaks one is sampled
again with a new seed."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import cache
from typing import Any

import py3langid as langid
from pydantic import ValidationError

from tasks.channels import CHANNELS, CTA_BUTTONS, CopyFields, copy_model, rule_violations

FIELDS = ("headline", "body", "cta")
MIN_LANGUAGE_LETTERS = 20  # shorter text is too little to tell its language
# Log-probability by which another language may beat the brief's: English sample copy came within
# 3.4 of the top language when it was not the top itself; German text scored 60 above English.
LANGUAGE_MARGIN = 10.0


@dataclass(frozen=True)
class BrandRules:
    """What a brief asks of its copy, besides the channel's limits."""

    brand: str
    banned_words: tuple[str, ...] = ()
    language: str = "en"


def grammar_schema(channel: str, brand: str) -> dict[str, Any]:
    """JSON schema for structured output: the channel's fields, each allowed one character too many."""
    schema = json.loads(_model_schema(channel))
    props = schema["properties"]
    for name in FIELDS:
        props[name]["maxLength"] += 1
    props["cta"] = {"type": "string", "enum": list(CTA_BUTTONS), "description": "call to action button"}
    if _usable_in_pattern(brand):
        room = props["body"]["maxLength"] - len(brand)
        props["body"] = {
            "type": "string",
            "description": props["body"]["description"],
            "pattern": f'^{_literal(brand)}[^"\\\\\\n]{{3,{room}}}$',
        }
    schema["additionalProperties"] = False
    return schema


@cache
def _model_schema(channel: str) -> str:
    return json.dumps(copy_model(channel).model_json_schema())


def brand_in_grammar(brand: str) -> bool:
    """Whether the grammar makes the body start with the brand (else it is only checked)."""
    return _usable_in_pattern(brand)


def _usable_in_pattern(brand: str) -> bool:
    return bool(brand) and brand.isprintable() and not set(brand) & {'"', "\\"} and len(brand) <= 60


def _literal(text: str) -> str:
    """A regex matching text exactly: letters, digits and spaces as they are, the rest as code points."""
    return "".join(c if c.isalnum() or c == " " else f"\\x{{{ord(c):x}}}" for c in text)


def check_copy(
    fields: dict[str, Any], channel: str, rules: BrandRules, languages: frozenset[str],
    siblings: list[str], max_similarity: float,
) -> tuple[dict[str, str], str, float | None]:  # fmt: skip
    """Every rule's outcome ('passed', 'skipped: why' or 'failed: why'), the first failure if any, and
    the highest similarity to the siblings."""
    score = max_sibling_similarity(fields, siblings)
    checks = {
        "channel_limits": _limits(fields, channel),
        "brand_named": "passed" if brand_present(fields, rules.brand) else f"failed: {rules.brand} not named",
        "banned_words": _banned(fields, rules.banned_words),
        "language": _language(fields, rules.language, languages),
        "distinct": _distinct(score, max_similarity),
    }
    failed = [
        f"{name}: {outcome[len('failed: ') :]}"
        for name, outcome in checks.items()
        if outcome.startswith("failed")
    ]
    return checks, failed[0] if failed else "", score


def _limits(fields: dict[str, Any], channel: str) -> str:
    try:
        copy = copy_model(channel).model_validate(fields)
    except ValidationError as e:
        first = e.errors()[0]
        return f"failed: {'.'.join(map(str, first['loc']))}: {first['msg']}"
    problems = rule_violations(channel, copy)
    return f"failed: {'; '.join(problems)}" if problems else "passed"


def _banned(fields: dict[str, Any], banned: tuple[str, ...]) -> str:
    if not banned:
        return "skipped: no banned words"
    used = banned_words_used(fields, list(banned))
    return f"failed: uses {', '.join(used)}" if used else "passed"


def _language(fields: dict[str, Any], language: str, languages: frozenset[str]) -> str:
    if "any" not in languages and language not in languages:
        return f"skipped: the text model writes {', '.join(sorted(languages))}, not {language}"
    text = f"{fields['headline']}. {fields['body']}"
    if sum(c.isalpha() for c in text) < MIN_LANGUAGE_LETTERS:
        return "skipped: too short to tell"
    scores = dict(langid.rank(text))
    top = max(scores, key=lambda lang: scores[lang])
    if scores[top] - scores.get(language, float("-inf")) <= LANGUAGE_MARGIN:
        return "passed"
    return f"failed: reads as {top}, the brief asks for {language}"


def _distinct(score: float | None, max_similarity: float) -> str:
    if score is None:
        return "skipped: first variant"
    return f"failed: {score:.2f} similar to another variant" if score > max_similarity else "passed"


def copy_text(fields: dict[str, Any]) -> str:
    """The text compared between variants: headline, body and CTA."""
    return " ".join(fields[f] for f in FIELDS)


def max_sibling_similarity(fields: dict[str, Any], siblings: list[str]) -> float | None:
    """Highest similarity to the other accepted variants of the same brief and channel."""
    return max((similarity(copy_text(fields), s) for s in siblings), default=None)


def within_limits(copy: dict[str, Any]) -> bool:
    """The copy fits its channel: field lengths, hashtags, line breaks."""
    return _limits({k: copy[k] for k in CopyFields.model_fields}, copy["channel"]) == "passed"


def cut_at_limit(copy: dict[str, Any]) -> list[str]:
    """Fields that end exactly at their limit on a letter or digit: likely cut off mid-word."""
    spec = CHANNELS[copy["channel"]]
    limits = {"headline": spec.headline_max, "body": spec.body_max, "cta": spec.cta_max}
    return [f for f, limit in limits.items() if len(copy[f]) == limit and copy[f][-1].isalnum()]


def banned_words_used(copy: dict[str, Any], banned: list[str]) -> list[str]:
    """Banned words that appear as whole words (any case) in the headline, body or CTA."""
    text = copy_text(copy)
    return [w for w in banned if re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text, re.IGNORECASE)]


def brand_present(copy: dict[str, Any], brand: str) -> bool:
    return brand.casefold() in f"{copy['headline']} {copy['body']}".casefold()


def similarity(a: str, b: str) -> float:
    """0 (nothing shared) to 1 (the same text), ignoring case, punctuation and spacing."""
    return SequenceMatcher(None, _normalise(a), _normalise(b)).ratio()


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())

"""How good the stored copy is: channel limits, brand rules and how different the variants are.

These checks measure; they do not yet decide which outputs are accepted."""

from __future__ import annotations

import re
from collections import defaultdict
from difflib import SequenceMatcher
from itertools import combinations
from statistics import mean
from typing import Any

from pydantic import ValidationError

from tasks.channels import CHANNELS, copy_model, rule_violations

FIELDS = ("headline", "body", "cta")


def within_limits(copy: dict[str, Any]) -> bool:
    """The copy fits its channel: field lengths, hashtags, line breaks."""
    try:
        fields = copy_model(copy["channel"]).model_validate({k: copy[k] for k in (*FIELDS, "image_prompt")})
    except ValidationError:
        return False
    return not rule_violations(copy["channel"], fields)


def cut_at_limit(copy: dict[str, Any]) -> list[str]:
    """Fields that end exactly at their limit on a letter or digit: most likely cut off mid-word."""
    spec = CHANNELS[copy["channel"]]
    limits = {"headline": spec.headline_max, "body": spec.body_max, "cta": spec.cta_max}
    return [f for f, limit in limits.items() if len(copy[f]) == limit and copy[f][-1].isalnum()]


def banned_words_used(copy: dict[str, Any], banned: list[str]) -> list[str]:
    """Banned words that appear as whole words (any case) in the headline, body or CTA."""
    text = " ".join(copy[f] for f in FIELDS)
    return [w for w in banned if re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text, re.IGNORECASE)]


def brand_present(copy: dict[str, Any], brand: str) -> bool:
    return brand.casefold() in f"{copy['headline']} {copy['body']}".casefold()


def similarity(a: str, b: str) -> float:
    """0 (nothing shared) to 1 (the same text), ignoring case, punctuation and spacing."""
    return SequenceMatcher(None, _normalise(a), _normalise(b)).ratio()


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


def quality_report(copies: list[dict[str, Any]], failures: list[dict[str, Any]]) -> dict[str, Any]:
    """Measures over copies (with their brief's brand and banned_words) and copy failures."""
    n = len(copies)
    if not n:
        return {"copies": 0, "failures": len(failures)}
    groups: dict[tuple, list[str]] = defaultdict(list)
    for c in copies:
        groups[(c["brief_id"], c["brief_hash"], c["channel"])].append(" ".join(c[f] for f in FIELDS))
    pairs = [similarity(a, b) for texts in groups.values() for a, b in combinations(texts, 2)]
    brand_ok = [
        c for c in copies if brand_present(c, c["brand"]) and not banned_words_used(c, c["banned_words"])
    ]
    reasons: dict[str, int] = defaultdict(int)
    for f in failures:
        reasons[f["reason"].split(":")[0]] += 1
    return {
        "copies": n,
        "within channel limits (%)": round(100 * sum(map(within_limits, copies)) / n, 1),
        "a field cut at its limit (%)": round(100 * sum(bool(cut_at_limit(c)) for c in copies) / n, 1),
        "brand present, no banned word (%)": round(100 * len(brand_ok) / n, 1),
        "banned word used (%)": round(
            100 * sum(bool(banned_words_used(c, c["banned_words"])) for c in copies) / n, 1
        ),
        "mean pairwise variant similarity": round(mean(pairs), 3) if pairs else None,
        "max pairwise variant similarity": round(max(pairs), 3) if pairs else None,
        "retries per accepted copy": round(mean(c["attempts"] - 1 for c in copies), 2),
        "copy failures": len(failures),
        **{f"failures: {reason}": count for reason, count in sorted(reasons.items(), key=lambda r: -r[1])},
    }

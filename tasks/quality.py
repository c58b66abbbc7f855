"""How good the stored copy is: channel limits, brand rules and how different the variants are.

The same rules decide which outputs are stored (tasks.rules); this report measures them again over
what was stored, so it also covers copy written under older rules or settings."""

from __future__ import annotations

import json
from collections import defaultdict
from itertools import combinations
from statistics import mean
from typing import Any

from adforge.tasks.rules import (
    banned_words_used,
    brand_present,
    copy_text,
    cut_at_limit,
    similarity,
    within_limits,
)


def quality_report(copies: list[dict[str, Any]], failures: list[dict[str, Any]]) -> dict[str, Any]:
    """Measures over copies (with their brief's brand and banned_words) and copy failures."""
    n = len(copies)
    if not n:
        return {"copies": 0, "failures": len(failures)}
    groups: dict[tuple, list[str]] = defaultdict(list)
    for c in copies:
        groups[(c["brief_id"], c["brief_hash"], c["channel"])].append(copy_text(c))
    pairs = [similarity(a, b) for texts in groups.values() for a, b in combinations(texts, 2)]
    brand_ok = [
        c for c in copies if brand_present(c, c["brand"]) and not banned_words_used(c, c["banned_words"])
    ]
    reasons: dict[str, int] = defaultdict(int)
    for f in failures:
        reasons[f["reason"].split(":")[0]] += 1
    refused: dict[str, int] = defaultdict(int)
    for c in copies:
        for reason in json.loads(c.get("checks") or "{}").get("refused_samples", []):
            refused[reason.split(":")[0]] += 1
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
        **{f"retries for: {reason}": count for reason, count in sorted(refused.items(), key=lambda r: -r[1])},
    }

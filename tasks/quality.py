"""How good the stored copy is: every rule a copy must pass, its scores, and how different the variants are.

The same rules decide which outputs are stored (tasks.rules); this report measures them again over
what was stored, so it also covers copy written under older rules or settings."""

from __future__ import annotations

import json
from collections import defaultdict
from itertools import combinations
from statistics import mean
from typing import Any

from adforge.tasks.domain import brand_rules
from adforge.tasks.rules import FIELDS, check_copy, copy_text, cut_at_limit, similarity

# Rules of check_copy measured again, each as the share of copies that break it (language and distinct
# are left out: they depend on the run's settings and on which variants were stored first).
BROKEN = {
    "brand not named (%)": "brand_named",
    "below channel minimum (%)": "min_length",
    "unsupported claim (%)": "claims",
    "echoes the prompt (%)": "no_echo",
    "headline like body (%)": "headline_body_differ",
    "image prompt not a picture (%)": "image_prompt",
}
# The brief's columns a copy row needs (besides the copy's own and its diversity).
BRIEF_COLUMNS = ("brand", "banned_words", "language", "product", "audience", "key_message", "tone", "claims")
COUNTS = ("failures: ", "retries for: ")  # measures that are counts of reasons: absent means 0
NOT_SCORED = "n/a"


def quality_report(copies: list[dict[str, Any]], failures: list[dict[str, Any]]) -> dict[str, Any]:
    """Measures over copies (each with its brief's fields and its diversity) and copy failures."""
    n = len(copies)
    checks = [rule_outcomes(c) for c in copies]
    broken = {measure: _share([_failed(c, rule) for c in checks], n) for measure, rule in BROKEN.items()}
    pairs, across = _similarities(copies)
    return {
        "copies": n,
        "within channel limits (%)": _share([c["channel_limits"] == "passed" for c in checks], n),
        "a field cut at its limit (%)": _share([bool(cut_at_limit(c)) for c in copies], n),
        "brand present, no banned word (%)": _share(
            [not _failed(c, "brand_named") and not _failed(c, "banned_words") for c in checks], n
        ),
        "banned word used (%)": _share([_failed(c, "banned_words") for c in checks], n),
        **broken,
        "mean pairwise variant similarity": round(mean(pairs), 3) if pairs else None,
        "max pairwise variant similarity": round(max(pairs), 3) if pairs else None,
        "mean cross-segment similarity": round(mean(across), 3) if across else None,
        "max cross-segment similarity": round(max(across), 3) if across else None,
        "mean relevance": _mean([c.get("relevance") for c in copies], 3),
        "mean diversity": _mean([c.get("diversity") for c in copies], 3),
        "mean readability": _mean([c.get("readability") for c in copies], 1),
        "retries per accepted copy": _mean([c["attempts"] - 1 for c in copies], 2),
        "candidates per copy": _mean([c.get("candidates") for c in copies], 2),
        "output tokens per copy": _mean([c.get("output_tokens") for c in copies], 1),
        "copy failures": len(failures),
        **_by_rule("failures: ", [f["reason"] for f in failures]),
        **_by_rule("retries for: ", [r for c in copies for r in _refused(c)]),
    }


def _similarities(copies: list[dict[str, Any]]) -> tuple[list[float], list[float]]:
    """Text similarity of every pair of variants (one brief, segment, locale and channel), and of every pair
    of ads of one brief, locale and channel written for different segments."""
    ads: dict[tuple, dict[str | None, list[str]]] = defaultdict(lambda: defaultdict(list))
    for c in copies:
        key = (c["brief_id"], c["brief_hash"], c.get("locale"), c["channel"])
        ads[key][c.get("segment_id")].append(copy_text(c))
    variants = [similarity(a, b) for segments in ads.values() for texts in segments.values()
                for a, b in combinations(texts, 2)]  # fmt: skip
    across = [similarity(a, b) for segments in ads.values()
              for one, other in combinations(segments.values(), 2) for a in one for b in other]  # fmt: skip
    return variants, across


def rule_outcomes(copy: dict[str, Any]) -> dict[str, str]:
    """Each rule's outcome for a stored copy, checked again with its brief's rules and its prompt."""
    fields = {name: copy[name] for name in (*FIELDS, "image_prompt")}
    outcomes, _, _ = check_copy(fields, copy["channel"], brand_rules(copy), frozenset(), [], 1.0, None,
                                prompt_text(copy.get("prompt")))  # fmt: skip
    return outcomes


def prompt_text(prompt: str | None) -> str:
    """The text of a stored prompt (JSON of chat messages); '' if none was stored."""
    return "\n".join(m["content"] for m in json.loads(prompt)) if prompt else ""


def compare(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any, Any]]:
    """Every measure of two reports: (measure, a's value, b's value, b − a where both are numbers)."""
    rows = []
    for measure in dict.fromkeys([*a, *b]):
        absent: Any = 0 if measure.startswith(COUNTS) else None
        x, y = a.get(measure, absent), b.get(measure, absent)
        rows.append((measure, x, y, y - x if _number(x) and _number(y) else None))
    return rows


def shown(value: Any) -> str:
    """A measure's value as printed."""
    return NOT_SCORED if value is None else str(value)


def change(value: Any) -> str:
    """A difference as printed: signed, '0' for none, blank when there is none to take."""
    if value is None:
        return ""
    if value == 0:
        return "0"
    return f"{value:+d}" if isinstance(value, int) else f"{round(value, 4):+}"


def table(rows: list[list[str]]) -> list[str]:
    """Plain-text lines of left-aligned columns two spaces apart."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def _failed(outcomes: dict[str, str], rule: str) -> bool:
    return outcomes[rule].startswith("failed")


def _share(flags: list[bool], n: int) -> float | None:
    return round(100 * sum(flags) / n, 1) if n else None


def _mean(values: list[float | None], digits: int) -> float | None:
    known = [v for v in values if v is not None]
    return round(float(mean(known)), digits) if known else None


def _refused(copy: dict[str, Any]) -> list[str]:
    return json.loads(copy.get("checks") or "{}").get("refused_samples", [])


def _by_rule(prefix: str, reasons: list[str]) -> dict[str, int]:
    """Reasons counted by their rule (the text before the first colon), most frequent first."""
    counts: dict[str, int] = defaultdict(int)
    for reason in reasons:
        counts[reason.split(":")[0]] += 1
    return {f"{prefix}{rule}": count for rule, count in sorted(counts.items(), key=lambda r: -r[1])}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)

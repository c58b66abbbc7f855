"""What a copy may say: claims its brief supports, and nothing of the prompt's own instructions.

A claim is a figure (number, price, percentage, date) or an absolute word ("free", "guaranteed", "#1",
...). It is supported when the brief's product, audience, key message or listed claims contain it;
anything else is how generated ads come to promise what a brand cannot back.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache

# Absolute claims a brand's legal team asks evidence for; matched as whole words, in any case.
ABSOLUTE = ("guaranteed", "guarantee", "free", "best", "#1", "number one", "no. 1", "cheapest", "fastest",
            "lowest", "risk-free", "proven", "clinically", "unlimited", "forever", "lifetime",
            "award-winning", "certified", "official", "cure", "cures", "world's", "leading")  # fmt: skip
MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)  # fmt: skip  (May is a verb)
# A figure: digits with their separators, and what makes them a price, share or multiple.
_FIGURE = re.compile(r"[$€£¥]?\d+(?:[.,:/]\d+)*\s?(?:%|x\b|percent\b)?", re.IGNORECASE)
_DIGITS = re.compile(r"\d+")
_WORD = re.compile(r"\w+")
_LABEL = re.compile(
    r"(?<!\w)(?:brand|product|audience|key message|tone|language|channel|limits|headline|body|cta|"
    r"image_prompt|json)\s*:", re.IGNORECASE,
)  # fmt: skip
ECHO_WORDS = 4  # a run of this many words from the prompt's instructions is an echo


def unsupported_claims(text: str, facts: str) -> list[str]:
    """The claims in text that facts do not contain, in order, each once."""
    known = set(_DIGITS.findall(_plain_number(facts)))
    found = [
        m.group().strip()
        for m in _FIGURE.finditer(text)
        if not set(_DIGITS.findall(_plain_number(m.group()))) <= known
    ]
    backed = _words_in(facts)
    found += [w for w in _words_in(text) if w not in backed]
    return list(dict.fromkeys(found))


@lru_cache(maxsize=4096)  # a brief's facts serve every candidate and value of its jobs
def _words_in(text: str) -> tuple[str, ...]:
    """The absolute words and months text has as whole words, in the order of ABSOLUTE and MONTHS."""
    folded = text.casefold()  # a word not in it at all needs no pattern: most words, most texts
    return tuple(w for w in (*ABSOLUTE, *MONTHS) if w in folded and _word_pattern(w).search(text))


def _plain_number(text: str) -> str:
    """Thousands separators dropped, so that '10,000' in a copy is the brief's '10000'."""
    return re.sub(r"(?<=\d)[,.'\u202f](?=\d{3}\b)", "", text)


@cache
def _word_pattern(word: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w){re.escape(word)}(?!\w)", re.IGNORECASE)


def echo(text: str, prompt: str, facts: str) -> str:
    """What of the prompt's instructions text repeats ('' if nothing): a field label, or a run of
    ECHO_WORDS words the instructions contain and the brief's own text (facts) does not."""
    label = _LABEL.search(text)
    if label:
        return label.group()
    instructions = _instructions(prompt, facts)
    words = _WORD.findall(text.casefold())
    for i in range(len(words) - ECHO_WORDS + 1):
        run = tuple(words[i : i + ECHO_WORDS])
        if run in instructions:
            return " ".join(run)
    return ""


@lru_cache(maxsize=1024)  # one prompt's serve every candidate, field and value of its job
def _instructions(prompt: str, facts: str) -> frozenset[tuple[str, ...]]:
    return _runs(prompt) - _runs(facts)


@lru_cache(maxsize=1024)
def _runs(text: str) -> frozenset[tuple[str, ...]]:
    words = _WORD.findall(text.casefold())
    return frozenset(tuple(words[i : i + ECHO_WORDS]) for i in range(len(words) - ECHO_WORDS + 1))

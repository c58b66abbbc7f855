"""The rules every stored copy passes: channel limits, brand rules, claims the brief supports, no echo of
the prompt, fields long enough and saying different things, a picture to draw, language, distinct variants.

Some rules are built into the output grammar (the body starts with the brand, the CTA is one of the
platform buttons, a field may run one character past its limit so that an overflow shows instead of a
silent cut); every rule is then checked on the parsed output, and a copy that breaks one is sampled
again with a new seed."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from itertools import islice
from typing import Any

import numpy as np
import py3langid as langid
from py3langid.langid import RAW_FLOOR, _get_identifier
from pydantic import ValidationError
from rapidfuzz import process
from rapidfuzz.distance import Indel

from adforge.tasks.ad_sets import grammar_properties
from adforge.tasks.channels import CHANNELS, CTA_BUTTONS, CopyFields, copy_model, rule_violations
from adforge.tasks.claims import echo, unsupported_claims
from adforge.tasks.domain import BrandRules

FIELDS = ("headline", "body", "cta")
MIN_LANGUAGE_LETTERS = 20  # shorter text is too little to tell its language
MAX_FIELD_SIMILARITY = 0.8  # a headline and body more alike than this say one thing twice
MAX_PICTURE_SIMILARITY = 0.6  # an image prompt this alike to the ad's text is the text, not a picture
MIN_PICTURE_WORDS = 3
# Log-probability by which another language may beat the brief's: English sample copy came within
# 3.4 of the top language when it was not the top itself; German text scored 60 above English.
LANGUAGE_MARGIN = 10.0
_WORD = re.compile(r"\w+")


# Every request of a brief and channel asks for the same schema: it is built once and shared, so callers
# only read it (vLLM does: it serialises the dict, and deep-copies before adjusting it).
@lru_cache(maxsize=4096)
def grammar_schema(channel: str, brand: str, language: str = "en") -> dict[str, Any]:
    """JSON schema for structured output: the channel's fields, each allowed one character too many."""
    schema = json.loads(_model_schema(channel))
    props = schema["properties"]
    for name in FIELDS:
        props[name]["maxLength"] += 1
    spec = CHANNELS[channel]
    props["headline"]["minLength"] = spec.headline_min
    props["body"]["minLength"] = spec.body_min
    props["cta"] = {"type": "string", "enum": list(CTA_BUTTONS), "description": "call to action button"}
    if _usable_in_pattern(brand):
        room = props["body"]["maxLength"] - len(brand)
        props["body"] = {
            "type": "string",
            "description": props["body"]["description"],
            "pattern": f'^{_literal(brand)}[^"\\\\\\n{_after_brand(brand, language)}]'
            f"{{{max(spec.body_min - len(brand), 3)},{room}}}$",
        }
    extra = grammar_properties(channel)
    schema["properties"] = props | extra
    schema["required"] = [*schema["required"], *extra]
    schema["additionalProperties"] = False
    return schema


@cache
def _model_schema(channel: str) -> str:
    return json.dumps(copy_model(channel).model_json_schema())


# Languages written in a script other than Latin (ISO 639-1).
NON_LATIN = frozenset({"am", "ar", "be", "bg", "bn", "el", "fa", "gu", "he", "hi", "hy", "ja", "ka", "kk",
                       "km", "kn", "ko", "ky", "lo", "mk", "ml", "mn", "mr", "my", "ne", "or", "pa", "ps",
                       "ru", "si", "sr", "ta", "te", "th", "uk", "ur", "yi", "zh"})  # fmt: skip


# Blocks of scripts other than Latin in the Basic Multilingual Plane, as regex class ranges: Greek to
# Mongolian, Greek Extended, CJK (radicals to Yi), more Indic and Hangul, CJK compatibility, Hebrew and
# Arabic presentation forms, half-width kana and Hangul.
_OTHER_SCRIPTS = [(0x370, 0x1DFF), (0x1F00, 0x1FFF), (0x2E80, 0xA6FF), (0xA800, 0xABFF), (0xAC00, 0xD7FF),
                  (0xF900, 0xFAFF), (0xFB1D, 0xFDFF), (0xFE70, 0xFEFC), (0xFF66, 0xFFDC)]  # fmt: skip


def _after_brand(brand: str, language: str) -> str:
    """Ranges the body may not use after the brand (for a regex class): where the copy is asked in a
    Latin-script language and the brand is written in another script, every other script; a small model
    that has just written a script goes on in it (or in another) unless the grammar stops it."""
    if language in NON_LATIN or not any(lo <= ord(c) <= hi for c in brand for lo, hi in _OTHER_SCRIPTS):
        return ""
    return "".join(f"\\x{{{lo:x}}}-\\x{{{hi:x}}}" for lo, hi in _OTHER_SCRIPTS)


def brand_in_grammar(brand: str) -> bool:
    """Whether the grammar writes the brand into the body (else it is only checked)."""
    return _usable_in_pattern(brand)


def _usable_in_pattern(brand: str) -> bool:
    return bool(brand) and brand.isprintable() and not set(brand) & {'"', "\\"} and len(brand) <= 60


def _literal(text: str) -> str:
    """A regex matching text exactly: letters, digits and spaces as they are, the rest as code points."""
    return "".join(c if c.isalnum() or c == " " else f"\\x{{{ord(c):x}}}" for c in text)


def check_copy(
    fields: dict[str, Any], channel: str, rules: BrandRules, languages: frozenset[str],
    siblings: list[str], max_similarity: float, language: tuple[str, float] | None = None, prompt: str = "",
) -> tuple[dict[str, str], str, float | None]:  # fmt: skip
    """Every rule's outcome ('passed', 'skipped: why' or 'failed: why'), the first failure if any, and
    the highest similarity to the siblings; `language` is language_margins' result for this copy, if known;
    `prompt` is the text of the messages that asked for it."""
    score = max_sibling_similarity(fields, siblings)
    checks = {
        "channel_limits": _limits(fields, channel),
        "min_length": _min_length(fields, channel),
        "brand_named": "passed" if brand_present(fields, rules.brand) else f"failed: {rules.brand} not named",
        "banned_words": _banned(fields, rules.banned_words),
        "language": _language(fields, rules, languages, language),
        "claims": _claims(fields, rules),
        "no_echo": _no_echo(fields, prompt, rules),
        "headline_body_differ": _fields_differ(fields),
        "image_prompt": _picture(fields),
        "distinct": _distinct(score, max_similarity),
    }
    failed = [
        f"{name}: {outcome[len('failed: ') :]}"
        for name, outcome in checks.items()
        if outcome.startswith("failed")
    ]
    return checks, failed[0] if failed else "", score


def check_value(text: str, rules: BrandRules, languages: frozenset[str], prompt: str) -> str:
    """The first rule one value of a platform field breaks ('' if none): banned words, claims, echo of the
    prompt, language (limits are the platform's: tasks/ad_sets.py)."""
    fields = {"headline": text, "body": "", "cta": "", "image_prompt": ""}
    outcomes = {
        "banned_words": _banned(fields, rules.banned_words),
        "claims": _claims(fields, rules),
        "no_echo": _no_echo(fields, prompt, rules),
        "language": _language(fields, rules, languages, None),
    }
    return next(
        (f"{name}: {o[len('failed: ') :]}" for name, o in outcomes.items() if o.startswith("failed")), ""
    )


def _limits(fields: dict[str, Any], channel: str) -> str:
    try:
        copy = copy_model(channel).model_validate(fields)
    except ValidationError as e:
        first = e.errors()[0]
        return f"failed: {'.'.join(map(str, first['loc']))}: {first['msg']}"
    problems = rule_violations(channel, copy)
    return f"failed: {'; '.join(problems)}" if problems else "passed"


def _min_length(fields: dict[str, Any], channel: str) -> str:
    spec = CHANNELS[channel]
    for name, least in (("headline", spec.headline_min), ("body", spec.body_min)):
        if len(fields[name].strip()) < least:
            return f"failed: {name} of {len(fields[name].strip())} characters, {channel} asks for {least}"
    return "passed"


def _claims(fields: dict[str, Any], rules: BrandRules) -> str:
    claims = unsupported_claims(copy_text(fields), f"{rules.brand} {rules.facts}")
    return f"failed: {', '.join(repr(c) for c in claims)} not in the brief" if claims else "passed"


def _no_echo(fields: dict[str, Any], prompt: str, rules: BrandRules) -> str:
    if not prompt:
        return "skipped: prompt unknown"
    facts = f"{rules.brand} {rules.facts} {' '.join(rules.banned_words)}"
    for name in (*FIELDS, "image_prompt"):
        repeated = echo(fields[name], prompt, facts)
        if repeated:
            return f"failed: {name} repeats the instructions ('{repeated}')"
    return "passed"


def _fields_differ(fields: dict[str, Any]) -> str:
    score = similarity(fields["headline"], fields["body"])
    return f"failed: headline and body {score:.2f} alike" if score > MAX_FIELD_SIMILARITY else "passed"


def _picture(fields: dict[str, Any]) -> str:
    """The image prompt describes a picture: a few words, no hashtags or links, not the ad's own text."""
    prompt = fields["image_prompt"]
    if len(_WORD.findall(prompt)) < MIN_PICTURE_WORDS:
        return f"failed: fewer than {MIN_PICTURE_WORDS} words"
    if re.search(r"(?<!\w)#\w|https?://|www\.", prompt):
        return "failed: a hashtag or link is not a picture"
    for name in ("headline", "body"):
        score = similarity(prompt, fields[name])
        if score > MAX_PICTURE_SIMILARITY:
            return f"failed: {score:.2f} alike to the {name}"
    return "passed"


def _banned(fields: dict[str, Any], banned: tuple[str, ...]) -> str:
    if not banned:
        return "skipped: no banned words"
    used = banned_words_used(fields, list(banned))
    return f"failed: uses {', '.join(used)}" if used else "passed"


def _language(
    fields: dict[str, Any], rules: BrandRules, languages: frozenset[str], known: tuple[str, float] | None
) -> str:
    language = rules.language
    if "any" not in languages and language not in languages:
        return f"skipped: the text model writes {', '.join(sorted(languages))}, not {language}"
    text = language_text(fields, (rules.brand, rules.product))
    if not _enough_letters(text):
        return "skipped: too short to tell"
    top, margin = known or _rank_margin(text, language)
    if margin <= LANGUAGE_MARGIN:
        return "passed"
    return f"failed: reads as {top}, the brief asks for {language}"


def _rank_margin(text: str, language: str) -> tuple[str, float]:
    # One text: py3langid's own loop is faster than setting up the batch.
    scores = dict(langid.rank(text))
    top = max(scores, key=lambda lang: scores[lang])
    return top, scores[top] - scores.get(language, float("-inf"))


def _enough_letters(text: str) -> bool:
    """At least MIN_LANGUAGE_LETTERS letters (str.isalpha), reading no further than the last one needed."""
    return next(islice(filter(str.isalpha, text), MIN_LANGUAGE_LETTERS - 1, None), None) is not None


def language_text(fields: dict[str, Any], names: tuple[str, ...] = ()) -> str:
    """The text the language rule reads: headline and body without the brief's names (a brand in another
    script says nothing of the copy's language)."""
    text = f"{fields['headline']}. {fields['body']}"
    for name in filter(None, names):
        text = re.sub(re.escape(name), " ", text, flags=re.IGNORECASE)
    return text


def language_margins(texts: list[str], wanted: list[str]) -> list[tuple[str, float]]:
    """Per text, py3langid's top language and how far its score is above the wanted language's."""
    if len(wanted) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(wanted)} wanted languages")
    if not texts:
        return []
    model = _langid_model()
    scores = _langid_scores(model, [model.encode(t) for t in texts])
    rows = np.arange(len(texts))
    top = scores.argmax(axis=1)
    # A language the model does not know scores -inf, as in `scores.get(language, -inf)`.
    known = np.array([model.columns.get(lang, -1) for lang in wanted])
    floor = np.where(known >= 0, scores[rows, known], -np.inf)
    margins = scores[rows, top] - floor
    return [(model.classes[i], m) for i, m in zip(top.tolist(), margins.tolist(), strict=True)]


@dataclass(frozen=True)
class _LangidModel:
    """py3langid's model as numpy arrays: byte DFA (state → feature) and naive-Bayes tables."""

    encode: Any  # str → the UTF-8 bytes py3langid scores (NFC, all-caps lowered)
    nextmove: np.ndarray  # next state = nextmove[rowbase[state] + byte]
    rowbase: np.ndarray
    output: np.ndarray  # feature id a state emits, or -1
    ptc: np.ndarray  # feature × class log-probabilities
    pc: np.ndarray  # class priors
    classes: list[str]
    columns: dict[str, int]  # language → its first column, where rank() reads a repeated label's score
    aliases: list[tuple[int, int]]


@cache
def _langid_model() -> _LangidModel:
    # py3langid's own identifier, so that scores equal langid.rank() (nothing here restricts its languages).
    ident = _get_identifier()
    columns: dict[str, int] = {}
    for i, lang in enumerate(ident.nb_classes):
        columns.setdefault(lang, i)
    return _LangidModel(
        encode=ident._encode,
        nextmove=np.frombuffer(ident.tk_nextmove, dtype=f"u{ident.tk_nextmove.itemsize}"),
        rowbase=np.frombuffer(ident.tk_row, dtype=f"u{ident.tk_row.itemsize}").astype(np.int64) << 8,
        output=np.asarray(ident.tk_output, dtype=np.int32),
        ptc=ident.nb_ptc,
        pc=ident.nb_pc,
        classes=list(ident.nb_classes),
        columns=columns,
        aliases=list(ident._alias_pairs),
    )


def _langid_scores(model: _LangidModel, encoded: list[bytes], chunk: int = 256) -> np.ndarray:
    """Raw naive-Bayes scores (texts × classes) as LanguageIdentifier._decide computes them, for all texts."""
    n = len(encoded)
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=n)
    # Longest first: the texts still being read at byte t are a prefix, and the DFA steps all of them at once.
    order = np.argsort(-lengths, kind="stable")
    lengths = lengths[order]
    starts = np.cumsum(lengths) - lengths
    data = np.frombuffer(b"".join(encoded[i] for i in order), dtype=np.uint8)
    # reading[t]: how many texts are longer than t bytes.
    reading = np.searchsorted(-lengths, -np.arange(lengths[0]), side="left")
    states = np.zeros(n, dtype=np.int64)
    visited = np.zeros(len(data), dtype=np.int32)  # the state after each byte, laid out like data
    for t, k in enumerate(reading.tolist()):
        at = starts[:k] + t
        states[:k] = model.nextmove[model.rowbase[states[:k]] + data[at]]
        visited[at] = states[:k]
    features = model.output[visited]  # the feature each byte completes, or -1
    owner = np.repeat(np.arange(n), lengths)
    scores = np.full((n, len(model.classes)), RAW_FLOOR)  # featureless text stays there, as in py3langid
    index = np.zeros(len(model.ptc), dtype=np.int64)  # feature → its column in the chunk's product
    for lo in range(0, n, chunk):
        rows = min(chunk, n - lo)
        span = slice(starts[lo], starts[lo + rows - 1] + lengths[lo + rows - 1])
        found = features[span] >= 0
        feature, text = features[span][found], owner[span][found] - lo
        # One product per chunk, over the features its texts use: log(1 + count) × log P(feature | class).
        index[feature] = 1
        used = np.flatnonzero(index)
        index[used] = np.arange(len(used))
        counts = np.bincount(text * len(used) + index[feature], minlength=rows * len(used))
        index[used] = 0
        weights = np.log1p(counts.reshape(rows, len(used)), dtype=np.float64)
        some = np.bincount(text, minlength=rows) > 0
        scores[lo : lo + rows][some] = weights[some] @ model.ptc[used].astype(np.float64) + model.pc
    for i, j in model.aliases:  # a label with two columns keeps the higher score in its first
        scores[:, i] = np.maximum(scores[:, i], scores[:, j])
        scores[:, j] = RAW_FLOOR
    out = np.empty_like(scores)
    out[order] = scores
    return out


def distinct(fields: dict[str, Any], siblings: list[str], max_similarity: float) -> tuple[str, float | None]:
    """The distinct rule's outcome for a copy among its accepted siblings, and its highest similarity."""
    score = max_sibling_similarity(fields, siblings)
    return _distinct(score, max_similarity), score


def _distinct(score: float | None, max_similarity: float) -> str:
    if score is None:
        return "skipped: first variant"
    return f"failed: {score:.2f} similar to another variant" if score > max_similarity else "passed"


def copy_text(fields: dict[str, Any]) -> str:
    """The text compared between variants: headline, body and CTA."""
    return " ".join(fields[f] for f in FIELDS)


def max_sibling_similarity(fields: dict[str, Any], siblings: list[str]) -> float | None:
    """Highest similarity to the other accepted variants of the same brief and channel."""
    # The processor normalises the new text once and each sibling once.
    best = process.extractOne(
        copy_text(fields), siblings, scorer=Indel.normalized_similarity, processor=_normalise
    )
    return None if best is None else best[1]


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
    # InDel similarity, 2·LCS/(len a + len b): difflib's ratio with the longest common subsequence in place
    # of its greedy matching blocks, so never lower: equal on near duplicates, higher on loosely related text.
    return Indel.normalized_similarity(_normalise(a), _normalise(b))


def _normalise(text: str) -> str:
    # The runs of word characters: the same as blanking punctuation, then splitting on whitespace.
    return " ".join(_WORD.findall(text.casefold()))

"""Each channel's ad in its platform's format: which copy field fills which platform field, what more the
model is asked for in the same reply (more headlines for a search ad), and the set of values chosen for each
field from the candidates of one job.

A set is chosen as a copy is (tasks/copy.py): every value passes the rules that apply to one piece of text,
then values are taken by maximal marginal relevance to the brief, each distinct from those taken. A set that
cannot reach the platform's minimum refuses the job's pick (its candidates are sampled again); it is never
padded or repeated."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from adforge.tasks.channels import CHANNELS
from adforge.tasks.platforms import field_spec, value_problems
from adforge.tasks.scoring import Embedder, mmr_pick


@dataclass(frozen=True)
class Source:
    """Where a platform field's values come from: the copy field that is its first value (None: none),
    how many more values each candidate is asked for, and the shortest value that says something."""

    field: str
    copy_field: str | None
    more: int = 0
    min_chars: int = 0

    @property
    def key(self) -> str:
        """The reply's key for the further values: `more_<field>` (a list), or the field itself (one text)."""
        return f"more_{self.field}" if self.copy_field else self.field


_META = (Source("primary_text", "body"), Source("headline", "headline"), Source("description", None, 1, 10))
SOURCES: dict[str, tuple[Source, ...]] = {
    # From four candidates, 1 + 4 headlines each can fill Google's 15; 1 + 1 descriptions, its 4.
    "google_search": (Source("headlines", "headline", 4, 10), Source("descriptions", "body", 1, 30)),
    "display": (
        Source("headlines", "headline", 2, 10),
        Source("long_headline", None, 1, 25),
        Source("descriptions", "body", 1, 25),
    ),
    "facebook": _META,
    "instagram": _META,
    "linkedin": (Source("intro_text", "body"), Source("headline", "headline")),
    "x": (Source("post", "body"), Source("card_headline", "headline")),
    "email": (Source("subject", "headline"), Source("preheader", None, 1, 20), Source("body", "body")),
}

Extras = dict[str, list[str]]  # a reply's further values, per key
_KEY = re.compile(r"(?<!\w)[a-z]+_[a-z_]+(?!\w)")  # a reply's key written as a value ("more_headlines")


def extras(channel: str) -> list[Source]:
    """The fields the model is asked further values for, in the reply's order."""
    return [s for s in SOURCES[channel] if s.more]


def grammar_properties(channel: str) -> dict[str, dict]:
    """JSON schema properties of the further values, each allowed one character past its limit."""
    props: dict[str, dict] = {}
    for source in extras(channel):
        limit = field_spec(channel, source.field).max_chars
        text = {"type": "string", "minLength": source.min_chars, "maxLength": limit + 1}
        props[source.key] = (
            {"type": "array", "items": text, "minItems": source.more, "maxItems": source.more}
            if source.copy_field
            else text
        )
    return props


def prompt_lines(channel: str) -> list[str]:
    """What the prompt asks of the further values."""
    lines = []
    for source in extras(channel):
        limit, what = field_spec(channel, source.field).max_chars, source.field.replace("_", " ")
        if source.copy_field:
            lines.append(f"{source.key}: {source.more} more {what} of {source.min_chars} to {limit} "
                         "characters, each saying something the others do not.")  # fmt: skip
        else:
            lines.append(f"{source.key}: the {what}, {source.min_chars} to {limit} characters.")
    return lines


def read_extras(text: str, channel: str) -> Extras:
    """The further values of a reply, per key; a key missing or of the wrong type gives none."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError:
        return {}
    out = {}
    for source in extras(channel):
        value = raw.get(source.key) if isinstance(raw, dict) else None
        values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        out[source.key] = [v.strip() for v in values if isinstance(v, str)]
    return out


def offered(channel: str, source: Source, picked: tuple[dict[str, str], Extras],
            others: Sequence[tuple[dict[str, str], Extras]]) -> list[str]:  # fmt: skip
    """A field's values on offer: the picked candidate's copy field first, then its further values, then
    the other candidates' copy fields and further values."""
    texts = []
    for i, (fields, more) in enumerate([picked, *others]):
        if i and not source.more:
            break  # a field of one value from the copy takes the picked candidate's alone
        texts += ([fields[source.copy_field].strip()] if source.copy_field else []) + more.get(source.key, [])
    return texts


def limits_refusal(channel: str, source: Source, text: str) -> str:
    """Why one value breaks the platform's limit or the channel's conventions ('' if it does not)."""
    problems = value_problems(channel, field_spec(channel, source.field), 1, text)
    if problems:
        return problems[0]
    key = _KEY.search(text)
    if key:
        return f"{source.field}: names a field of the reply ({key.group()!r})"
    if len(text) < source.min_chars:
        return f"{source.field}: {len(text)} characters, {channel} asks for {source.min_chars}"
    spec = CHANNELS[channel]
    if "\n" in text and not spec.line_breaks:
        return f"{source.field}: line break not allowed on {channel}"
    hashtags = sum(word.startswith("#") for word in text.split())
    if hashtags > spec.max_hashtags:
        return f"{source.field}: {hashtags} hashtags, {channel} allows {spec.max_hashtags}"
    return ""


def choose_set(
    channel: str, source: Source, texts: Sequence[str], refused: Sequence[str], brief: np.ndarray,
    embed: Embedder, similar: Callable[[str, str], float], max_similarity: float,
) -> tuple[list[str], str]:  # fmt: skip
    """The values chosen for one field, and '' or why the ad cannot have them. `refused[i]` is why texts[i]
    breaks a rule ('' if none); a field filled from a copy field starts with texts[0], the picked copy's;
    then values are taken by maximal marginal relevance to the brief, each no more than max_similarity
    alike to one taken (`similar` scores 0..1), up to the platform's maximum."""
    spec = field_spec(channel, source.field)
    if source.copy_field and refused[0]:
        return [], f"set: {refused[0]}"
    ok = [i for i, why in enumerate(refused) if not why and texts[i]]
    taken: list[int] = [0] if source.copy_field else []
    if ok:
        vectors = embed([texts[i] for i in ok])
        relevance = (vectors @ brief).tolist()
        rest = [k for k, i in enumerate(ok) if i not in taken]
        while rest and len(taken) < spec.max_count:
            chosen = vectors[[ok.index(i) for i in taken]]
            order = mmr_pick([relevance[k] for k in rest], vectors[rest], chosen)
            pick = next((rest[j] for j in order
                         if all(similar(texts[ok[rest[j]]], texts[i]) <= max_similarity for i in taken)),
                        None)  # fmt: skip
            if pick is None:
                break
            taken.append(ok[pick])
            rest.remove(pick)
    values = [texts[i] for i in taken]
    if len(values) >= spec.min_count:
        return values, ""
    example = next((f"; {why}" for why in refused if why), "")
    have = f"{len(values)} distinct values pass the rules"
    return values, f"set: {spec.name}: {have}, {channel} takes at least {spec.min_count}{example}"

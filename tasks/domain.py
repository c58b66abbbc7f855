"""What a run handles, as typed records: briefs, the jobs planned from them, the rows they become,
failures and stage timings. Rows carry exactly their table's columns (the run id is added when stored)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Stage(StrEnum):
    """The stages of a run, as stored in `run_stages.stage` and `failures.stage`."""

    READ = "read"
    LOAD_TEXT_MODEL = "load_text_model"
    COPY = "copy"
    LOAD_IMAGE_MODEL = "load_image_model"
    IMAGE = "image"
    CREATIVE = "creative"


class FailureKind(StrEnum):
    """Why an item could not be made, as stored in `failures.kind`."""

    ENGINE_ERROR = "engine_error"  # the engine raised after the task's retries: a later run tries again
    RULE = "rule"  # every sample broke a rule: the same settings would break it again
    PROMPT_TOO_LONG = "prompt_too_long"  # the brief's prompt leaves no room for the copy
    CREATIVE = "creative"  # the text cannot be set on the image, or the image cannot be read
    LOCALE = "locale"  # the text model does not write the locale's language (text_model_languages)


RETRIED = (FailureKind.ENGINE_ERROR,)  # kinds a later run with the same settings tries again


@dataclass(frozen=True)
class BrandRules:
    """What a brief asks of its copy, besides the channel's limits."""

    brand: str
    banned_words: tuple[str, ...] = ()
    language: str = "en"
    product: str = ""  # a name too: the language rule reads the copy without brand and product
    facts: str = ""  # the brief's product, audience, key message, tone and claims: what a copy may claim


@dataclass(frozen=True)
class Segment:
    """An audience segment a brief's ads are written for: a row of `segments`. `attributes` is JSON (age
    range, interests, region, ...); `segment_hash` covers what the prompt says about the segment."""

    segment_id: str
    segment_hash: str
    name: str
    description: str
    attributes: str | None = None

    def prompt_line(self) -> str:
        """The segment in words: its name, description and attributes."""
        extra = "; ".join(f"{k}: {v}" for k, v in json.loads(self.attributes or "{}").items())
        named = self.description if self.name == self.description else f"{self.name}: {self.description}"
        return named + (f" ({extra})" if extra else "")


@dataclass
class Brief:
    """One valid row of a briefs file, normalised; `brief_hash` covers everything that shapes its copy."""

    brief_id: str
    brief_hash: str
    brand: str
    product: str
    audience: str
    key_message: str
    tone: str
    channels: list[str]
    variants: int
    images_per_copy: int
    banned_words: list[str]
    language: str
    claims: list[str] = field(default_factory=list)
    campaign_id: str | None = None
    metadata: str | None = None
    source_file: str | None = None
    source_row: int | None = None
    # Each segment and each locale gets its own ads; none: the brief's audience, in its language.
    segments: list[Segment] = field(default_factory=list)
    locales: list[str] = field(default_factory=list)
    locale_banned_words: dict[str, list[str]] = field(default_factory=dict)  # locale → more banned words

    @property
    def rules(self) -> BrandRules:
        return brand_rules(vars(self))

    def record(self) -> dict[str, Any]:
        """The `briefs` row: the fields every ad of the brief shares (segments are rows of their own)."""
        return {k: v for k, v in vars(self).items() if k not in PER_AD}


PER_AD = ("segments", "locales", "locale_banned_words")  # a brief's fields that shape some of its ads only


def brand_rules(brief: dict[str, Any]) -> BrandRules:
    """The rules of a brief's fields, from a Brief or a stored row (where later columns may be null)."""
    product = brief.get("product") or ""
    texts = [product, *(brief.get(k) or "" for k in ("audience", "key_message", "tone"))]
    facts = " ".join([*texts, *(brief.get("claims") or [])])
    banned = tuple(brief.get("banned_words") or ())
    return BrandRules(brief["brand"], banned, brief.get("language") or "en", product, facts)


@dataclass
class RejectedBrief:
    brief_id: str | None
    source_file: str
    source_row: int
    reason: str


Group = tuple[str, str | None, str, str]  # brief_hash, segment_id, locale, channel: variants that must differ


@dataclass
class CopyJob:
    """One copy variant to write: a brief on a channel, for one audience segment in one locale."""

    copy_id: str
    brief_id: str
    brief_hash: str
    channel: str
    variant: int
    seed: int
    messages: list[dict[str, str]]  # chat messages: {"role": ..., "content": ...}
    rules: BrandRules
    brief_text: str = ""  # what relevance compares the copy with: product, audience, key message
    siblings: list[str] = field(default_factory=list)  # stored variants of the same brief and channel
    reasons: list[str] = field(default_factory=list)  # why each refused sample was refused
    candidates: int = 0  # completions the engine wrote for this job so far
    # This attempt's readable candidates (copy fields, further values): what platform sets are chosen from.
    offers: list[tuple[dict[str, str], dict[str, list[str]]]] = field(default_factory=list)
    segment_id: str | None = None  # None: the brief's audience
    segment_hash: str | None = None
    locale: str = "en"  # the brief's language when it names no locales

    stage = Stage.COPY

    @property
    def item_id(self) -> str:
        return self.copy_id

    @property
    def prompt_text(self) -> str:
        return "\n".join(m["content"] for m in self.messages)

    @property
    def group(self) -> Group:
        """The variants that must differ from each other: one brief, segment, locale and channel."""
        return self.brief_hash, self.segment_id, self.locale, self.channel


@dataclass
class CopyRow:
    copy_id: str
    brief_id: str
    brief_hash: str
    channel: str
    variant: int
    headline: str
    body: str
    cta: str
    image_prompt: str
    checks: str  # JSON: each rule's outcome
    similarity: float | None
    attempts: int
    candidates: int
    seed: int
    text_model: str
    sampling: str  # JSON of the Sampling that made it
    prompt: str  # JSON of the chat messages
    prompt_tokens: int
    output_tokens: int
    relevance: float | None = None
    readability: float | None = None
    score_model: str | None = None
    embedding: list[float] | None = None
    segment_id: str | None = None
    segment_hash: str | None = None
    locale: str | None = None


@dataclass
class AssetRow:
    """One value of a platform field of an ad (the third of a search ad's headlines)."""

    copy_id: str
    field: str
    position: int
    text: str


@dataclass
class ReviewRow:
    """A person's decision on an ad (a copy and its creatives): approved, rejected (with a reason) or edited
    (a field's text before and after)."""

    review_id: str
    item_id: str  # copies.copy_id
    decision: str  # approved, rejected, edited
    reviewer: str
    reason: str | None = None
    field: str | None = None
    before: str | None = None
    after: str | None = None

    @classmethod
    def new(
        cls, item_id: str, decision: str, reviewer: str, reason: str | None = None, **edit: str
    ) -> ReviewRow:
        """A decision made now, with a fresh review id; `edit` holds field, before and after."""
        return cls(f"review-{uuid.uuid4().hex}", item_id, decision, reviewer, reason, **edit)


@dataclass
class ImageJob:
    image_id: str
    copy_id: str
    brief_id: str
    image_index: int
    prompt: str
    seed: int

    stage = Stage.IMAGE
    channel = None
    variant = None

    @property
    def item_id(self) -> str:
        return self.image_id


@dataclass
class ImageRow:
    image_id: str
    copy_id: str
    brief_id: str
    image_index: int
    prompt: str
    seed: int
    path: str
    width: int
    height: int
    steps: int
    guidance_scale: float
    image_model: str
    sha256: str
    bytes: int


@dataclass
class CreativeJob:
    creative_id: str
    copy_id: str
    image_id: str
    brief_id: str
    channel: str
    headline: str
    cta: str
    image_path: str
    brand: str | None = None  # whose brand kit, if any, the creative is drawn with
    size: tuple[int, int] | None = None  # width and height; None: the channel's (tasks/creatives.py SIZES)

    stage = Stage.CREATIVE
    variant = None

    @property
    def item_id(self) -> str:
        return self.creative_id


@dataclass
class CreativeRow:
    creative_id: str
    copy_id: str
    image_id: str
    brief_id: str
    channel: str
    kind: str
    path: str
    width: int
    height: int
    font: str
    font_size: int
    headline_lines: int
    backing_opacity: float
    contrast_ratio: float
    sha256: str
    bytes: int
    brand_kit: str | None = None
    button_color: str | None = None
    cta_contrast: float | None = None


@dataclass
class Failure:
    """An item that could not be made: `reason` is for people, `kind` for the code that decides retries."""

    stage: Stage
    kind: FailureKind
    item_id: str
    brief_id: str | None
    reason: str
    attempts: int
    channel: str | None = None
    variant: int | None = None
    brief_hash: str | None = None  # of a copy's failure: which version of the brief, segment and locale
    segment_id: str | None = None
    locale: str | None = None


def failure(job: CopyJob | ImageJob | CreativeJob, kind: FailureKind, reason: str, attempts: int) -> Failure:
    """The failure row for any job."""
    if isinstance(job, CopyJob):
        return Failure(job.stage, kind, job.item_id, job.brief_id, reason, attempts, job.channel, job.variant,
                       job.brief_hash, job.segment_id, job.locale)  # fmt: skip
    return Failure(job.stage, kind, job.item_id, job.brief_id, reason, attempts, job.channel, job.variant)


@dataclass
class StageRow:
    stage: Stage
    started_at: datetime
    seconds: float
    items: int
    output_tokens: int | None = None


def row(record: Any) -> dict[str, Any]:
    """A record's columns by name (records hold no nested records); a dict is already that."""
    return record if isinstance(record, dict) else vars(record)

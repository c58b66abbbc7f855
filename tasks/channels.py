"""The channels adforge writes for, their length limits, and the copy schema each one implies."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from pydantic import BaseModel, Field, create_model


@dataclass(frozen=True)
class Channel:
    """Length limits (characters) and conventions for one advertising channel."""

    name: str
    headline: str  # what the channel calls the headline field
    headline_max: int
    body: str  # what the channel calls the body field
    body_max: int
    cta_max: int
    max_hashtags: int
    line_breaks: bool  # may the body contain line breaks?
    style: str  # one line of advice for the writer
    headline_min: int = 10  # characters: shorter says nothing (a rule of its own, and asked of the grammar)
    body_min: int = 40


# Call-to-action buttons offered by the ad platforms (Meta, LinkedIn); every one fits every channel.
CTA_BUTTONS = ("Shop now", "Learn more", "Sign up", "Book now", "Order now", "Get offer", "Subscribe",
               "Get started", "Try it free", "Download", "Contact us", "Apply now", "Get quote")  # fmt: skip
IMAGE_PROMPT_MAX = 200  # CLIP-based image models read ~77 tokens; longer prompts are cut anyway

# Limits follow each platform's published ad specs, rounded down where they differ by placement.
CHANNELS: dict[str, Channel] = {
    c.name: c
    for c in [
        Channel("instagram", "headline", 40, "caption", 300, 25, 5, True,
                "visual, upbeat, a few relevant hashtags at the end"),
        Channel("facebook", "headline", 40, "primary text", 125, 25, 2, True,
                "conversational, one clear benefit"),
        Channel("linkedin", "headline", 70, "introductory text", 150, 25, 3, True,
                "professional, concrete value for the reader's work"),
        Channel("x", "card title", 70, "post", 280, 25, 2, False,
                "short, punchy, one idea", body_min=30),
        Channel("google_search", "headline", 30, "description", 90, 15, 0, False,
                "plain, keyword-rich, no hashtags", body_min=30),
        Channel("email", "subject line", 60, "body", 500, 25, 0, True,
                "personal, one paragraph, ends with the call to action", body_min=120),
        Channel("display", "headline", 30, "description", 90, 15, 0, False,
                "very short, readable at a glance", body_min=25),
    ]
}  # fmt: skip


class CopyFields(BaseModel):
    """One piece of ad copy as stored; the per-channel models below add the limits."""

    headline: str
    body: str
    cta: str
    image_prompt: str


@cache
def copy_model(channel: str) -> type[CopyFields]:
    """Pydantic model for one channel's copy, with its length limits."""
    spec = CHANNELS[channel]

    def text(max_length: int, description: str) -> object:
        return Field(min_length=1, max_length=max_length, description=description)

    model: type[CopyFields] = create_model(
        f"{channel.title().replace('_', '')}Copy",
        __base__=CopyFields,
        headline=(str, text(spec.headline_max, spec.headline)),
        body=(str, text(spec.body_max, spec.body)),
        cta=(str, text(spec.cta_max, "call to action")),
        image_prompt=(str, text(IMAGE_PROMPT_MAX, "description of the ad's picture")),
    )
    return model


def rule_violations(channel: str, copy: CopyFields) -> list[str]:
    """Channel rules that a schema cannot express: hashtag count and line breaks."""
    spec = CHANNELS[channel]
    problems = []
    hashtags = sum(word.startswith("#") for word in f"{copy.headline} {copy.body}".split())
    if hashtags > spec.max_hashtags:
        problems.append(f"{hashtags} hashtags, {channel} allows {spec.max_hashtags}")
    single_line = ["headline", "cta", "image_prompt"] + ([] if spec.line_breaks else ["body"])
    for name in single_line:
        if "\n" in getattr(copy, name):
            problems.append(f"{name}: line break not allowed on {channel}")
    return problems

"""Platform sets chosen from a job's candidates (tasks/ad_sets.py), on the hashing embedder (no model)."""

from __future__ import annotations

import json

from adforge.tasks.ad_sets import SOURCES, choose_set, limits_refusal, offered, read_extras
from adforge.tasks.platforms import PLATFORM_FORMATS
from adforge.tasks.rules import grammar_schema, similarity
from adforge.tasks.scoring import HashingEmbedder

EMBED = HashingEmbedder()
BRIEF = EMBED(["trail running shoes with grip on wet rock"])[0]
HEADLINES, DESCRIPTIONS = SOURCES["google_search"]


def choose(texts: list[str], source=HEADLINES, channel: str = "google_search") -> tuple[list[str], str]:
    refused = [limits_refusal(channel, source, t) for t in texts]
    return choose_set(channel, source, texts, refused, BRIEF, EMBED, similarity, 0.8)


def test_every_platform_field_comes_from_somewhere():
    """Each channel's sources are fields of its platform format, and every generated field has one."""
    for channel, sources in SOURCES.items():
        names = {f.name for f in PLATFORM_FORMATS[channel]}
        assert {s.field for s in sources} <= names, channel


def test_the_grammar_asks_for_the_further_values():
    schema = grammar_schema("google_search", "PeakGear")
    more = schema["properties"]["more_headlines"]
    assert more["minItems"] == more["maxItems"] == 4 and more["items"]["maxLength"] == 31
    assert {"more_headlines", "more_descriptions"} <= set(schema["required"])
    assert "long_headline" in grammar_schema("display", "PeakGear")["properties"]


def test_the_picked_copys_own_headline_comes_first_then_distinct_relevant_ones():
    values, reason = choose([
        "Grip on wet rock, every run", "Trail shoes that grip wet rock", "Trail shoes that grip wet rock!",
        "Run further on wet trails", "Our socks are fine too",
    ])  # fmt: skip
    assert reason == "" and values[0] == "Grip on wet rock, every run"
    assert len(values) == 4 and "Trail shoes that grip wet rock!" not in values  # the near twin is dropped


def test_a_set_short_of_the_platforms_minimum_is_refused_not_padded():
    values, reason = choose(["Grip on wet rock, every run", "Grip on wet rock, every run", "more_headlines"])
    assert values == ["Grip on wet rock, every run"]
    assert reason.startswith(
        "set: headlines: 1 distinct values pass the rules, google_search takes at least 3"
    )
    assert "names a field of the reply" in reason


def test_values_past_the_platforms_limit_are_refused():
    assert "characters" in limits_refusal("google_search", HEADLINES, "A headline far longer than thirty")
    assert "as google_search counts them" in limits_refusal("google_search", HEADLINES, "山" * 16)
    assert "at least" not in limits_refusal("google_search", HEADLINES, "Short one here")
    assert (
        limits_refusal("google_search", HEADLINES, "Tiny")
        == "headlines: 4 characters, google_search asks for 10"
    )


def test_a_refused_copy_field_refuses_the_set():
    _, reason = choose(["山" * 16, "Trail shoes that grip wet rock", "Run further on wet trails"])
    assert reason.startswith("set: headlines[1]: 32 characters as google_search counts them")


def test_values_offered_by_every_candidate():
    picked = ({"headline": "Grip on wet rock", "body": "b1"}, {"more_headlines": ["h1", "h2"]})
    other = ({"headline": "Other headline", "body": "b2"}, {"more_headlines": ["h3"]})
    assert offered("google_search", HEADLINES, picked, [other]) == [
        "Grip on wet rock", "h1", "h2", "Other headline", "h3"
    ]  # fmt: skip
    # A one-value field from the copy takes the picked candidate's alone.
    assert offered("facebook", SOURCES["facebook"][1], picked, [other]) == ["Grip on wet rock"]


def test_further_values_are_read_from_the_reply():
    reply = json.dumps({"headline": "h", "more_headlines": [" a ", 3, "b"], "more_descriptions": "d"})
    assert read_extras(reply, "google_search") == {"more_headlines": ["a", "b"], "more_descriptions": ["d"]}
    assert read_extras("not json", "google_search") == {}

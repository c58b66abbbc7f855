"""Quality measures of stored copy, each provoked by copy made to break it."""

from __future__ import annotations

import pytest

from adforge.tasks.quality import quality_report
from adforge.tasks.rules import banned_words_used, brand_present, cut_at_limit, similarity, within_limits

GOOD = {"brief_id": "b1", "brief_hash": "h1", "channel": "display", "headline": "Nordbrew cold brew",
        "body": "Coffee in 30 seconds.", "cta": "Shop now", "image_prompt": "a glass of coffee",
        "attempts": 1, "brand": "Nordbrew", "banned_words": ["cheap"]}  # fmt: skip


def test_banned_words_are_whole_words_in_any_case():
    assert banned_words_used(GOOD | {"body": "CHEAP coffee, cheap!"}, ["cheap"]) == ["cheap"]
    assert banned_words_used(GOOD | {"body": "The cheapest coffee"}, ["cheap"]) == []
    assert banned_words_used(GOOD | {"cta": "Go cold-brew"}, ["cold-brew", "hot"]) == ["cold-brew"]


def test_brand_must_be_in_headline_or_body():
    assert brand_present(GOOD, "nordbrew")
    assert not brand_present(GOOD | {"headline": "Cold brew", "cta": "Nordbrew now"}, "Nordbrew")


def test_fields_cut_at_the_limit_are_flagged():
    assert cut_at_limit(GOOD | {"headline": "x" * 30}) == ["headline"]  # display: 30 characters
    assert cut_at_limit(GOOD | {"headline": "x" * 29 + "."}) == []
    assert cut_at_limit(GOOD | {"cta": "Join the family of the Br"[:15]}) == ["cta"]


@pytest.mark.parametrize(
    "change", [{"body": "b" * 91}, {"body": "two\nlines"}, {"headline": ""}, {"body": "#a #b"}]
)
def test_limits_and_channel_rules(change):
    assert within_limits(GOOD)
    assert not within_limits(GOOD | change)


def test_similarity():
    assert similarity("Cold brew, now!", "cold  brew now") == 1.0
    assert similarity("Cold brew in 30 seconds", "Rain jackets for hikers") < 0.5


def test_report_counts():
    copies = [GOOD, GOOD | {"headline": "Cold brew", "attempts": 3}, GOOD | {"channel": "x"}]
    report = quality_report(copies, [{"reason": "headline: too long"}, {"reason": "engine error: boom"}])
    assert report["copies"] == 3 and report["within channel limits (%)"] == 100.0
    assert report["brand present, no banned word (%)"] == pytest.approx(66.7)
    assert report["retries per accepted copy"] == pytest.approx(0.67)
    assert report["max pairwise variant similarity"] > 0.5  # the two display variants share most text
    assert (report["failures: headline"], report["failures: engine error"]) == (1, 1)

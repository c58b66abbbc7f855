"""The channel table drives the schema and the checks."""

from __future__ import annotations

import pytest

from tasks.channels import CHANNELS, IMAGE_PROMPT_MAX, CopyFields, json_schema, rule_violations
from tasks.copy import parse_copy


@pytest.mark.parametrize("channel", list(CHANNELS))
def test_schema_limits_come_from_the_table(channel: str):
    spec = CHANNELS[channel]
    props = json_schema(channel)["properties"]
    assert props["headline"]["maxLength"] == spec.headline_max
    assert props["body"]["maxLength"] == spec.body_max
    assert props["cta"]["maxLength"] == spec.cta_max
    assert props["image_prompt"]["maxLength"] == IMAGE_PROMPT_MAX
    assert all(p["minLength"] == 1 for p in props.values())


def test_documented_limits():
    assert CHANNELS["google_search"].headline_max == 30
    assert CHANNELS["google_search"].body_max == 90
    assert CHANNELS["x"].body_max == 280
    assert CHANNELS["email"].headline_max == 60


def test_rule_violations():
    ok = CopyFields(headline="Hi", body="Nice #a", cta="Go", image_prompt="a cup")
    assert rule_violations("instagram", ok) == []
    assert rule_violations("google_search", ok) == ["1 hashtags, google_search allows 0"]
    broken = CopyFields(headline="Hi", body="two\nlines", cta="Go", image_prompt="a cup")
    assert rule_violations("x", broken) == ["body: line break not allowed on x"]
    assert rule_violations("email", broken) == []


def test_parse_copy_reasons():
    good = '{"headline": "Fast", "body": "Coffee now", "cta": "Buy", "image_prompt": "a mug"}'
    fields, reason = parse_copy("display", good, "stop")
    assert fields == {"headline": "Fast", "body": "Coffee now", "cta": "Buy", "image_prompt": "a mug"}
    assert reason == ""
    assert parse_copy("display", good, "length") == (None, "output cut off at max_tokens")
    assert parse_copy("display", '{"headline": "x"', "stop")[1].startswith("output: Invalid JSON")
    too_long = good.replace("Fast", "F" * 31)
    assert parse_copy("display", too_long, "stop")[1] == "headline: String should have at most 30 characters"
    empty = good.replace('"Buy"', '""')
    assert parse_copy("display", empty, "stop")[1] == "cta: String should have at least 1 character"

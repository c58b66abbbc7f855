"""The channel table drives the schema and the checks."""

from __future__ import annotations

import pytest

from adforge.tasks.channels import CHANNELS, CTA_BUTTONS, IMAGE_PROMPT_MAX, CopyFields, rule_violations
from adforge.tasks.rules import grammar_schema


@pytest.mark.parametrize("channel", list(CHANNELS))
def test_grammar_limits_come_from_the_table(channel: str):
    """Each field may run one character past its limit, so that a cut shows as an overflow."""
    spec = CHANNELS[channel]
    schema = grammar_schema(channel, 'Joe\'s "Best"')  # quotes: the brand is checked, not in the grammar
    props = schema["properties"]
    assert props["headline"]["maxLength"] == spec.headline_max + 1
    assert props["body"]["maxLength"] == spec.body_max + 1
    assert props["cta"]["enum"] == list(CTA_BUTTONS)
    assert max(map(len, CTA_BUTTONS)) <= spec.cta_max
    assert props["image_prompt"]["maxLength"] == IMAGE_PROMPT_MAX
    assert schema["additionalProperties"] is False


def test_grammar_starts_the_body_with_the_brand():
    body = grammar_schema("display", "M&S Café")["properties"]["body"]
    # From the body's minimum (25) to its limit plus one (91), less the brand's 8 characters.
    assert body["pattern"] == '^M\\x{26}S Café[^"\\\\\\n]{17,83}$'
    assert "maxLength" not in body and "minLength" not in body  # xgrammar refuses pattern + length


def test_a_brand_in_another_script_keeps_the_body_in_the_copys():
    """After an Arabic brand, English copy may use no other script than Latin (a small model goes on in the
    brand's script); Arabic copy, or a Latin brand, keeps every script."""
    english = grammar_schema("facebook", "نور", "en")["properties"]["body"]["pattern"]
    assert english.startswith('^نور[^"\\\\\\n\\x{370}-\\x{1dff}') and "\\x{ac00}-\\x{d7ff}" in english
    arabic = grammar_schema("facebook", "نور", "ar")["properties"]["body"]["pattern"]
    assert arabic == '^نور[^"\\\\\\n]{37,123}$'
    assert "x{370}" not in grammar_schema("facebook", "Café Nørd", "en")["properties"]["body"]["pattern"]


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

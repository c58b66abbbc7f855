"""Copy rules: each one provoked by output or briefs made to break it, on crafted text and the real engine."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, replace

import pytest

from adforge.flows.settings import Settings
from adforge.tasks.briefs import normalise
from adforge.tasks.copy import check_fields, generate_copy, plan_copies, read_output
from adforge.tasks.domain import CopyJob
from adforge.tasks.generation import Completion, Sampling, text_generator
from adforge.tasks.rules import (
    BrandRules,
    banned_words_used,
    brand_in_grammar,
    check_copy,
    copy_text,
    language_margins,
    language_text,
    max_sibling_similarity,
    similarity,
)

GOOD = {"headline": "Cold brew in seconds", "body": "Nordbrew makes barista coffee at home.",
        "cta": "Shop now", "image_prompt": "a glass of iced coffee"}  # fmt: skip


def brief(**fields) -> dict:
    base = {"brief_id": "b1", "brand": "Nordbrew", "product": "Cold brew concentrate",
            "audience": "busy young professionals", "key_message": "Barista coffee at home in 30 seconds",
            "channels": ["display"], "variants": 1}  # fmt: skip
    return normalise(base | fields)


def job(**fields) -> CopyJob:
    return plan_copies([brief(**fields)], Sampling("m"))[0]


def parse_copy(
    job: CopyJob, out: Completion, siblings: list[str], sampling: Sampling
) -> tuple[dict | None, str]:
    """What the copy task makes of one output: its checked fields, or None and the reason."""
    fields, reason = read_output(out)
    return check_fields(job, fields, siblings, sampling) if fields else (None, reason)


def parse(output: dict, siblings: list[str] | None = None, finish: str = "stop", **fields):
    return parse_copy(
        job(**fields), Completion(json.dumps(output), finish, 0, 0), siblings or [], Sampling("m")
    )


def test_copy_passing_every_rule_keeps_its_check_results():
    copy, reason = parse(GOOD | {"headline": " Cold brew in seconds "})
    assert reason == "" and copy is not None
    assert copy["headline"] == "Cold brew in seconds"  # whitespace is the one safe repair
    assert copy["checks"] == {
        "channel_limits": "passed", "min_length": "passed", "brand_named": "passed",
        "banned_words": "skipped: no banned words", "claims": "passed", "no_echo": "passed",
        "headline_body_differ": "passed", "image_prompt": "passed", "language": "passed",
        "distinct": "skipped: first variant", "whitespace": "trimmed",
    }  # fmt: skip
    assert copy["similarity"] is None


@pytest.mark.parametrize(
    ("output", "fields", "reason"),
    [
        (GOOD | {"headline": "Cold brew for people who have no time at all"}, {},
         "channel_limits: headline: String should have at most 30 characters"),
        (GOOD | {"body": "Coffee #fast"}, {}, "channel_limits: 1 hashtags, display allows 0"),
        (GOOD | {"body": "Nordbrew coffee\nat home."}, {},
         "channel_limits: body: line break not allowed on display"),
        (GOOD | {"body": "Barista coffee at home, fast."}, {}, "brand_named: Nordbrew not named"),
        (GOOD | {"headline": "CHEAP cold brew"}, {"banned_words": ["cheap"]}, "banned_words: uses cheap"),
        (GOOD | {"body": "Nordbrew macht Kaffee wie beim Barista, zu Hause und in dreißig Sekunden."}, {},
         "language: reads as de, the brief asks for en"),
        (GOOD | {"body": "Nordbrew coffee."}, {}, "min_length: body of 16 characters, display asks for 25"),
        (GOOD | {"headline": "Cold brew"}, {}, "min_length: headline of 9 characters, display asks for 10"),
        (GOOD | {"body": "Nordbrew barista coffee, now 50% off."}, {}, "claims: '50%' not in the brief"),
        (GOOD | {"body": "Nordbrew: barista coffee for $4.99 a bottle."}, {},
         "claims: '$4.99' not in the brief"),
        (GOOD | {"body": "Nordbrew coffee since March 10, 2022."}, {},
         "claims: '10', '2022', 'march' not in the brief"),
        (GOOD | {"headline": "The best cold brew"}, {}, "claims: 'best' not in the brief"),
        (GOOD | {"cta": "Try it free"}, {}, "claims: 'free' not in the brief"),
        (GOOD | {"body": "Nordbrew. Audience: busy young professionals"}, {},
         "no_echo: body repeats the instructions ('Audience:')"),
        (GOOD | {"image_prompt": "a sentence of at most 200 characters"}, {},
         "no_echo: image_prompt repeats the instructions ('a sentence of at')"),
        (GOOD | {"headline": "Nordbrew coffee at home now", "body": "Nordbrew coffee at home, now!"}, {},
         "headline_body_differ: headline and body 1.00 alike"),
        (GOOD | {"image_prompt": "iced coffee"}, {}, "image_prompt: fewer than 3 words"),
        (GOOD | {"image_prompt": "a glass of #coldbrew"}, {},
         "image_prompt: a hashtag or link is not a picture"),
        (GOOD | {"image_prompt": "Nordbrew makes barista coffee at home"}, {},
         "image_prompt: 1.00 alike to the body"),
    ],
)  # fmt: skip
def test_each_rule_refuses_the_output_that_breaks_it(output, fields, reason):
    assert parse(output, **fields) == (None, reason)


def test_claims_the_brief_makes_are_allowed():
    assert parse(GOOD | {"body": "Nordbrew: barista coffee at home in 30 seconds."})[1] == ""  # key message
    assert parse(GOOD | {"cta": "Try it free"}, claims=["free delivery", "$4.99 a bottle"])[1] == ""
    assert (
        parse(GOOD | {"body": "Nordbrew: barista coffee for $4.99 a bottle."}, claims="$4.99 a bottle")[1]
        == ""
    )
    assert parse(GOOD | {"body": "Nordbrew serves 10,000 offices."}, claims=["10000 offices"])[1] == ""


def test_names_in_another_script_do_not_decide_the_language():
    """An Arabic brand and a Japanese product in English copy: the copy is read without them."""
    names = {"brand": "نور", "product": "さくら茶 green tea", "key_message": "Calm green tea for the evening"}
    copy = {
        "headline": "Calm evenings with نور",
        "cta": "Shop now",
        "image_prompt": "a cup of green tea at dusk",
        "body": "نور さくら茶 green tea brings a quiet, calm evening to your busy week at home.",
    }
    checked, reason = parse(copy, **names)
    assert reason == "" and checked["checks"]["language"] == "passed"


def test_a_field_over_its_limit_is_refused_even_by_one_character():
    """The grammar lets a field run one past its limit: that is a cut, never stored."""
    assert parse(GOOD | {"headline": "x" * 31})[1].startswith("channel_limits: headline")
    assert parse(GOOD | {"headline": "Nordbrew " + "x" * 21})[1] == ""


def test_near_duplicate_variants_are_refused_and_scored():
    sibling = "Cold brew in seconds Nordbrew makes barista coffee at home. Shop now"
    assert parse(GOOD, [sibling]) == (None, "distinct: 1.00 similar to another variant")
    other = "Rain jackets for hikers PeakGear keeps you dry. Learn more"
    copy, _ = parse(GOOD, [other])
    assert copy is not None and copy["checks"]["distinct"] == "passed"
    assert copy["similarity"] == similarity(copy_text(GOOD), other) < 0.8


def test_languages_the_model_does_not_write_are_not_checked():
    copy, reason = parse(GOOD, language="fr")
    assert reason == "" and copy["checks"]["language"] == "skipped: the text model writes en, not fr"


def test_unusable_output_is_refused_with_its_reason():
    assert parse(GOOD, finish="length") == (None, "output: cut off at max_tokens")
    assert parse_copy(job(), Completion('{"headline": "x"', "stop", 0, 0), [], Sampling("m"))[1].startswith(
        "output: invalid JSON"
    )


def test_brands_the_grammar_cannot_hold_are_only_checked():
    assert brand_in_grammar("M&S Café") and not brand_in_grammar('Joe\'s "Best" Bakery')
    assert "Mention Joe's" in job(brand='Joe\'s "Best" Bakery').messages[1]["content"]


MIXED = [
    "Nordbrew makes barista coffee at home in thirty seconds. Shop now",
    "Nordbrew macht Kaffee wie beim Barista, zu Hause und in dreißig Sekunden.",
    "Nordbrew prepara café de barista en casa en treinta segundos. Compra ahora",
    "Nordbrew prépare un café de barista à la maison en trente secondes. Achetez",
    "ノルドブリューは30秒で自宅でバリスタのコーヒーを作ります。今すぐ購入",
    "نوردبرو يصنع قهوة الباريستا في المنزل خلال ثلاثين ثانية. تسوق الآن",
    "STAY DRY ON EVERY TRAIL WITH PEAKGEAR",  # all capitals: py3langid lowers them
    "Cold brew. Kalter Kaffee. Café frío.",
    "!!!",  # no features: every language at the floor
    "",
]


@pytest.mark.parametrize("wanted", ["en", "de", "ja", "xx"])
def test_language_margins_equal_py3langid_rank(wanted: str):
    import py3langid

    got = language_margins(MIXED, [wanted] * len(MIXED))
    for text, (top, margin) in zip(MIXED, got, strict=True):
        scores = dict(py3langid.rank(text))
        best = max(scores, key=lambda lang: scores[lang])
        assert top == best, text
        # py3langid sums in float32, the batch in float64: a margin may differ by py3langid's rounding, ~1e-7
        # of the scores (5.6e-6 on a margin of 4.86 between scores of -136), so 1e-6 of the margin or score.
        expected = scores[best] - scores.get(wanted, float("-inf"))
        assert margin == pytest.approx(expected, rel=1e-6, abs=1e-6 * abs(scores[best])), text


def test_precomputed_language_gives_the_same_checks():
    rules = BrandRules("Nordbrew")
    german = GOOD | {"body": "Nordbrew macht Kaffee wie beim Barista, zu Hause und in dreißig Sekunden."}
    copies = [GOOD, german, GOOD | {"headline": "Hi", "body": "Nordbrew."}]
    known = language_margins([language_text(c) for c in copies], ["en"] * len(copies))
    for fields, language in zip(copies, known, strict=True):
        batched = check_copy(fields, "display", rules, frozenset({"en"}), [], 0.8, language)
        assert batched == check_copy(fields, "display", rules, frozenset({"en"}), [], 0.8)
    assert check_copy(german, "display", rules, frozenset({"en"}), [], 0.8, known[1])[1] == (
        "language: reads as de, the brief asks for en"
    )


def test_similarity_refuses_near_duplicates_and_keeps_rewordings():
    text = "Cold brew in seconds Nordbrew makes barista coffee at home. Shop now"
    near = "Cold brew in seconds! Nordbrew makes barista coffee at home, fast. Shop now"
    reworded = "Skip the cafe queue Pour, stir, sip: Nordbrew is your home barista. Order now"
    assert similarity(text, near) > 0.8 > similarity(text, reworded)
    fields = {
        "headline": "Cold brew in seconds",
        "body": "Nordbrew makes barista coffee at home.",
        "cta": "Shop now",
    }
    assert max_sibling_similarity(fields, []) is None
    assert max_sibling_similarity(fields, [reworded, near]) == similarity(text, near)
    assert max_sibling_similarity(fields, [reworded]) == similarity(text, reworded)


# The real engine, given briefs that provoke each rule.


@pytest.fixture(scope="module")
def provoked(models_dir: str):
    s = Settings(models_dir=models_dir)
    # No two variants can be this unalike: every variant after the first is refused as too similar.
    rules = replace(s.sampling(), max_similarity=0.0, languages="en,de", candidates=2)
    briefs = [
        brief(brief_id="banned", banned_words=["the", "and", "your", "coffee"], channels=["facebook"]),
        brief(brief_id="variants", channels=["linkedin"], variants=3),
        brief(brief_id="german", language="de", channels=["email"]),
        brief(brief_id="odd-brand", brand='M&S "Café" (Nº1)', channels=["x"]),
        brief(brief_id="odd-grammar-brand", brand="M&S Café (Nº1)", channels=["x"]),
    ]
    jobs = plan_copies(briefs, rules)
    for job in jobs:  # a variant already stored: the first candidate that passes the other rules meets it
        if job.brief_id == "variants":
            job.siblings = ["Nordbrew: an earlier variant of this brief, already stored"]
    text_generator(s.engine())
    return generate_copy.fn(jobs, s.engine(), rules), rules


def refusals(result, brief_id: str) -> set[str]:
    """Which rules refused a sample of this brief: from stored copies' checks and failures' reasons."""
    reasons = [f.reason for f in result.failures if f.brief_id == brief_id]
    for c in result.copies:
        if c.brief_id == brief_id:
            reasons += json.loads(c.checks).get("refused_samples", [])
    return {r.split(":")[0] for r in reasons} | {k for r in reasons for k in re.findall(r"(\w+) ×\d+", r)}


def stored(result, brief_id: str) -> list[dict]:
    return [asdict(c) for c in result.copies if c.brief_id == brief_id]


def test_engine_copy_never_uses_a_banned_word(provoked):
    result, _ = provoked
    banned = ["the", "and", "your", "coffee"]
    assert all(not banned_words_used(c, banned) for c in stored(result, "banned"))
    assert "banned_words" in refusals(result, "banned")


def test_engine_variants_are_distinct(provoked):
    result, _ = provoked
    assert stored(result, "variants") == []  # nothing is unlike the stored variant at max_similarity 0
    assert "distinct" in refusals(result, "variants")


def test_engine_copy_in_the_wrong_language_is_refused(provoked):
    result, _ = provoked  # the offline model writes English for a German brief
    assert stored(result, "german") == []
    assert "language" in refusals(result, "german")


def test_engine_copy_names_the_brand(provoked):
    result, _ = provoked
    for brief_id, brand in [("odd-brand", 'M&S "Café" (Nº1)'), ("odd-grammar-brand", "M&S Café (Nº1)")]:
        for c in stored(result, brief_id):
            assert brand.casefold() in f"{c['headline']} {c['body']}".casefold()
    grammar = stored(result, "odd-grammar-brand")
    assert grammar and grammar[0]["body"].startswith("M&S Café (Nº1)")
    for c in result.copies:
        assert all(v == "passed" or v.startswith("skipped") or v == "trimmed"
                   for k, v in json.loads(c.checks).items() if k != "refused_samples")  # fmt: skip

"""The scorecard and the choice between candidates, on the hashing embedder (no model)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from adforge.tasks.briefs import normalise
from adforge.tasks.copy import _choose, generate_copy, plan_copies
from adforge.tasks.generation import Completion, EngineOptions, Sampling
from adforge.tasks.scoring import HashingEmbedder, mmr_pick, readability

EMBED = HashingEmbedder()
BRIEF = {"brief_id": "b1", "brand": "Nordbrew", "product": "Cold brew coffee concentrate",
         "audience": "busy young professionals", "key_message": "Barista cold brew coffee at home",
         "channels": ["facebook"], "variants": 2}  # fmt: skip
ON_MESSAGE = {"headline": "Cold brew at home", "cta": "Shop now", "image_prompt": "a glass of iced coffee",
              "body": "Nordbrew barista cold brew coffee for busy professionals."}  # fmt: skip
OFF_MESSAGE = ON_MESSAGE | {"body": "Nordbrew keeps your weekends calm and your garden green."}


def test_embeddings_are_unit_length_and_alike_when_words_are_shared():
    a, b, c = EMBED(["cold brew coffee", "Cold brew, coffee!", "rain jackets for hikers"])
    assert np.linalg.norm(a) == pytest.approx(1) and a @ b == pytest.approx(1) and a @ c < 0.2


def test_mmr_prefers_relevance_then_distance_from_what_was_chosen():
    vectors = EMBED(
        ["cold brew coffee at home", "cold brew coffee at home today", "iced coffee for the office"]
    )
    assert mmr_pick([0.9, 0.8, 0.5], vectors, vectors[:0]) == [0, 1, 2]
    # With the first already chosen, its near twin falls behind the different one.
    assert mmr_pick([0.8, 0.5], vectors[1:], vectors[:1])[0] == 1


def test_readability_in_the_languages_textstat_knows():
    easy, hard = (
        "The cat sat. It was fun.",
        "Institutional interoperability necessitates comprehensive standardisation.",
    )
    assert readability(easy, "en") > readability(hard, "en")
    assert readability("猫が座った。", "ja") is None


def jobs(**sampling) -> tuple[list, Sampling]:
    s = Sampling("m", candidates=2, score_model="hashing", **sampling)
    return plan_copies([normalise(BRIEF)], s), s


def candidate(fields: dict) -> tuple[dict, Completion]:
    checked = fields | {"checks": {"distinct": "skipped: first variant"}, "similarity": None}
    return checked, Completion(json.dumps(fields), "stop", 10, 20)


def test_the_most_relevant_passing_candidate_is_kept():
    planned, s = jobs()
    first = planned[:1]
    accepted, vectors = {first[0].group: []}, {first[0].group: EMBED([])}
    [pick] = _choose(first, [[candidate(OFF_MESSAGE), candidate(ON_MESSAGE)]], accepted, vectors, s, EMBED)
    assert pick is not None and pick.fields["body"] == ON_MESSAGE["body"]
    copy, brief = EMBED([f"{ON_MESSAGE['headline']}. {ON_MESSAGE['body']}", first[0].brief_text])
    assert pick.relevance == pytest.approx(float(copy @ brief))
    assert accepted[first[0].group] and len(vectors[first[0].group]) == 1


def test_a_candidate_too_like_a_chosen_variant_gives_way_to_the_next():
    planned, s = jobs()
    group = planned[0].group
    accepted, vectors = {group: []}, {group: EMBED([])}
    picks = _choose(planned, [[candidate(ON_MESSAGE)], [candidate(ON_MESSAGE), candidate(OFF_MESSAGE)]],
                    accepted, vectors, s, EMBED)  # fmt: skip
    assert picks[0].fields["body"] == ON_MESSAGE["body"]
    assert picks[1].fields["body"] == OFF_MESSAGE["body"]  # the twin of variant 1 was refused
    assert picks[1].fields["checks"]["distinct"] == "passed" and picks[1].fields["similarity"] < 0.8
    assert planned[1].reasons == ["distinct: 1.00 similar to another variant"]


def test_no_passing_candidate_means_a_new_sample(settings):
    planned, s = jobs()
    assert _choose(planned[:1], [[]], {planned[0].group: []}, {planned[0].group: EMBED([])}, s, EMBED) == [
        None
    ]


def test_candidates_per_job_in_one_pass(settings):
    """The fake writes `candidates` completions per request: every token is counted, one copy kept."""
    _, s = jobs(attempts=1)
    s = replace(s, candidates=3)
    engine = EngineOptions(model="m", text_generator=settings.text_generator, score_model="hashing")
    result = generate_copy.fn(plan_copies([normalise(BRIEF)], s), engine, s)
    assert len(result.copies) == 2 and all(c.candidates == 3 for c in result.copies)
    assert result.output_tokens > sum(c.output_tokens for c in result.copies)
    assert all(
        c.relevance is not None and c.score_model == "hashing" and len(c.embedding) == 256
        for c in result.copies
    )

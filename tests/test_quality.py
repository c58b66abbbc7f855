"""Quality measures of stored copy, each provoked by copy made to break it; `adforge quality --against`
on two runs of the flow; the scores on the report page."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adforge.flows.cli import main
from adforge.flows.generate_campaigns import generate_campaigns
from adforge.flows.settings import Settings
from adforge.tasks.quality import BROKEN, compare, quality_report, rule_outcomes
from adforge.tasks.report import render_report
from adforge.tasks.rules import banned_words_used, brand_present, cut_at_limit, similarity, within_limits
from adforge.tasks.sample_briefs import COLUMNS, SAMPLE_BRIEFS

MESSAGES = [
    {"role": "system", "content": "You are a copywriter. Reply with a JSON object and nothing else."},
    {"role": "user", "content": "Brand: Nordbrew\nProduct: cold brew\nWrite one ad for the channel."},
]
BRIEF = {"brand": "Nordbrew", "banned_words": ["cheap"], "language": "en", "product": "cold brew",
         "audience": "busy commuters", "key_message": "Coffee in 30 seconds", "tone": "upbeat",
         "claims": ["free delivery"]}  # fmt: skip
GOOD = BRIEF | {"brief_id": "b1", "brief_hash": "h1", "channel": "display", "headline": "Nordbrew cold brew",
        "body": "Nordbrew: coffee in 30 seconds, with free delivery.", "cta": "Shop now",
        "image_prompt": "a glass of iced coffee on a sunny windowsill", "attempts": 1,
        "prompt": json.dumps(MESSAGES), "relevance": 0.5, "diversity": None, "readability": 70.0,
        "candidates": 4, "output_tokens": 40, "checks": "{}"}  # fmt: skip
BREAKS = {  # each new measure, and a change to GOOD that breaks its rule and only it
    "brand not named (%)": {"headline": "Cold brew for you", "body": "Coffee in 30 seconds, free delivery."},
    "below channel minimum (%)": {"channel": "email"},  # email asks for 120 characters of body
    "unsupported claim (%)": {"body": "Nordbrew: the best coffee in 10 seconds."},
    "echoes the prompt (%)": {"body": "Nordbrew: write one ad for the channel in 30 seconds."},
    "headline like body (%)": {"headline": "Nordbrew coffee 30 secs", "body": "Nordbrew: coffee, 30 secs."},
    "image prompt not a picture (%)": {"image_prompt": "Nordbrew cold brew"},  # the headline
}


def test_banned_words_are_whole_words_in_any_case():
    assert banned_words_used(GOOD | {"body": "CHEAP coffee, cheap!"}, ["cheap"]) == ["cheap"]
    assert banned_words_used(GOOD | {"body": "The cheapest coffee"}, ["cheap"]) == []
    assert banned_words_used(GOOD | {"cta": "Go cold-brew"}, ["cold-brew", "hot"]) == ["cold-brew"]


def test_brand_must_be_in_headline_or_body():
    assert brand_present(GOOD, "nordbrew")
    assert not brand_present(GOOD | {"headline": "Cold brew", "body": "x", "cta": "Nordbrew now"}, "Nordbrew")


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
    copies = [GOOD, GOOD | {"headline": "Cold brew", "body": "Cold brew in 30 seconds.", "attempts": 3},
              GOOD | {"channel": "x"}]  # fmt: skip
    report = quality_report(copies, [{"reason": "headline: too long"}, {"reason": "engine error: boom"}])
    assert report["copies"] == 3 and report["within channel limits (%)"] == 100.0
    assert report["brand present, no banned word (%)"] == pytest.approx(66.7)
    assert report["retries per accepted copy"] == pytest.approx(0.67)
    assert report["max pairwise variant similarity"] > 0.5  # the two display variants share most text
    assert (report["failures: headline"], report["failures: engine error"]) == (1, 1)
    assert report["copy failures"] == 2


def test_ads_of_different_segments_are_compared_apart_from_variants():
    runners = GOOD | {"segment_id": "runners", "body": "Nordbrew fuels a dawn run, cold and ready."}
    nurses = GOOD | {"segment_id": "nurses", "body": "Nordbrew for the end of a night shift, smooth."}
    report = quality_report([nurses, nurses | {"headline": "Calm after the shift"}, runners], [])
    assert report["mean pairwise variant similarity"] > 0.5, "the two nurses' variants, and only they"
    assert 0 < report["mean cross-segment similarity"] < report["mean pairwise variant similarity"]
    assert quality_report([GOOD], [])["mean cross-segment similarity"] is None


def test_good_copy_passes_every_rule():
    assert all(not outcome.startswith("failed") for outcome in rule_outcomes(GOOD).values())
    assert all(quality_report([GOOD], [])[measure] == 0.0 for measure in BREAKS)


@pytest.mark.parametrize("measure", BREAKS)
def test_each_rule_is_measured_again(measure: str):
    report = quality_report([GOOD, GOOD | BREAKS[measure]], [])
    assert report[measure] == 50.0
    assert [m for m in BROKEN if report[m]] == [measure], "the change breaks that rule alone"


def test_copy_from_before_prompts_and_claims_were_stored_is_measured():
    old = GOOD | {"prompt": None, "claims": None, "candidates": None, "relevance": None, "readability": None}
    report = quality_report([old], [])
    assert report["echoes the prompt (%)"] == 0.0  # unknown prompt: the rule is skipped
    assert report["unsupported claim (%)"] == 100.0  # "free" is only in the brief's claims
    assert report["mean relevance"] is report["candidates per copy"] is report["mean readability"] is None


def test_scores_tokens_candidates_and_refusals():
    refused = json.dumps({"refused_samples": ["claims: '10' not in the brief", "claims: x", "no_echo: y"]})
    copies = [GOOD, GOOD | {"relevance": 0.25, "diversity": 0.4, "readability": None, "candidates": 2,
                            "output_tokens": 50, "checks": refused}]  # fmt: skip
    report = quality_report(copies, [{"reason": "claims: 'best' not in the brief"}])
    scores = ["mean relevance", "mean diversity", "mean readability", "candidates per copy"]
    assert [report[m] for m in scores] == [0.375, 0.4, 70.0, 3.0] and report["output tokens per copy"] == 45.0
    counts = ["retries for: claims", "retries for: no_echo", "failures: claims"]
    assert [report[m] for m in counts] == [2, 1, 1]


def test_no_copies_has_every_measure_unscored():
    report = quality_report([], [{"reason": "claims: x"}])
    assert report["copies"] == 0 and report["copy failures"] == 1 and report["mean relevance"] is None
    assert report.keys() == quality_report([GOOD], [{"reason": "claims: x"}]).keys()


def test_compare_takes_the_change_of_numbers():
    a = {"copies": 2, "mean relevance": 0.5, "mean readability": None, "failures: claims": 1}
    b = {"copies": 3, "mean relevance": 0.25, "mean readability": 60.0, "retries for: echo": 2}
    assert compare(a, b) == [("copies", 2, 3, 1), ("mean relevance", 0.5, 0.25, -0.25),
                             ("mean readability", None, 60.0, None), ("failures: claims", 1, 0, -1),
                             ("retries for: echo", 0, 2, 2)]  # fmt: skip


@pytest.fixture
def two_runs(settings: Settings, tmp_path: Path) -> tuple[str, str, str]:
    """A DuckDB file with two runs of the flow on the fake generators, their seeds different."""
    briefs = [dict(zip(COLUMNS, row, strict=True)) | {"channels": ["x", "email"], "variants": 2}
              for row in SAMPLE_BRIEFS[:2]]  # fmt: skip
    pq.write_table(pa.Table.from_pylist(briefs), tmp_path / "briefs.parquet")
    files = [str(tmp_path / "briefs.parquet")]
    runs = [generate_campaigns(briefs=files, settings=settings.to_dict() | {"seed": s}) for s in (1, 2)]
    assert [r["copies"] for r in runs] == [8, 8]
    return settings.db, runs[0]["run_id"], runs[1]["run_id"]


def measures(out: str) -> dict[str, list[str]]:
    """The printed table by measure: its other columns, split on runs of two spaces."""
    lines = [[cell.strip() for cell in line.split("  ") if cell.strip()] for line in out.splitlines()]
    return {cells[0]: cells[1:] for cells in lines}


def test_quality_compares_two_runs(two_runs: tuple[str, str, str], capsys: pytest.CaptureFixture[str]):
    db, a, b = two_runs
    assert main(["quality", "--db", db, "--run", a, "--against", b]) == 0
    table = measures(capsys.readouterr().out)
    assert table["measure"] == [a, b, "change"]
    assert table["copies"] == ["8", "8", "0"]
    assert table["within channel limits (%)"] == ["100.0", "100.0", "0"]
    for name in ("unsupported claim (%)", "echoes the prompt (%)", "headline like body (%)"):
        assert table[name] == ["0.0", "0.0", "0"], name
    x, y, change = table["mean relevance"]
    assert float(change) == pytest.approx(float(y) - float(x))
    assert table["mean readability"][:2] != ["n/a", "n/a"] and len(table["mean diversity"]) == 3
    for run in (a, b):
        assert main(["quality", "--db", db, "--run", run]) == 0
        single = measures(capsys.readouterr().out)
        assert single["copies"] == ["8"] and single["mean relevance"] == [table["mean relevance"][run == b]]


def test_quality_refuses_a_missing_run_or_against_alone(
    two_runs: tuple[str, str, str], capsys: pytest.CaptureFixture[str]
):
    db, a, _ = two_runs
    for args in (["--run", a, "--against", "run-nope"], ["--run", "run-nope"]):
        assert main(["quality", "--db", db, *args]) == 1
        out, err = capsys.readouterr()
        assert out == "" and err == "adforge: error: no run 'run-nope' in the database\n"
    assert main(["quality", "--db", db, "--against", a]) == 2
    err = capsys.readouterr().err
    assert err.startswith("adforge: error: --against needs --run") and err.count("\n") == 1


def test_report_page_shows_scores_escaped():
    checks = {"claims": "passed", "no_echo": "failed: <b>x</b>", "refused_samples": ["<i>: a", "<i>: b"]}
    asset = {"brand": "Nordbrew", "brief_id": "b1", "channel": "x", "variant": 1, "headline": "h",
             "body": "b", "cta": "Shop now", "creative_paths": [], "image_paths": [],
             "checks": json.dumps(checks), "attempts": 3, "similarity": None, "relevance": 0.4567,
             "diversity": None, "readability": 64.6}  # fmt: skip
    page = render_report({"run_id": "run-1"}, [asset], [], [], "/r/reports")
    assert "relevance 0.46 · diversity – · readability 65 · failed: no_echo" in page
    assert "refused samples: &lt;i&gt; 2" in page and "<i>" not in page

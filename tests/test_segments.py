"""Audience segments and locales: reading them, planning one ad per segment and locale, the locale rules
(on the fake generator) and the coverage view."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from itertools import pairwise
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adforge.flows.cli import main
from adforge.flows.generate_campaigns import generate_campaigns
from adforge.flows.settings import Settings
from adforge.tasks.ad_sets import SOURCES, limits_refusal
from adforge.tasks.briefs import RowError, normalise, read_briefs, read_segments, segment_files
from adforge.tasks.copy import brief_slices, generate_copy, jobs_per_brief, plan_copies
from adforge.tasks.domain import FailureKind
from adforge.tasks.ids import make_id
from adforge.tasks.sample_briefs import SEGMENTS

BRIEF = {"brief_id": "b1", "brand": "Nordbrew", "product": "Cold brew", "audience": "coffee drinkers",
         "key_message": "Barista coffee at home", "channels": ["x"], "variants": 2}  # fmt: skip
SEGMENT_ROWS = [
    {"segment_id": "nurses", "name": "Night nurses", "description": "nurses ending a night shift",
     "age_range": "25-45", "interests": ["health", "sleep"]},
    {"segment_id": "runners", "name": "Runners", "description": "runners before a morning run",
     "age_range": "18-35", "interests": ["running"]},
    {"segment_id": "remote", "name": "Remote workers", "description": "people working from home",
     "age_range": None, "interests": None},
]  # fmt: skip


def write(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def test_segments_a_brief_describes_are_its_own():
    plain = normalise(BRIEF)
    brief = normalise(BRIEF | {"segments": ["nurses ending a night shift", " remote workers "]})
    assert [s.description for s in brief.segments] == ["nurses ending a night shift", "remote workers"]
    assert brief.segments[0].segment_id == make_id("segment", "nurses ending a night shift")
    assert brief.brief_hash == plain.brief_hash, "segments are in their ads' ids, not in the brief's hash"
    assert "segments" not in brief.record() and "locales" not in brief.record()


def test_a_segments_file_beside_the_briefs_is_found_and_not_read_as_briefs(tmp_path: Path):
    write(tmp_path / "drop" / "briefs.parquet", [BRIEF | {"segments": ["nurses", "runners"]}])
    write(tmp_path / "drop" / "segments.parquet", SEGMENT_ROWS)
    files = segment_files([tmp_path / "drop"])
    assert files == [tmp_path / "drop" / "segments.parquet"]
    segments = read_segments(files)
    assert list(segments.segments) == ["nurses", "runners", "remote"] and segments.digest
    attributes = json.loads(segments.segments["nurses"].attributes)
    assert attributes == {"age_range": "25-45", "interests": ["health", "sleep"]}
    assert segments.segments["remote"].attributes is None
    read = read_briefs.fn([tmp_path / "drop"], segments=segments.segments)
    assert read.rejected_files == [] and [f.path for f in read.files] == [
        str(tmp_path / "drop" / "briefs.parquet")
    ]
    assert [s.name for s in read.briefs[0].segments] == ["Night nurses", "Runners"]
    assert "(age_range: 25-45" in read.briefs[0].segments[0].prompt_line()


def test_an_unknown_segment_id_rejects_only_its_row_naming_the_field(tmp_path: Path):
    rows = [BRIEF | {"segments": ["nurses"]}, BRIEF | {"brief_id": "b2", "segments": ["nurzes"]}]
    briefs = write(tmp_path / "b" / "briefs.parquet", rows)
    segments = read_segments([write(tmp_path / "seg.parquet", SEGMENT_ROWS)]).segments
    read = read_briefs.fn([briefs], segments=segments)
    assert [b.brief_id for b in read.briefs] == ["b1"]
    [rejected] = read.rejected
    assert (rejected.source_row, rejected.reason) == (1, "segments: unknown segment id 'nurzes' (not in the "
                                                         "segments file)")  # fmt: skip


def test_a_bad_segments_row_is_left_out_with_its_row_and_field(tmp_path: Path):
    rows = [*SEGMENT_ROWS, SEGMENT_ROWS[0] | {"segment_id": "x", "description": "   "}, SEGMENT_ROWS[1]]
    read = read_segments([write(tmp_path / "segments.parquet", rows)])
    assert list(read.segments) == ["nurses", "runners", "remote"]
    path = tmp_path / "segments.parquet"
    assert read.notes == [
        f"{path} row 3: description: empty (no visible characters) (segment left out)",
        f"{path} row 4: segment_id: 'runners' appears twice (segment left out)",
    ]


def test_a_missing_segments_file_is_named(tmp_path: Path):
    with pytest.raises(Exception, match="segments file: no such file"):
        segment_files([tmp_path], str(tmp_path / "nope.parquet"))


@pytest.mark.parametrize(("given", "expected"), [
    ("es_mx", "es-MX"), ("EN-us", "en-US"), ("ja", "ja"), ("zh-hant-tw", "zh-Hant-TW"), ("es-419", "es-419"),
])  # fmt: skip
def test_locales_are_spelled_one_way(given: str, expected: str):
    assert normalise(BRIEF | {"locales": [given]}).locales == [expected]


@pytest.mark.parametrize(("given", "message"), [
    ("klingon-ish", "locales: 'klingon-ish' is not a locale such as en-US or es-MX"),
    ("xx-US", "locales: 'xx-US': unknown language 'xx'"),
    ("en-QQ", "locales: 'en-QQ': unknown region 'QQ'"),
])  # fmt: skip
def test_a_bad_locale_names_the_field(given: str, message: str):
    with pytest.raises(RowError) as e:
        normalise(BRIEF | {"locales": ["en-US", given]})
    assert str(e.value) == message


def test_banned_words_per_locale_from_a_map_or_json():
    as_map = normalise(
        BRIEF | {"locales": ["en-US", "es-MX"], "locale_banned_words": [("es_mx", ["Barato"])]}
    )
    as_json = normalise(BRIEF | {"locales": ["en-US", "es-MX"], "locale_banned_words": '{"es-MX": "barato"}'})
    assert as_map.locale_banned_words == as_json.locale_banned_words == {"es-MX": ["barato"]}
    with pytest.raises(RowError, match="locale_banned_words: de-DE is not one of the brief's locales"):
        normalise(BRIEF | {"locales": ["en-US"], "locale_banned_words": {"de-DE": ["billig"]}})


def test_each_segment_and_locale_gets_its_own_ads():
    brief = normalise(BRIEF | {"segments": ["a", "b", "c"], "locales": ["en-US", "es-MX"]})
    jobs = plan_copies([brief], Settings().sampling())
    assert len(jobs) == 3 * 2 * 2 == len({j.copy_id for j in jobs}) == len({j.seed for j in jobs})
    groups = {j.group for j in jobs}
    assert len(groups) == 6 and all(sum(j.group == g for j in jobs) == 2 for g in groups)
    spanish = [j for j in jobs if j.locale == "es-MX"]
    assert {j.rules.language for j in spanish} == {"es"} and {j.locale for j in jobs} == {"en-US", "es-MX"}
    prompt = spanish[0].messages[1]["content"]
    assert "Write for this audience segment: a" in prompt and "Locale: es-MX (Spanish, Mexico)" in prompt
    assert jobs_per_brief(brief) == len(jobs) and jobs_per_brief(normalise(BRIEF)) == 2


def test_briefs_are_planned_in_slices_that_never_split_a_brief():
    briefs = [normalise(BRIEF | {"brief_id": f"b{i}", "segments": ["a", "b"][: i % 2 + 1]}) for i in range(5)]
    slices = list(brief_slices(briefs, 5))
    assert [b for part in slices for b in part] == briefs
    sizes = [sum(map(jobs_per_brief, part)) for part in slices]
    assert all(size >= 5 for size in sizes[:-1])
    assert sum(sizes) == len(plan_copies(briefs, Settings().sampling()))


def test_ids_of_briefs_without_segments_or_locales_are_as_before():
    sampling = Settings().sampling()
    [job] = plan_copies([normalise(BRIEF | {"variants": 1})], sampling)
    assert job.copy_id == make_id("copy", job.brief_hash, "x", 1, asdict(sampling))
    assert (job.segment_id, job.locale) == (None, "en")


def test_a_changed_segment_or_a_new_locale_leaves_the_other_ads_alone(tmp_path: Path):
    sampling = Settings().sampling()
    row = BRIEF | {"segments": ["nurses", "runners"], "locales": ["en-US"]}
    before = read_segments([write(tmp_path / "a.parquet", SEGMENT_ROWS)]).segments
    changed = [SEGMENT_ROWS[0], SEGMENT_ROWS[1] | {"description": "runners after an evening run"}]
    after = read_segments([write(tmp_path / "b.parquet", changed)]).segments
    old = {j.copy_id: j.segment_id for j in plan_copies([normalise(row, segments=before)], sampling)}
    new = {j.copy_id: j.segment_id for j in plan_copies([normalise(row, segments=after)], sampling)}
    assert {s for i, s in new.items() if i in old} == {"nurses"} and len(new) == len(old) == 4
    more = plan_copies([normalise(row | {"locales": ["en-US", "de-DE"]}, segments=before)], sampling)
    assert old.keys() < {j.copy_id for j in more}, "a new locale adds ads and keeps the others"


def test_the_prompts_of_one_brief_and_channel_follow_each_other_and_share_their_start():
    row = BRIEF | {"channels": ["x", "email"], "segments": ["a", "b"], "locales": ["en-US", "fr-FR"]}
    prompts = [
        (j.channel, j.messages[1]["content"]) for j in plan_copies([normalise(row)], Settings().sampling())
    ]
    assert [channel for channel, _ in prompts] == ["x"] * 8 + ["email"] * 8
    for (channel, a), (other, b) in pairwise(prompts):
        if channel == other:  # everything before the segment is the same: the engine's prefix cache has it
            assert len(_common(a, b)) >= a.index("Write for this audience segment") > 300


def _common(a: str, b: str) -> str:
    n = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return a[:n]


def fake_jobs(languages: str, **brief: object) -> tuple[list, object, object]:
    s = Settings(text_generator="fakes:FakeText", score_model="hashing", copy_candidates=2,
                 text_model_languages=languages)  # fmt: skip
    row = (
        BRIEF
        | {"segments": ["nurses ending a night shift", "runners"], "locales": ["en-US", "es-MX"]}
        | brief
    )
    return plan_copies([normalise(row)], s.sampling()), s.engine(), s.sampling()


def test_a_locale_the_model_does_not_write_is_a_failure_saying_so():
    jobs, engine, sampling = fake_jobs("en")
    result = generate_copy.fn(jobs, engine, sampling)
    assert {(c.locale, c.segment_id is not None) for c in result.copies} == {("en-US", True)}
    assert len(result.copies) == 4 and len(result.failures) == 4
    for f in result.failures:
        assert (f.kind, f.locale, f.attempts) == (FailureKind.LOCALE, "es-MX", 0)
        assert f.reason.startswith("locale es-MX: the text model writes en, not es; set text_model")
        assert f.segment_id and f.brief_hash == jobs[0].brief_hash


def test_copy_for_a_locale_is_checked_in_its_language_with_its_banned_words():
    jobs, engine, sampling = fake_jobs("en,es")
    result = generate_copy.fn(jobs, engine, sampling)
    spanish = [c for c in result.copies if c.locale == "es-MX"]
    assert len(spanish) == 4 and all(json.loads(c.checks)["language"] == "passed" for c in spanish)
    assert all("hábito" in c.body or "que" in c.body for c in spanish), "the fake wrote Spanish"
    # Every Spanish clause of the fake has "que": banned for es-MX, every Spanish ad is refused, no English.
    jobs, engine, sampling = fake_jobs("en,es", locale_banned_words={"es-MX": ["que"]})
    result = generate_copy.fn(jobs, engine, sampling)
    assert {c.locale for c in result.copies} == {"en-US"} and len(result.copies) == 4
    assert {f.locale for f in result.failures} == {"es-MX"}
    assert all("banned_words: uses que" in f.reason for f in result.failures)
    wrong = replace(jobs[0], rules=replace(jobs[0].rules, language="de"))  # English copy, a German locale
    refused = generate_copy.fn([wrong], engine, replace(sampling, languages="en,de", attempts=1))
    assert "language: reads as en, the brief asks for de" in refused.failures[0].reason


def test_double_width_text_counts_twice_where_the_platform_says_so():
    headline = SOURCES["google_search"][0]
    assert limits_refusal("google_search", headline, "毎日をもっと良くする新しい習慣の一杯") == (
        "headlines[1]: 36 characters as google_search counts them, the limit is 30"
    )
    assert limits_refusal("google_search", headline, "Every day a little better cup") == ""


@pytest.fixture
def coverage(sample_db) -> list[dict]:
    _, db, _ = sample_db
    with duckdb.connect(db, read_only=True) as con:
        copy_id = con.execute("SELECT copy_id FROM copies WHERE brief_id = 'nordbrew-01' AND channel = 'x' "
                              "ORDER BY copy_id LIMIT 1").fetchone()[0]  # fmt: skip
    with duckdb.connect(db) as con:
        decision = (
            "INSERT INTO reviews VALUES ('review-1', ?, 'approved', NULL, NULL, NULL, NULL, 'kim', now())"
        )
        con.execute(decision, [copy_id])
        return (
            con.execute("SELECT * FROM v_coverage WHERE campaign_id = 'spring-24' ORDER BY ALL")
            .fetch_arrow_table()
            .to_pylist()
        )


def test_the_coverage_view_answers_which_segment_locale_and_channel_is_covered(coverage: list[dict]):
    nordbrew = [r for r in coverage if r["brief_id"] == "nordbrew-01"]
    assert len(nordbrew) == len(SEGMENTS["nordbrew-01"]) * 2 * 2  # segments × locales × channels
    assert {r["segment_name"] for r in nordbrew} == set(SEGMENTS["nordbrew-01"])
    spanish = [r for r in nordbrew if r["locale"] == "es-MX"]
    assert {r["coverage"] for r in spanish} == {"failed"} and all(r["failed"] == 1 for r in spanish)
    assert all(r["failure_reasons"][0].startswith("locale es-MX: the text model writes en") for r in spanish)
    english = {(r["segment_name"], r["channel"]): r for r in nordbrew if r["locale"] == "en-US"}
    x = [english[segment, "x"] for segment in SEGMENTS["nordbrew-01"]]
    assert sorted(r["coverage"] for r in x) == ["approved", "awaiting_review", "awaiting_review"]
    # The fake's captions run past Instagram's primary text: rule failures, named as such.
    for r in english.values():
        assert r["pending"] + r["approved"] + r["failed"] == 1
        assert r["coverage"] != "failed" or r["failure_reasons"][0].startswith("set: primary_text")


def test_assets_and_segments_carry_the_new_dimensions(sample_db):
    summary, db, _ = sample_db
    with duckdb.connect(db, read_only=True) as con:
        assets = con.execute("SELECT segment_id, segment_name, locale FROM v_assets").fetchall()
        stored = con.execute("SELECT count(*) FROM segments").fetchone()[0]
    assert stored == sum(map(len, SEGMENTS.values()))
    assert len(assets) == summary["copies"] and all(seg and name and locale for seg, name, locale in assets)


def test_a_changed_segments_file_writes_only_that_segments_ads(settings, tmp_path: Path):
    drop = tmp_path / "drop"
    write(drop / "briefs.parquet", [BRIEF | {"segments": ["nurses", "runners"], "variants": 1}])
    write(drop / "segments.parquet", SEGMENT_ROWS)
    first = generate_campaigns(briefs=[str(drop)], settings=settings.to_dict())
    write(drop / "segments.parquet", [SEGMENT_ROWS[0], SEGMENT_ROWS[1] | {"description": "runners at dusk"}])
    second = generate_campaigns(briefs=[str(drop)], settings=settings.to_dict())
    assert (first["copies"], second["copies"]) == (2, 1)
    with duckdb.connect(settings.db, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM segments WHERE segment_id = 'runners'").fetchone()[0] == 2


def test_an_unusable_segments_file_stops_the_run_before_it_starts(tmp_path: Path, capsys):
    briefs = write(tmp_path / "briefs.parquet", [BRIEF])
    assert main(["run", str(briefs), "--segments", str(tmp_path / "nope.parquet")]) == 2
    assert capsys.readouterr().err.strip().endswith("nope.parquet: segments file: no such file")
    write(tmp_path / "segments.parquet", [{"segment_id": "a", "name": "A"}])  # no description column
    assert main(["run", str(briefs)]) == 2
    assert "segments.parquet: missing required column 'description'" in capsys.readouterr().err

"""The brief contract: every rejection reason, file-level errors, and the column types writers produce."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adforge.tasks.briefs import BriefFileError, read_briefs
from adforge.tasks.sample_briefs import SAMPLE_BRIEFS, write_sample_briefs

GOOD = {"brief_id": "b1", "brand": "Acme", "product": "Anvil", "audience": "coyotes", "key_message": "Heavy."}


def write(path: Path, rows: list[dict]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def read_one(tmp_path: Path, **changes) -> tuple[list[dict], list[dict]]:
    row = {**GOOD, **changes}
    result = read_briefs.fn([write(tmp_path / "briefs.parquet", [row, {**GOOD, "brief_id": "ok"}])])
    return result.briefs, result.rejected


def test_defaults_are_filled(tmp_path: Path):
    briefs, rejected = read_one(tmp_path)
    assert rejected == []
    b = briefs[0]
    assert (b.tone, b.channels, b.variants, b.images_per_copy, b.language) == (
        "friendly", ["instagram"], 3, 1, "en"
    )  # fmt: skip
    assert b.banned_words == [] and b.metadata is None


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"brand": None}, "brand: missing"),
        ({"key_message": "   "}, "key_message: empty"),
        ({"brief_id": ""}, "brief_id: empty"),
        ({"channels": ["instagram", "tiktok"]}, "channels: unknown channel 'tiktok'"),
        ({"channels": []}, "channels: empty"),
        ({"variants": 11}, "variants: 11 is outside 1..10"),
        ({"variants": 0}, "variants: 0 is outside 1..10"),
        ({"images_per_copy": 5}, "images_per_copy: 5 is outside 0..4"),
        ({"variants": "three"}, "variants: expected a whole number"),
        ({"key_message": "x" * 2001}, "key_message: 2001 characters, at most 2000"),
    ],
)
def test_each_rejection_names_the_field(tmp_path: Path, changes: dict, reason: str):
    briefs, rejected = read_one(tmp_path, **changes)
    assert [b.brief_id for b in briefs] == ["ok"], "the valid row is still processed"
    assert len(rejected) == 1
    assert rejected[0].reason.startswith(reason)
    assert rejected[0].source_row == 0
    assert rejected[0].source_file.endswith("briefs.parquet")


def test_wrong_column_type_rejects_rows_not_the_file(tmp_path: Path):
    path = write(
        tmp_path / "b.parquet", [{**GOOD, "audience": 42}, {**GOOD, "brief_id": "b2", "audience": 7}]
    )
    result = read_briefs.fn([path])
    assert result.briefs == []
    assert [r.reason for r in result.rejected] == ["audience: expected text, got int"] * 2


def test_duplicate_brief_id_across_files(tmp_path: Path):
    a = write(tmp_path / "a.parquet", [GOOD])
    b = write(tmp_path / "b.parquet", [{**GOOD, "brand": "Other"}])
    result = read_briefs.fn([a, b])
    assert [x.brand for x in result.briefs] == ["Acme"]
    assert result.rejected[0].reason == f"brief_id: duplicate of row 0 of {a}"
    assert result.rejected[0].brief_id == "b1"


def test_channels_as_comma_separated_string_and_extra_columns_as_metadata(tmp_path: Path):
    briefs, _ = read_one(tmp_path, channels="X, google_search,x", budget=1200)
    assert briefs[0].channels == ["x", "google_search"]
    assert briefs[0].metadata == '{"budget": 1200}'


def test_pandas_and_arrow_column_types(tmp_path: Path):
    df = pd.DataFrame(
        {**{k: [v, v + "2"] for k, v in GOOD.items()}, "variants": [2, None], "channels": ["x", None]}
    )
    df["brief_id"] = ["p1", "p2"]
    df.to_parquet(tmp_path / "pandas.parquet")  # variants becomes float64 with NaN
    arrow = pa.table(
        {
            "brief_id": pa.array(["a1"], pa.large_string()),
            "brand": pa.array(["Acme"]).dictionary_encode(),
            "product": ["Anvil"],
            "audience": ["coyotes"],
            "key_message": ["Heavy."],
            "variants": pa.array([4], pa.int32()),
            "images_per_copy": pa.array([None], pa.int64()),
            "tone": pa.array([None], pa.string()),
        }
    )
    pq.write_table(arrow, tmp_path / "arrow.parquet")
    result = read_briefs.fn([tmp_path])
    assert result.rejected == []
    by_id = {b.brief_id: b for b in result.briefs}
    assert by_id["p1"].variants == 2 and by_id["p2"].variants == 3
    assert by_id["p2"].channels == ["instagram"]
    assert by_id["a1"].variants == 4 and by_id["a1"].images_per_copy == 1
    assert by_id["a1"].brand == "Acme" and by_id["a1"].tone == "friendly"


def test_not_parquet_stops_with_file_name(tmp_path: Path):
    bad = tmp_path / "notes.parquet"
    bad.write_text("brief_id,brand\n1,Acme\n")
    with pytest.raises(BriefFileError, match=r"notes\.parquet: not a readable Parquet file"):
        read_briefs.fn([bad])


def test_missing_required_column_stops_with_column_name(tmp_path: Path):
    path = write(tmp_path / "b.parquet", [{k: v for k, v in GOOD.items() if k != "audience"}])
    with pytest.raises(BriefFileError, match=r"b\.parquet: missing required column 'audience'"):
        read_briefs.fn([path])


def test_missing_path(tmp_path: Path):
    with pytest.raises(BriefFileError, match="no such file or directory"):
        read_briefs.fn([tmp_path / "nope.parquet"])


def test_brief_hash_changes_with_content_only(tmp_path: Path):
    first, _ = read_one(tmp_path)
    same, _ = read_one(tmp_path)
    changed, _ = read_one(tmp_path, key_message="Lighter.")
    assert first[0].brief_hash == same[0].brief_hash != changed[0].brief_hash


def test_sample_briefs_cover_every_channel(tmp_path: Path):
    from adforge.tasks.channels import CHANNELS

    assert write_sample_briefs(tmp_path / "s.parquet") == len(SAMPLE_BRIEFS) >= 12
    result = read_briefs.fn([tmp_path / "s.parquet"])
    assert result.rejected == []
    assert {c for b in result.briefs for c in b.channels} == set(CHANNELS)
    assert len({b.brand for b in result.briefs}) >= 4

"""The brief contract: every rejection reason, file-level errors, and the column types writers produce."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import socket
import tempfile
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adforge.flows.settings import load_settings
from adforge.tasks.briefs import BriefFileError, Limits, find_files, read_briefs
from adforge.tasks.sample_briefs import SAMPLE_BRIEFS, write_sample_briefs

GOOD = {"brief_id": "b1", "brand": "Acme", "product": "Anvil", "audience": "coyotes", "key_message": "Heavy."}


def write(path: Path, rows: list[dict]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def read_one(tmp_path: Path, limits: Limits | None = None, **changes) -> tuple[list[dict], list[dict]]:
    row = {**GOOD, **changes}
    path = write(tmp_path / "briefs.parquet", [row, {**GOOD, "brief_id": "ok"}])
    result = read_briefs.fn([path], limits=limits)
    return result.briefs, result.rejected


def bad_utf8(*values: bytes | None) -> pa.Array:
    """A string column holding these bytes as they are, valid UTF-8 or not (pyarrow writes them unchecked)."""
    return pa.array(values, pa.binary()).cast(pa.string(), safe=False)


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
        ({"key_message": "x" * 2001}, "key_message: 2001 characters, more than max_field_chars (2000)"),
        ({"brand": "x" * 201}, "brand: 201 characters, at most 200 allowed"),
        ({"brand": " \u200b\u200d\ufeff\x07\t\u00a0\u3164"}, "brand: empty (no visible characters)"),
        ({"product": "\u202e\u2028\x1b"}, "product: empty"),
        (
            {"banned_words": [f"w{i}" for i in range(101)]},
            "banned_words: 101 items, more than max_list_items (100)",
        ),
        ({"banned_words": ",".join(["w"] * 150)}, "banned_words: 150 items, more than max_list_items (100)"),
        (
            {"banned_words": ["y" * 2001]},
            "banned_words: an item of 2001 characters, more than max_field_chars",
        ),
        (
            {"notes": "n" * 70_000},
            "metadata: 70013 bytes of other columns as JSON, more than max_metadata_bytes",
        ),
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


def test_unusable_files_are_set_aside_and_the_others_read(tmp_path: Path):
    good = write(tmp_path / "good.parquet", [GOOD])
    (tmp_path / "notes.parquet").write_text("brief_id,brand\n1,Acme\n")
    (tmp_path / "cut.parquet").write_bytes(good.read_bytes()[:-40])
    write(tmp_path / "no_audience.parquet", [{k: v for k, v in GOOD.items() if k != "audience"}])
    pq.write_table(
        pa.table([["d1"], ["Acme"], ["Other"], ["Anvil"], ["coyotes"], ["Heavy."]],
                 names=["brief_id", "brand", "brand", "product", "audience", "key_message"]),
        tmp_path / "twice.parquet",
    )  # fmt: skip
    write(tmp_path / "long.parquet", [{**GOOD, "brief_id": f"l{i}"} for i in range(3)])
    result = read_briefs.fn([tmp_path], limits=Limits(max_rows_per_file=2))
    assert [b.brief_id for b in result.briefs] == ["b1"]
    assert [f.path for f in result.files] == [str(good)], "only the usable file joins the ledger"
    reasons = {Path(f.path).name: f.reason for f in result.rejected_files}
    assert reasons == {
        "cut.parquet": "not a readable Parquet file (ArrowInvalid)",
        "notes.parquet": "not a readable Parquet file (ArrowInvalid)",
        "no_audience.parquet": "missing required column 'audience'",
        "twice.parquet": "duplicate column name 'brand'",
        "long.parquet": "3 rows, more than max_rows_per_file (2)",
    }
    assert all(len(f.file_hash or "") == 64 for f in result.rejected_files)
    assert [r["path"] for r in result.ledger("s", set())] == [str(good)]


def test_a_file_that_breaks_off_part_way_is_rejected_whole(tmp_path: Path):
    """A damaged page after good ones: none of the file's rows are kept, and its ids stay free."""
    table = pa.table({**{k: [f"{v}{i}" for i in range(5000)] for k, v in GOOD.items()}})
    pq.write_table(table, tmp_path / "a.parquet", row_group_size=1000, use_dictionary=False)
    data = bytearray((tmp_path / "a.parquet").read_bytes())
    data[len(data) // 2 : len(data) // 2 + 2000] = bytes(2000)
    (tmp_path / "a.parquet").write_bytes(bytes(data))
    write(tmp_path / "b.parquet", [{**GOOD, "brief_id": "b10"}])  # an id the damaged file also holds
    result = read_briefs.fn([tmp_path])
    assert [f.path for f in result.rejected_files] == [str(tmp_path / "a.parquet")]
    assert result.rejected_files[0].reason.startswith("not a readable Parquet file (")
    assert [b.brief_id for b in result.briefs] == ["b10"] and result.rejected == []


def test_one_unreadable_cell_rejects_only_its_row(tmp_path: Path):
    far = int(dt.datetime(9999, 1, 1, tzinfo=dt.UTC).timestamp() * 1000) * 10  # past year 9999
    table = pa.table({
        "brief_id": ["ok1", "utf8", "when", "nested", "ok2"],
        "brand": bad_utf8(b"Acme", b"Ac\xffme", b"Acme", b"Acme", b"Acme"),
        "product": ["Anvil"] * 5, "audience": ["coyotes"] * 5, "key_message": ["Heavy."] * 5,
        "shipped_at": pa.array([0, 0, far, 0, None], pa.timestamp("ms")),  # a column adforge does not use
        "tags": pa.array([[b"a"], [], [], [b"\xfe"], None], pa.list_(pa.binary())).cast(
            pa.list_(pa.string()), safe=False
        ),
    })  # fmt: skip
    pq.write_table(table, tmp_path / "cells.parquet")
    result = read_briefs.fn([tmp_path / "cells.parquet"])
    assert [b.brief_id for b in result.briefs] == ["ok1", "ok2"]
    reasons = {r.brief_id: r.reason for r in result.rejected}
    assert reasons["utf8"].startswith("brand: unreadable value (UnicodeDecodeError: 'utf-8' codec")
    assert reasons["when"].startswith("shipped_at: unreadable value (")
    assert reasons["nested"].startswith("tags: unreadable value (UnicodeDecodeError")
    assert [r.source_row for r in result.rejected] == [1, 2, 3]
    assert all(len(r.reason) < 200 for r in result.rejected)


def test_other_columns_are_strict_json(tmp_path: Path):
    when = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    table = pa.table({
        **{k: [v] for k, v in GOOD.items()},
        "score": [float("nan")], "ceiling": [float("inf")], "blob": [b"\x00\xffraw"],
        "at": pa.array([when], pa.timestamp("us", tz="UTC")), "day": [dt.date(2024, 2, 29)],
        "price": pa.array([Decimal("12345678901234567890.12")], pa.decimal128(24, 2)),
        "wait": pa.array([dt.timedelta(seconds=90)], pa.duration("s")),
        "extra": [{"inner": float("-inf"), "list": [1, None]}],
        "pairs": pa.array([[("k", 1)]], pa.map_(pa.string(), pa.int64())),
    })  # fmt: skip
    pq.write_table(table, tmp_path / "meta.parquet")
    result = read_briefs.fn([tmp_path / "meta.parquet"])
    assert result.rejected == []

    def strict(name: str):
        raise ValueError(f"not strict JSON: {name}")

    meta = json.loads(result.briefs[0].metadata, parse_constant=strict)
    assert meta == {
        "score": None, "ceiling": None, "blob": base64.b64encode(b"\x00\xffraw").decode(),
        "at": "2024-01-02T03:04:05+00:00", "day": "2024-02-29", "price": "12345678901234567890.12",
        "wait": 90.0, "extra": {"inner": None, "list": [1, None]}, "pairs": [["k", 1]],
    }  # fmt: skip


def test_echoed_values_are_cut_short(tmp_path: Path):
    _, rejected = read_one(tmp_path, channels=["t" * 1999])
    reason = rejected[0].reason
    assert reason.startswith("channels: unknown channel 'tttt") and "…'" in reason
    assert len(reason) < 250
    _, rejected = read_one(tmp_path, variants="v" * 1_000_000)
    assert rejected[0].reason.startswith("variants: expected a whole number, got 'vvv")
    assert len(rejected[0].reason) < 150
    _, rejected = read_one(tmp_path, brief_id="i" * 300)
    assert rejected[0].brief_id is None, "an id too long to use is not kept with the rejected row"


def test_limits_are_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    assert load_settings().limits() == Limits(), "the settings' defaults are the reader's defaults"
    monkeypatch.setenv("ADFORGE_MAX_FIELD_CHARS", "10")
    limits = load_settings(overrides={"max_list_items": 1}).limits()
    assert (limits.max_field_chars, limits.max_list_items) == (10, 1)
    _, rejected = read_one(tmp_path, limits, key_message="x" * 11)
    assert rejected[0].reason == "key_message: 11 characters, more than max_field_chars (10)"
    _, rejected = read_one(tmp_path, limits, channels=["x", "email"])
    assert rejected[0].reason == "channels: 2 items, more than max_list_items (1)"


def test_folders_are_searched_like_a_user_expects(tmp_path: Path):
    drop = tmp_path / "drop"
    for i, name in enumerate(["year=2024/month=01/part-0.parquet", "year=2024/month=02/B.PARQUET",
                              "top.Parquet", "deep/er/still/x.parquet"]):  # fmt: skip
        (drop / name).parent.mkdir(parents=True, exist_ok=True)
        write(drop / name, [{**GOOD, "brief_id": f"p{i}"}])
    (drop / "readme.txt").write_text("not a brief file")
    (drop / "._top.Parquet").write_bytes(b"\x00\x05\x16\x07 AppleDouble")  # macOS's resource fork
    (drop / "gone.parquet").symlink_to(drop / "nowhere.parquet")
    os.mkfifo(drop / "pipe.parquet")  # opening it would wait for a writer forever
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(drop / "sock.parquet"))
    (drop / "linked.parquet").symlink_to(drop / "top.Parquet")
    try:
        result = read_briefs.fn([drop])
    finally:
        listener.close()
    assert sorted(b.brief_id for b in result.briefs) == ["p0", "p1", "p2", "p3"]
    assert [Path(s.path).name for s in result.skipped] == ["top.Parquet"], "the link: same content"
    assert result.rejected_files == []
    notes = "\n".join(result.passed_over)
    assert f"{drop / 'gone.parquet'}: not a regular file (a link that leads nowhere)" in notes
    assert f"{drop / 'pipe.parquet'}: not a regular file (a FIFO)" in notes
    assert f"{drop / 'sock.parquet'}: not a regular file (a socket)" in notes
    assert f"{drop / '._top.Parquet'}: hidden file" in notes
    assert "readme" not in notes


def test_a_folder_without_brief_files(tmp_path: Path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    os.mkfifo(tmp_path / "empty" / "sub" / "pipe.parquet")
    files, notes = find_files([tmp_path / "empty"])
    assert files == [] and notes[-1] == f"{tmp_path / 'empty'}: no Parquet files found"
    assert read_briefs.fn([tmp_path / "empty"]).files == []


def reads_every_file() -> bool:
    """True for root with its usual capabilities, which reads files whatever their mode."""
    with tempfile.NamedTemporaryFile() as f:
        os.chmod(f.name, 0)
        try:
            open(f.name).close()
        except PermissionError:
            return False
    return True


@pytest.mark.skipif(reads_every_file(), reason="this user reads every file (root)")
def test_unreadable_entries(tmp_path: Path):
    (tmp_path / "locked").mkdir()
    write(tmp_path / "locked" / "a.parquet", [GOOD])
    write(tmp_path / "secret.parquet", [{**GOOD, "brief_id": "s"}])
    write(tmp_path / "ok.parquet", [{**GOOD, "brief_id": "ok"}])
    (tmp_path / "locked").chmod(0)
    (tmp_path / "secret.parquet").chmod(0)
    try:
        result = read_briefs.fn([tmp_path])
    finally:
        (tmp_path / "locked").chmod(0o755)
    assert [b.brief_id for b in result.briefs] == ["ok"]
    assert [(Path(f.path).name, f.file_hash) for f in result.rejected_files] == [("secret.parquet", None)]
    assert result.rejected_files[0].reason == "cannot be read (Permission denied)"
    assert f"{tmp_path / 'locked'}: folder not readable (Permission denied)" in result.passed_over


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

"""The `adforge` command as a user runs it."""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adforge.flows.cli import build_parser


def adforge(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "adforge.flows.cli", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)


def all_parsers(parser: argparse.ArgumentParser, path: str = "adforge"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from all_parsers(sub, f"{path} {name}")


def test_every_command_and_flag_is_documented():
    parsers = list(all_parsers(build_parser()))
    assert {p for p, _ in parsers} >= {"adforge run", "adforge query", "adforge models prepare",
                                       "adforge sample-briefs", "adforge serve", "adforge export",
                                       "adforge schema"}  # fmt: skip
    for path, parser in parsers:
        assert parser.description, f"{path} has no description"
        for action in parser._actions:
            assert action.help, f"{path} {action.option_strings or action.dest} has no help"


def test_not_parquet_exits_2_with_one_line(tmp_path: Path):
    (tmp_path / "briefs.parquet").write_text("not parquet")
    result = adforge("run", "briefs.parquet", cwd=tmp_path)
    assert result.returncode == 2
    assert (
        result.stderr.strip() == "adforge: error: briefs.parquet: not a readable Parquet file (ArrowInvalid)"
    )
    assert not (tmp_path / "data").exists(), "nothing is created before the files are checked"


def test_missing_column_exits_2(tmp_path: Path):
    pq.write_table(pa.table({"brief_id": ["a"], "brand": ["b"]}), tmp_path / "b.parquet")
    result = adforge("run", "b.parquet", cwd=tmp_path)
    assert result.returncode == 2
    assert "b.parquet: missing required column 'product'" in result.stderr


def test_query_refuses_writes(tmp_path: Path):
    from adforge.storage.db import Store

    Store(tmp_path / "a.duckdb")
    result = adforge("query", "DROP TABLE runs", "--db", "a.duckdb", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == "adforge: error: only one read-only SELECT statement is allowed (got DROP)\n"
    ok = adforge("query", "select count(*) as n from runs", "--db", "a.duckdb", cwd=tmp_path)
    assert ok.returncode == 0 and "n" in ok.stdout


@pytest.mark.slow
def test_run_then_query(tmp_path: Path, models_dir: str):
    """The demo path in a fresh process: sample briefs in, copy and images out, queryable."""
    assert adforge("sample-briefs", "all.parquet", cwd=tmp_path).returncode == 0
    # Two of them, one variant on their first channel each, keep the run short.
    two = pq.read_table(tmp_path / "all.parquet").slice(0, 2).to_pylist()
    two = [{**row, "channels": row["channels"][:1], "variants": 1} for row in two]
    pq.write_table(pa.Table.from_pylist(two), tmp_path / "briefs.parquet")
    run = ["run", "briefs.parquet", "--models-dir", models_dir, "--copy-attempts", "2", "--quiet"]
    result = adforge(*run, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "status" in result.stdout and "completed" in result.stdout
    written = adforge("query", "select channel from copies", "--format", "csv", cwd=tmp_path)
    assert written.returncode == 0
    channels = [row[0] for row in csv.reader(written.stdout.splitlines()[1:])]  # after the header
    assert channels and set(channels) <= {row["channels"][0] for row in two}
    assert list((tmp_path / "data" / "artifacts" / "images").glob("*.png"))


def test_gpu_profile_is_valid_settings():
    from adforge.flows.settings import load_settings

    s = load_settings(Path(__file__).resolve().parent.parent / "deploy" / "gpu.toml")
    assert (s.text_model, s.image_model, s.device, s.dtype) == (
        "Qwen/Qwen2.5-7B-Instruct", "stabilityai/sd-turbo", "cuda", "auto"
    )  # fmt: skip

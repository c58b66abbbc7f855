"""The DuckDB store and the artifact folder."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from storage.artifacts import ArtifactStore
from storage.db import Store, query
from storage.schema import MIGRATIONS, schema_markdown


def test_migrations_run_once(tmp_path: Path):
    Store(tmp_path / "a.duckdb")
    store = Store(tmp_path / "a.duckdb")
    rows = store.fetch("SELECT name FROM schema_migrations")
    assert [r["name"] for r in rows] == [m.__name__ for m in MIGRATIONS]


def test_write_is_transactional_and_skips_existing_keys(tmp_path: Path):
    store = Store(tmp_path / "a.duckdb")
    row = {"run_id": "r1", "stage": "copy", "item_id": "copy-1", "reason": "x", "attempts": 1}
    assert store.write({"failures": [row]}) == {"failures": 1}
    assert store.write({"failures": [row, {**row, "item_id": "copy-2"}]}) == {"failures": 1}
    with pytest.raises(duckdb.Error):  # the second table's bad row undoes the first table's insert
        store.write({"failures": [{**row, "item_id": "copy-3"}], "runs": [{"run_id": "r1"}]})
    assert store.existing("failures", "item_id", ["copy-1", "copy-2", "copy-3"]) == {"copy-1", "copy-2"}


def test_query_is_read_only(tmp_path: Path):
    Store(tmp_path / "a.duckdb")
    for sql in ["DELETE FROM runs", "CREATE TABLE t (a INT)", "COPY runs TO 'x.csv'"]:
        with pytest.raises(duckdb.Error), query(tmp_path / "a.duckdb", sql) as result:
            result.fetchall()
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize("bad", ["../../x", "/etc/passwd", "copy-12345678\x00", "Copy-12345678", "copy-xyz"])
def test_artifact_names_must_be_ids(tmp_path: Path, bad: str):
    with pytest.raises(ValueError, match="unsafe artifact name"):
        ArtifactStore(tmp_path).write("images", bad, ".png", b"x")
    assert list(tmp_path.iterdir()) == []


def test_every_column_is_documented_in_the_database_and_docs(tmp_path: Path):
    Store(tmp_path / "a.duckdb")
    with duckdb.connect(str(tmp_path / "a.duckdb"), read_only=True) as con:
        undocumented = con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() WHERE comment IS NULL AND NOT internal"
        ).fetchall()
        text = schema_markdown(con)
    assert undocumented == []
    docs = Path(__file__).resolve().parent.parent / "docs" / "schema.md"
    assert docs.read_text() == text, "docs/schema.md is stale: run `adforge schema --out docs/schema.md`"

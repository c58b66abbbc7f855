"""The DuckDB store and the artifact folder."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import duckdb
import pytest

from adforge.storage import artifacts
from adforge.storage.artifacts import ArtifactError, ArtifactStore
from adforge.storage.db import QueryRefused, Store, query
from adforge.storage.schema import MIGRATIONS, schema_markdown


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
    stored = store.by_ids("failures", "item_id", ["copy-1", "copy-2", "copy-3"], "item_id")
    assert {r["item_id"] for r in stored} == {"copy-1", "copy-2"}


def test_query_is_read_only(tmp_path: Path):
    Store(tmp_path / "a.duckdb")
    for sql in ["DELETE FROM runs", "CREATE TABLE t (a INT)", "COPY runs TO 'x.csv'"]:
        with pytest.raises(QueryRefused, match="read-only SELECT"), query(tmp_path / "a.duckdb", sql):
            pass
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize("bad", ["../../x", "/etc/passwd", "copy-12345678\x00", "Copy-12345678", "copy-xyz"])
def test_artifact_names_must_be_ids(tmp_path: Path, bad: str):
    with pytest.raises(ValueError, match="unsafe artifact name"):
        ArtifactStore(tmp_path).write("images", bad, ".png", b"x")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(params=["local", "memory", "s3"])
def artifacts_root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same store on a local folder, fsspec's memory filesystem and S3 served on loopback."""
    if request.param == "local":
        return str(tmp_path / "art")
    if request.param == "memory":
        return f"memory:///{tmp_path.name}/art"
    return f"s3://{request.getfixturevalue('s3_bucket')}/art"


def test_artifacts_on_any_filesystem(artifacts_root: str):
    store = ArtifactStore(artifacts_root)
    store.check_writable("images")
    location, sha256 = store.write("images", "image-0123456789abcdef", ".png", b"png bytes")
    expected = (
        str(Path(artifacts_root, "images", "image-0123456789abcdef.png"))
        if "://" not in artifacts_root
        else f"{artifacts_root}/images/image-0123456789abcdef.png"
    )
    assert (location, sha256) == (expected, hashlib.sha256(b"png bytes").hexdigest())
    # another process (a fresh store on the same root) reads what was written, by the stored location
    again = ArtifactStore(artifacts_root)
    assert again.read(location) == b"png bytes"
    assert again.fs.ls(again.location("images"), detail=False) == [again.fs._strip_protocol(location)]
    store.remove([location, store.path_for("images", "image-fedcba9876543210", ".png")])  # one never written
    assert not again.fs.exists(location)


def test_unwritable_object_storage_is_named(s3_bucket: str):
    with pytest.raises(
        ArtifactError, match="artifacts folder s3://no-such-bucket/art/images is not writable"
    ):
        ArtifactStore("s3://no-such-bucket/art").check_writable("images")


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


def test_a_killed_writers_temporary_files_are_swept(tmp_path: Path):
    """A run killed mid-write leaves `.<name>.<host>-<pid>-<hex>.tmp`; the next run's check removes
    it, and leaves alone the temporaries of a writer still running or of another machine."""
    ArtifactStore(tmp_path / "art").check_writable("images")
    exited = subprocess.Popen(["true"])
    exited.wait()
    folder, host = tmp_path / "art" / "images", artifacts._HOST
    stale = folder / f".image-0123456789abcdef.png.{host}-{exited.pid}-00aa11bb.tmp"
    live = folder / f".image-0123456789abcdef.png.{host}-{os.getpid()}-00aa11bb.tmp"
    elsewhere = folder / ".image-0123456789abcdef.png.0000beef-1-00aa11bb.tmp"
    for path in (stale, live, elsewhere):
        path.write_bytes(b"half a png")
    ArtifactStore(tmp_path / "art").check_writable("images")
    assert sorted(p.name for p in folder.iterdir()) == sorted([live.name, elsewhere.name])

"""`adforge query`, `export` and `quality` in their sandbox, on a DuckDB file and on a DuckLake, each
made by a real flow run: hostile statements change nothing and read nothing outside the database."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import duckdb
import fsspec
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from fakes import FAKES

from adforge.flows.cli import main
from adforge.flows.generate_campaigns import generate_campaigns
from adforge.flows.settings import Settings, load_settings
from adforge.storage import lake
from adforge.storage.db import DatabaseCorrupt, QueryRefused, QueryTimeout, Store, query, read_rows
from adforge.storage.export import RUN_TABLES
from adforge.storage.schema import pipeline_views
from adforge.tasks.sample_briefs import COLUMNS, SAMPLE_BRIEFS

BRIEFS = [dict(zip(COLUMNS, row, strict=True)) | {"channels": ["x", "display"], "variants": 2}
          for row in SAMPLE_BRIEFS[:2]]  # fmt: skip
ASSETS = "SELECT copy_id, channel, image_paths, created_at FROM v_assets ORDER BY copy_id"
ENDLESS = "SELECT sum(hash(i)) FROM range(1000000000000) t(i)"


@dataclass(frozen=True)
class Backend:
    db: str  # the --db value
    root: Path  # holds the database, its files, the run's artifacts and files that are not the database's
    data: Path  # where the database keeps its rows (a DuckDB file: root)

    def snapshot(self) -> dict[str, str]:
        """Every file under root with the sha256 of its content."""
        return {
            str(p.relative_to(self.root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(self.root.rglob("*"))
            if p.is_file()
        }

    def views(self) -> dict[str, str]:
        """The views' definitions, read without the sandbox."""
        con = (
            lake.connect(self.db, read_only=True) if lake.is_lake(self.db) else duckdb.connect(self.db, True)
        )
        with con:
            names = "SELECT view_name, sql FROM duckdb_views() WHERE database_name = current_database()"
            return dict(con.execute(f"{names} AND NOT internal").fetchall())


def make_backend(root: Path, db: str) -> Backend:
    """A database made by a run on the fake generators, and beside it files a query must not reach."""
    settings = load_settings(overrides={"db": db, "artifacts": str(root / "artifacts"), **FAKES})
    root.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(BRIEFS), root / "briefs.parquet")
    summary = generate_campaigns(briefs=[str(root / "briefs.parquet")], settings=settings.to_dict())
    assert summary["copies"] == 8
    outside = root / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text("secret\nhunter2\n")
    other = sqlite3.connect(outside / "other.sqlite")
    other.executescript("CREATE TABLE t (secret TEXT); INSERT INTO t VALUES ('hunter2');")
    other.close()
    if not lake.is_lake(db):
        return Backend(db, root, root)
    with lake.connect(db) as con:  # leave DuckLake's maintenance functions work to do
        con.execute("DELETE FROM failures")
        con.execute("CALL ducklake_expire_snapshots('lake', older_than => now())")
        con.execute("UPDATE runs SET error = 'x'")
        scheduled = "SELECT count(*) FROM __ducklake_metadata_lake.ducklake_files_scheduled_for_deletion"
        assert con.execute(scheduled).fetchone()[0] > 0
        return Backend(db, root, Path(lake.stored_data_path(con)))


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Backend]:
    """One DuckDB file and one DuckLake with a SQLite catalog, shared by this module's tests (each test
    that may change one checks that it did not)."""
    base = tmp_path_factory.mktemp("sandbox")
    with pytest.MonkeyPatch.context() as env:
        for name in [n for n in os.environ if n.startswith("ADFORGE_") and n != "ADFORGE_TEST_MODELS_DIR"]:
            env.delenv(name)
        env.chdir(base)
        return {
            "duckdb": make_backend(base / "duckdb", str(base / "duckdb" / "adforge.duckdb")),
            "ducklake": make_backend(
                base / "ducklake", f"ducklake:sqlite:{base / 'ducklake' / 'adforge.sqlite'}"
            ),
        }


@pytest.fixture(params=["duckdb", "ducklake"])
def backend(request: pytest.FixtureRequest, backends: dict[str, Backend]) -> Backend:
    return backends[request.param]


HOSTILE = [
    # Statements other than one SELECT, refused by DuckDB's parser's verdict.
    "INSERT INTO runs (run_id, status, started_at) VALUES ('x', 'y', now())",
    "UPDATE runs SET status = 'x'",
    "DELETE FROM copies",
    "DROP TABLE runs",
    "CREATE TABLE t AS SELECT * FROM runs",
    "CREATE TEMP TABLE t AS SELECT * FROM runs",
    "CREATE OR REPLACE VIEW v_assets AS SELECT 1 AS x",
    "ATTACH '@OUT/other.duckdb' AS other",
    "ATTACH '@DB' AS again",
    "DETACH lake",
    "USE memory",
    "COPY runs TO '@OUT/runs.csv'",
    "COPY (SELECT * FROM copies) TO '@DATA/copies.parquet'",
    "EXPORT DATABASE '@OUT/dump'",
    "SET enable_external_access = true",
    "SET lock_configuration = false",
    "RESET memory_limit",
    "PRAGMA profiling_output = '@OUT/profile.json'",
    "PRAGMA import_database('@OUT')",
    "LOAD httpfs",
    "INSTALL httpfs",
    "CHECKPOINT",
    "VACUUM",
    "BEGIN",
    "SELECT 1; DROP TABLE runs",
    "EXPLAIN ANALYZE SELECT * FROM runs",
    "CALL enable_logging(storage => 'file', storage_config => {'path': '@DATA/logs'})",
    "WITH gone AS (DELETE FROM runs RETURNING *) SELECT * FROM gone",
    # SELECTs that read outside the database's own files: stopped by the file access rules.
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM read_csv('@OUT/secret.csv')",
    "SELECT * FROM read_csv('@DATA/../outside/secret.csv')",
    "SELECT * FROM read_csv('http://127.0.0.1:9/secret.csv')",
    # SELECTs running table functions that reach past those rules or change something.
    "SELECT * FROM sqlite_scan('@OUT/other.sqlite', 't')",
    "SELECT * FROM sqlite_attach('@OUT/other.sqlite')",
    "SELECT * FROM query('SELECT * FROM sqlite_scan(''@OUT/other.sqlite'', ''t'')')",
    "SELECT * FROM json_execute_serialized_sql(json_serialize_sql('SELECT * FROM read_text(''@OUT/x'')'))",
    "SELECT * FROM enable_logging(storage => 'file', storage_config => {'path': '@DATA/logs'})",
    "SELECT * FROM checkpoint()",
    "SELECT * FROM ducklake_cleanup_old_files('lake', cleanup_all => true)",
    "SELECT * FROM ducklake_merge_adjacent_files('lake')",
    "SELECT * FROM ducklake_rewrite_data_files('lake')",
    "SELECT * FROM ducklake_expire_snapshots('lake', older_than => now())",
    "SELECT * FROM ducklake_set_option('lake', 'parquet_compression', 'zstd')",
    "SELECT * FROM duckdb_secrets(redact => false)",
]  # fmt: skip


@pytest.mark.parametrize("sql", HOSTILE)
def test_hostile_statements_change_and_read_nothing(backend: Backend, sql: str):
    sql = sql.replace("@OUT", str(backend.root / "outside")).replace("@DATA", str(backend.data))
    sql = sql.replace("@DB", backend.db)
    before = backend.snapshot()
    with pytest.raises((QueryRefused, duckdb.Error)), query(backend.db, sql) as result:
        result.fetchall()
    assert backend.snapshot() == before, "no file written, changed or removed"
    assert backend.views() == pipeline_views()


def test_the_hostile_reads_work_without_the_sandbox(backends: dict[str, Backend]):
    """What the sandbox stops is there to read on an ordinary connection to the same lake."""
    backend = backends["ducklake"]
    with lake.connect(backend.db, read_only=True) as con:
        assert con.execute(
            "SELECT * FROM read_csv(?)", [str(backend.root / "outside" / "secret.csv")]
        ).fetchall()
        other = str(backend.root / "outside" / "other.sqlite")
        assert con.execute("SELECT * FROM sqlite_scan(?, 't')", [other]).fetchall() == [("hunter2",)]


def test_refusals_exit_2_with_one_line(backend: Backend, capsys: pytest.CaptureFixture[str]):
    assert main(["query", "--db", backend.db, "DELETE FROM runs"]) == 2
    assert (
        capsys.readouterr().err
        == "adforge: error: only one read-only SELECT statement is allowed (got DELETE)\n"
    )
    assert main(["query", "--db", backend.db, "SELECT * FROM checkpoint()"]) == 2
    err = capsys.readouterr().err
    assert err == "adforge: error: checkpoint() is not allowed: it reaches past the database or changes it\n"


def test_reading_works_in_the_sandbox(backend: Backend):
    with query(backend.db, "SELECT count(*) FROM copies") as result:
        assert result.fetchall() == [(8,)]
    with query(backend.db, "PRAGMA table_info('copies')") as result:
        assert "headline" in {row[1] for row in result.fetchall()}
    with query(backend.db, "SELECT current_setting('memory_limit'), current_setting('threads')") as result:
        assert result.fetchall() == [("1.8 GiB", 2)]
    if lake.is_lake(backend.db):  # the lake's own Parquet files are readable, as its tables are
        with query(
            backend.db, f"SELECT count(*) FROM read_parquet('{backend.data}/**/copies/*.parquet')"
        ) as result:
            assert result.fetchall()[0][0] >= 8


def test_a_query_past_its_timeout_stops(backend: Backend, capsys: pytest.CaptureFixture[str], tmp_path: Path):
    stopped = r"^query stopped after 0.5 s \(--timeout\)$"
    with pytest.raises(QueryTimeout, match=stopped), query(backend.db, ENDLESS, timeout_s=0.5) as result:
        result.fetchall()
    assert main(["query", "--db", backend.db, "--timeout", "0.5", ENDLESS]) == 1
    assert capsys.readouterr().err == "adforge: error: query stopped after 0.5 s (--timeout)\n"
    # Stopped while its rows are being written: no file, whole or partial, is left.
    out = ["--format", "csv", "--out", str(tmp_path / "rows.csv")]
    rows = "SELECT i, md5(i::VARCHAR) FROM range(1000000000000) t(i)"
    assert main(["query", "--db", backend.db, "--timeout", "1", *out, rows]) == 1
    assert capsys.readouterr().err == "adforge: error: query stopped after 1 s (--timeout)\n"
    assert list(tmp_path.iterdir()) == []


def test_output_formats_read_back(backend: Backend, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    expected = read_rows(backend.db, ASSETS, [])
    assert len(expected) == 8 and all(r["image_paths"] for r in expected)
    for fmt in ("csv", "json", "parquet"):
        assert main(["query", "--db", backend.db, "--format", fmt, "--out", str(tmp_path / fmt), ASSETS]) == 0
    csv = pa_csv.read_csv(tmp_path / "csv").to_pylist()
    assert [r["copy_id"] for r in csv] == [r["copy_id"] for r in expected]
    assert [json.loads(r["image_paths"]) for r in csv] == [r["image_paths"] for r in expected]
    listed = json.loads((tmp_path / "json").read_text())
    assert [{**r, "created_at": str(r["created_at"])} for r in expected] == listed
    assert pq.read_table(tmp_path / "parquet").to_pylist() == expected
    assert main(["query", "--db", backend.db, "--format", "csv", ASSETS]) == 0
    assert capsys.readouterr().out == (tmp_path / "csv").read_text()
    assert main(["query", "--db", backend.db, "--format", "json", "SELECT 1 AS a WHERE false"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_export_and_quality_read_in_the_sandbox(
    backend: Backend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    before = backend.snapshot()
    assert main(["export", "--db", backend.db, "--to", str(tmp_path / "export"), "--include-pending"]) == 0
    for table in RUN_TABLES:
        rows = read_rows(backend.db, f"SELECT count(*) AS n FROM {table}", [])[0]["n"]
        assert pq.read_table(tmp_path / "export" / f"{table}.parquet").num_rows == rows, table
    assert main(["quality", "--db", backend.db]) == 0
    assert "copies" in capsys.readouterr().out
    assert backend.snapshot() == before


def test_a_replaced_view_is_repaired_by_the_next_writer(backend: Backend, tmp_path: Path):
    if lake.is_lake(backend.db):  # a copy of the catalog, whose rows stay where they are
        catalog = backend.db.removeprefix("ducklake:sqlite:")
        db = f"ducklake:sqlite:{shutil.copy(catalog, tmp_path / 'copy.sqlite')}"
        replace = lake.connect(db)
    else:
        db = str(shutil.copy(backend.db, tmp_path / "copy.duckdb"))
        replace = duckdb.connect(db)
    with replace as con:
        con.execute("CREATE OR REPLACE VIEW v_assets AS SELECT 'not the pipeline''s' AS copy_id")
    Store(db)
    assert Backend(db, tmp_path, tmp_path).views() == pipeline_views()
    assert len(read_rows(db, ASSETS, [])) == 8


def test_a_corrupt_database_is_named_at_once(backends: dict[str, Backend], tmp_path: Path, capsys):
    whole = Path(backends["duckdb"].db).read_bytes()
    damaged = bytearray(whole)
    for block in range(12288, len(whole), 262144):  # every block after the three header blocks
        damaged[block + 100 : block + 164] = b"\xff" * 64
    files = {
        "random.duckdb": os.urandom(100_000),
        "cut.duckdb": whole[: 12288 + 1000],  # the headers and a scrap of the first block
        "bad.duckdb": damaged,
    }
    for name, content in files.items():
        path = tmp_path / name
        path.write_bytes(content)
        for command in (["query", "SELECT 1"], ["quality"], ["export", "--to", str(tmp_path / "x")]):
            assert main([*command, "--db", str(path)]) == 1
            err = capsys.readouterr().err
            assert err.startswith(f"adforge: error: {path} is not a DuckDB database or is damaged ("), err
            assert err.count("\n") == 1
        with pytest.raises(DatabaseCorrupt):
            Store(path)


def test_a_lake_on_object_storage_reads_its_files_and_no_other_url(
    settings: Settings, tmp_path: Path, s3_bucket: str
):
    pq.write_table(pa.Table.from_pylist(BRIEFS[:1]), tmp_path / "briefs.parquet")
    db = f"ducklake:sqlite:{tmp_path / 'lake.sqlite'}"
    s3 = {"db": db, "lake_data": f"s3://{s3_bucket}/lake/"}
    summary = generate_campaigns([str(tmp_path / "briefs.parquet")], settings.to_dict() | s3)
    fsspec.filesystem("s3").pipe(f"s3://{s3_bucket}/other.csv", b"secret\nhunter2\n")
    with query(
        db, f"SELECT count(*) FROM read_parquet('s3://{s3_bucket}/lake/**/copies/*.parquet')"
    ) as result:
        assert result.fetchall()[0][0] >= summary["copies"] > 0
    with query(db, "SELECT count(*) FROM copies") as result:
        assert result.fetchall() == [(summary["copies"],)]
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    for url in (
        f"s3://{s3_bucket}/other.csv",
        f"s3://{s3_bucket}/lake/../other.csv",
        f"{endpoint}/{s3_bucket}/other.csv",
    ):
        with (
            pytest.raises(duckdb.PermissionException),
            query(db, f"SELECT * FROM read_csv('{url}')") as result,
        ):
            result.fetchall()

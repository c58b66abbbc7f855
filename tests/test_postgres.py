"""A DuckLake whose catalog is a real PostgreSQL server: a throwaway cluster that asks for a password (SCRAM),
reached the way a user reaches one, through libpq's own variables (PGPASSFILE, PGPASSWORD); two `adforge run`
processes writing one lake at once, the reading and reviewing commands on it, a killed run resumed, and a
password given in the `db` setting kept out of everything stored and logged.

The cluster needs PostgreSQL's server programs (`make postgres` installs them): without them these tests are
skipped, unless ADFORGE_REQUIRE_POSTGRES is set (CI), when they fail."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fakes import FAKES
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.settings import PREFECT_API_URL

from adforge.flows.cli import main
from adforge.flows.redaction import redact
from adforge.storage import lake
from adforge.storage.db import Store, open_existing
from adforge.tasks.creatives import sizes
from bench.postgres import Cluster, client_env, find_initdb, throwaway_cluster

TESTS = Path(__file__).resolve().parent
REQUIRED = bool(os.environ.get("ADFORGE_REQUIRE_POSTGRES"))  # read before conftest clears ADFORGE_*
# Two copy chunks or more per run: each run commits several times while the other one does.
SMALL = {"copy_chunk_size": 2, "image_batch_size": 2, "copy_attempts": 2}


def brief(brief_id: str, brand: str, channels: list[str], variants: int) -> dict:
    return {"brief_id": brief_id, "brand": brand, "product": f"{brand} product", "audience": "commuters",
            "key_message": f"{brand} makes mornings easy", "channels": channels, "variants": variants,
            "images_per_copy": 1}  # fmt: skip


# Two brief files, one per concurrent run: 4 copies (2 chunks), and 3 copies (2 chunks; display: 2 creatives
# per image). Channels whose rules the fake copy passes.
BRIEF_FILES = {
    "a": [brief("alpha", "Nordbrew", ["x", "email"], 2)],
    "b": [brief("beta", "PeakGear", ["google_search"], 2), brief("gamma", "Lumen", ["display"], 1)],
}
RESUMED = [brief("delta", "Fernway", ["x", "google_search"], 2), brief("epsilon", "Brightly", ["email"], 1)]


def planned(rows: list[dict]) -> dict[str, int]:
    """Copies, images and creatives a brief file plans (every copy passing its rules)."""
    copies = sum(len(r["channels"]) * r["variants"] for r in rows)
    images = sum(len(r["channels"]) * r["variants"] * r["images_per_copy"] for r in rows)
    creatives = sum(len(sizes(c)) * r["variants"] * r["images_per_copy"] for r in rows for c in r["channels"])
    return {"copies": copies, "images": images, "creatives": creatives}


def write_briefs(path: Path, rows: list[dict]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.fixture(scope="module")
def postgres_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A throwaway PostgreSQL cluster (bench/postgres.py), reached by this process through PGPASSFILE;
    stopped and removed at the end of the module."""
    if find_initdb() is None:
        reason = "PostgreSQL's server is not installed (no initdb; `make postgres` installs it)"
        if REQUIRED:
            pytest.fail(f"{reason}, and ADFORGE_REQUIRE_POSTGRES is set")
        pytest.skip(reason)
    with throwaway_cluster() as cluster, pytest.MonkeyPatch.context() as env:
        for name in [n for n in os.environ if n.startswith("PG")]:
            env.delenv(name)
        env.setenv("PGPASSFILE", str(cluster.passfile))
        env.setenv("XDG_CACHE_HOME", str(cluster.cache))  # journals of this process's writes
        yield cluster


def adforge_env(cluster: Cluster, db: str, artifacts: Path, **pg: str) -> dict[str, str]:
    """The environment of an `adforge run` on the fake generators, configured by ADFORGE_* variables,
    reporting to this session's Prefect server; `pg` gives its PostgreSQL credentials, if any."""
    settings = {"db": db, "artifacts": str(artifacts), **SMALL, **FAKES}
    return client_env(**pg) | {f"ADFORGE_{k.upper()}": str(v) for k, v in settings.items()} | {
        "PREFECT_API_URL": str(PREFECT_API_URL.value()), "PYTHONPATH": str(TESTS),
        "XDG_CACHE_HOME": str(cluster.cache),
    }  # fmt: skip


def start_run(briefs: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "adforge.flows.cli", "run", str(briefs)], env=env,
                            cwd=briefs.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip


def finish(proc: subprocess.Popen, timeout: float = 300) -> subprocess.CompletedProcess:
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):  # whatever the run had started
            os.killpg(proc.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


class Reader:
    """One locked-down read-only connection to a lake, as `adforge query` opens (each costs about a second
    on this machine: one for all of a test's checks)."""

    def __init__(self, db: str):
        self.con = open_existing(db)

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.con.close()

    def rows(self, sql: str, params: list | None = None) -> list[dict]:
        result = self.con.execute(sql, params or [])
        names = [d[0] for d in result.description or []]
        return [dict(zip(names, row, strict=True)) for row in result.fetchall()]

    def stored(self, run_id: str) -> dict[str, int]:
        """Rows of a run's copies, images and creatives."""
        sql = " UNION ALL ".join(f"SELECT '{t}' AS t, count(*) AS n FROM {t} WHERE run_id = $1"
                                 for t in ("copies", "images", "creatives"))  # fmt: skip
        return {r["t"]: r["n"] for r in self.rows(sql, [run_id])}

    def assert_each_row_once(self) -> None:
        """No id twice in the lake (DuckLake has no PRIMARY KEY: the writes' anti-joins keep it so), every
        copy with its image and every image with its creatives."""
        keys = {"briefs": "brief_id, brief_hash", "copies": "copy_id", "images": "image_id",
                "creatives": "creative_id", "copy_assets": "copy_id, field, position"}  # fmt: skip
        sql = " UNION ALL ".join(f"SELECT '{t}' AS t, count(*) AS n, count(DISTINCT ({k})) AS ids FROM {t}"
                                 for t, k in keys.items())  # fmt: skip
        for row in self.rows(sql):
            assert row["n"] == row["ids"], f"{row['t']}: {row['n']} rows, {row['ids']} ids"
        orphans = self.rows(
            "SELECT (SELECT count(*) FROM copies c WHERE NOT EXISTS (SELECT 1 FROM images i "
            "WHERE i.copy_id = c.copy_id)) AS copies, (SELECT count(*) FROM images i WHERE NOT EXISTS "
            "(SELECT 1 FROM creatives k WHERE k.image_id = i.image_id)) AS images"
        )
        assert orphans == [{"copies": 0, "images": 0}]


@dataclass(frozen=True)
class TwoRuns:
    db: str
    root: Path
    results: dict[str, subprocess.CompletedProcess]  # by brief file
    run_ids: dict[str, str]  # by brief file
    seconds: float


@pytest.fixture(scope="module")
def two_runs(postgres_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> TwoRuns:
    """Two `adforge run` processes, one per brief file, writing one lake at once. Run "a" is given the
    password in its db setting (as a user should not); run "b" finds it in PGPASSFILE."""
    root = tmp_path_factory.mktemp("two-runs")
    db = postgres_cluster.new_lake("adforge")
    Store(db, lake_data=str(root / "files"))  # created once here; the runs race on its rows
    artifacts = root / "artifacts"
    with_password = f"{db} password={postgres_cluster.password}"
    passfile = str(postgres_cluster.passfile)
    envs = {"a": adforge_env(postgres_cluster, with_password, artifacts),
            "b": adforge_env(postgres_cluster, db, artifacts, PGPASSFILE=passfile)}  # fmt: skip
    began = time.monotonic()
    procs = {name: start_run(write_briefs(root / f"{name}.parquet", rows), envs[name])
             for name, rows in BRIEF_FILES.items()}  # fmt: skip
    results = {name: finish(proc) for name, proc in procs.items()}
    seconds = time.monotonic() - began
    for name, result in results.items():
        assert result.returncode == 0, (name, result.stderr[-3000:])
    with Reader(db) as lake_rows:
        sources = lake_rows.rows("SELECT run_id, sources[1] AS source FROM runs")
    run_ids = {Path(r["source"]).stem: r["run_id"] for r in sources}
    return TwoRuns(db, root, results, run_ids, seconds)


@pytest.mark.slow
def test_two_adforge_runs_write_one_postgres_lake_at_once(two_runs: TwoRuns):
    assert sorted(two_runs.run_ids) == ["a", "b"]
    with Reader(two_runs.db) as lake_rows:
        statuses = lake_rows.rows("SELECT run_id, status, copies, images, failures FROM runs")
        assert {r["status"] for r in statuses} == {"completed"}, statuses
        for name, run_id in two_runs.run_ids.items():
            assert lake_rows.stored(run_id) == planned(BRIEF_FILES[name]), name
        # The runs overlapped: each started before the other finished.
        assert lake_rows.rows("SELECT max(started_at) < min(finished_at) AS yes FROM runs") == [{"yes": True}]
        lake_rows.assert_each_row_once()
    files = list((two_runs.root / "files").rglob("*.parquet"))
    assert files, "the rows are Parquet files in the lake's data path"
    print(f"two concurrent runs: {two_runs.seconds:.1f} s, {len(files)} Parquet files")


@pytest.mark.slow
def test_a_password_in_the_postgres_db_setting_is_neither_stored_nor_logged(
    two_runs: TwoRuns, postgres_cluster: Cluster
):
    password, run_id = postgres_cluster.password, two_runs.run_ids["a"]
    result = two_runs.results["a"]
    assert "copy:" in result.stdout + result.stderr, "the run's log lines are there to search"
    assert password not in result.stdout + result.stderr
    # Every table of the lake, and DuckLake's own tables in PostgreSQL (not PostgreSQL's), each row as text.
    with lake.connect(two_runs.db, read_only=True) as con:
        flow_run_id, settings = con.execute(
            "SELECT flow_run_id, settings FROM runs WHERE run_id = ?", [run_id]
        ).fetchone() or (None, "{}")
        tables = con.execute(
            "SELECT database_name, schema_name, table_name FROM duckdb_tables() "
            "WHERE database_name IN ('lake', '__ducklake_metadata_lake') "
            "AND schema_name NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
        assert {t for _, _, t in tables} >= {"runs", "copies", "ducklake_metadata", "ducklake_snapshot"}
        for database, schema, table in tables:
            (hits,) = con.execute(
                f'SELECT count(*) FROM "{database}"."{schema}"."{table}" t '
                "WHERE contains(CAST(t AS VARCHAR), ?)",
                [password],
            ).fetchone() or (0,)
            assert hits == 0, f"{database}.{schema}.{table} holds the password"
    shown = json.loads(settings)["db"]
    assert shown == redact(f"{two_runs.db} password={password}") and shown.endswith("password=***")
    # Nor any file the runs wrote (rows, images, creatives, reports), nor the flow run on Prefect's server.
    for path in [p for p in two_runs.root.rglob("*") if p.is_file()]:
        assert password.encode() not in path.read_bytes(), path
    with get_client(sync_client=True) as client:
        parameters = client.read_flow_run(flow_run_id).parameters
        flow_run = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
        deadline = time.monotonic() + 30
        while not (logs := client.read_logs(flow_run)):
            assert time.monotonic() < deadline, "the flow run's logs never reached the server"
            time.sleep(0.5)
    assert parameters["settings"]["db"] == "**********"
    assert password not in json.dumps(parameters) + "".join(log.message for log in logs)


@pytest.mark.slow
def test_adforge_commands_read_and_review_a_postgres_lake(
    two_runs: TwoRuns, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    db, run_id = two_runs.db, two_runs.run_ids["b"]
    expected = planned(BRIEF_FILES["b"])
    sql = f"SELECT copy_id, channel FROM copies WHERE run_id = '{run_id}' ORDER BY copy_id"
    assert main(["query", "--db", db, "--format", "json", sql]) == 0
    copies = json.loads(capsys.readouterr().out)
    assert len(copies) == expected["copies"]
    assert {c["channel"] for c in copies} == {"google_search", "display"}

    assert main(["quality", "--db", db, "--run", run_id]) == 0
    report = capsys.readouterr().out
    assert "within channel limits" in report, report

    assert main(["approve", "--db", db, "--all-pending", "--reviewer", "qa"]) == 0
    capsys.readouterr()
    with Reader(db) as lake_rows:
        decided = lake_rows.rows("SELECT run_id, status, count(*) AS n FROM v_review_status GROUP BY ALL")
    assert {(r["run_id"], r["status"]): r["n"] for r in decided} == {
        (two_runs.run_ids[name], "approved"): planned(rows)["copies"] for name, rows in BRIEF_FILES.items()
    }

    out = tmp_path / "export"
    assert main(["export", "--db", db, "--run", run_id, "--to", str(out)]) == 0
    exported = {table: pq.read_table(out / f"{table}.parquet") for table in ("copies", "images", "creatives")}
    assert {t: rows.num_rows for t, rows in exported.items()} == expected
    assert sorted(exported["copies"].column("copy_id").to_pylist()) == [c["copy_id"] for c in copies]
    assert set(exported["images"].column("run_id").to_pylist()) == {run_id}


CREATOR = """
import sys
from adforge.storage.db import Store

Store(sys.argv[1], lake_data=sys.argv[2])
"""


@pytest.mark.slow
def test_processes_creating_one_postgres_lake_at_once_all_get_it(postgres_cluster: Cluster, tmp_path: Path):
    """Workers started together on a new, empty catalog database: DuckLake's own tables are created by
    one of them, the others' ATTACH (which lost that race) is tried again, and the lake's tables and views
    are made once, in one snapshot."""
    db = postgres_cluster.new_lake("adforge_new")
    env = client_env(PGPASSFILE=str(postgres_cluster.passfile)) | {
        "XDG_CACHE_HOME": str(postgres_cluster.cache)
    }
    command = [sys.executable, "-c", CREATOR, db, str(tmp_path / "files")]
    creators = [subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for creator in creators:
        _, err = creator.communicate(timeout=300)
        assert creator.returncode == 0, err[-3000:]
    with Reader(db) as lake_rows:
        tables = lake_rows.rows("SELECT count(*) AS n FROM duckdb_tables() WHERE database_name = 'lake'")
        snapshots = lake_rows.rows("SELECT count(*) AS n FROM ducklake_snapshots('lake')")
    assert tables == [{"n": len(lake.model())}]
    assert snapshots == [{"n": 2}], "the catalog's creation, then every table, view and comment at once"


@pytest.mark.slow
def test_a_killed_run_on_a_postgres_lake_resumes_storing_everything_once(
    postgres_cluster: Cluster, tmp_path: Path
):
    """The first run (credentials from PGPASSWORD) creates the lake and is killed after its first copy
    chunk is stored; the next (credentials from PGPASSFILE) stores the rest, and nothing twice."""
    db = postgres_cluster.new_lake("adforge_resume")
    briefs = write_briefs(tmp_path / "briefs.parquet", RESUMED)
    env = adforge_env(postgres_cluster, db, tmp_path / "artifacts") | {
        "ADFORGE_LAKE_DATA": str(tmp_path / "files")
    }
    killed = finish(start_run(briefs, env | {"PGPASSWORD": postgres_cluster.password,
                                             "ADFORGE_FAULT": "kill:copy-written:1"}))  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    with Reader(db) as lake_rows:
        (first,) = lake_rows.rows("SELECT run_id, status FROM runs")
        chunk = SMALL["copy_chunk_size"]
        assert lake_rows.stored(first["run_id"]) == {"copies": chunk, "images": 0, "creatives": 0}
    assert first["status"] == "running", "killed: the run could not record its end"

    resumed = finish(start_run(briefs, env | {"PGPASSFILE": str(postgres_cluster.passfile)}))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected = planned(RESUMED)
    with Reader(db) as lake_rows:
        runs = lake_rows.rows("SELECT run_id, status FROM runs ORDER BY started_at")
        assert runs[0]["run_id"] == first["run_id"]
        assert [r["status"] for r in runs] == ["interrupted", "completed"]
        # The resumed run wrote only the copies the killed one had not stored, then every image and creative.
        assert lake_rows.stored(runs[1]["run_id"]) == expected | {"copies": expected["copies"] - chunk}
        assert lake_rows.stored(first["run_id"]) == {"copies": chunk, "images": 0, "creatives": 0}
        lake_rows.assert_each_row_once()
    assert list((tmp_path / "files").rglob("*.parquet")), "the lake the first run created has its data path"

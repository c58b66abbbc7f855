"""Safe to share: passwords stay out of what is stored and shown, usage reports are off however the flow
starts, the Prefect API needs its auth string, a deployment's run changes only what it allows, and a
model missing from the cache is an error rather than a download."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import duckdb
import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import free_port
from fakes import FAKES
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

from adforge.flows.cli import main
from adforge.flows.generate_campaigns import generate_campaigns
from adforge.flows.overrides import OVERRIDABLE
from adforge.flows.redaction import redact
from adforge.flows.settings import Settings, load_settings
from adforge.tasks import generation
from adforge.tasks.sample_briefs import COLUMNS, SAMPLE_BRIEFS

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
BRIEF = dict(zip(COLUMNS, SAMPLE_BRIEFS[0], strict=True)) | {"channels": ["display"], "variants": 1}


def write_briefs(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist([BRIEF]), path)
    return path


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("ducklake:postgres:dbname=adforge host=db user=u password=secret",
         "ducklake:postgres:dbname=adforge host=db user=u password=***"),
        ("ducklake:postgres:password='sec ret' dbname=x", "ducklake:postgres:password=*** dbname=x"),
        ("host=db sslpassword=secret sslmode=require", "host=db sslpassword=*** sslmode=require"),
        ("postgresql://u:secret@host/db", "postgresql://u:***@host/db"),
        ("ducklake:postgres:postgresql://u:secret@host:5432/db?sslmode=require",
         "ducklake:postgres:postgresql://u:***@host:5432/db?sslmode=require"),
        ("postgresql://u:se@cret@host/db", "postgresql://u:***@host/db"),
        ("postgresql://host/db?user=u&password=secret&sslmode=require",
         "postgresql://host/db?user=u&password=***&sslmode=require"),
        ("s3://key:secret@bucket/adforge", "s3://key:***@bucket/adforge"),
        ("ray://admin:secret@head:10001", "ray://admin:***@head:10001"),
        # nothing to hide
        ("ray://head:10001", "ray://head:10001"),
        ("ducklake:sqlite:data/adforge.sqlite", "ducklake:sqlite:data/adforge.sqlite"),
        ("http://[::1]:8080/lake/", "http://[::1]:8080/lake/"),
        ("ssh://deploy@host/srv", "ssh://deploy@host/srv"),
        ("data/adforge.duckdb", "data/adforge.duckdb"),
    ],
)  # fmt: skip
def test_redact(value: str, shown: str):
    assert redact(value) == shown
    assert "secret" not in redact(value).replace("sslpassword", "")


def test_run_stores_and_shows_no_password(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """`adforge run` with URL settings holding passwords (unused by a local run, so it completes): the
    runs row, the flow run's parameters on the Prefect server and its logs hold *** or nothing."""
    db = tmp_path / "adforge.duckdb"
    secret_settings = {"ray_address": "ray://admin:raysecret@head:10001",
                       "lake_data": "s3://key:lakesecret@bucket/lake/"}  # fmt: skip
    argv = ["run", str(write_briefs(tmp_path / "b.parquet")), "--db", str(db),
            "--artifacts", str(tmp_path / "artifacts")]  # fmt: skip
    for name, value in secret_settings.items() | FAKES.items():
        argv += ["--" + name.replace("_", "-"), str(value)]
    assert main(argv) == 0
    with duckdb.connect(str(db), read_only=True) as con:
        flow_run_id, stored = con.execute("SELECT flow_run_id, settings FROM runs").fetchone()
    stored = json.loads(stored)
    assert (stored["ray_address"], stored["lake_data"]) == (
        "ray://admin:***@head:10001",
        "s3://key:***@bucket/lake/",
    )
    with get_client(sync_client=True) as client:
        parameters = client.read_flow_run(flow_run_id).parameters
        deadline = time.monotonic() + 30
        while not (logs := client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))):
            assert time.monotonic() < deadline, "the flow run's logs never reached the server"
            time.sleep(0.5)  # logs are sent in batches
    assert parameters["settings"]["ray_address"] == "**********"
    assert parameters["settings"]["db"] == str(db)  # only values holding a password are hidden
    shown = json.dumps(parameters) + "".join(log.message for log in logs) + capsys.readouterr().out
    assert "raysecret" not in shown and "lakesecret" not in shown


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--db", "ducklake:postgres:dbname=adforge host=db user=u password=pgsecret"],
         "adforge: error: db: a password in a setting is kept in plain text in the deployment's parameters "
         "on the Prefect server; give passwords through PGPASSWORD or ~/.pgpass (PostgreSQL) and the AWS_* "
         "variables (object storage)"),
        (["--artifacts", "s3://key:pgsecret@bucket/x"], "adforge: error: artifacts: a password in a setting"),
        (["--overridable", "seed,sede"], "adforge: error: overridable: unknown settings sede"),
    ],
)  # fmt: skip
def test_serve_refuses_passwords_and_unknown_overridable(
    flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
):
    assert (
        main(
            ["serve", "--briefs", "drop", *flags, *(f"--{k.replace('_', '-')}={v}" for k, v in FAKES.items())]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1 and "pgsecret" not in err


def test_errors_show_no_password(capsys: pytest.CaptureFixture[str]):
    assert main(["query", "select 1", "--db", "s3://key:qsecret@bucket/adforge.duckdb"]) == 1
    err = capsys.readouterr().err
    assert "s3://key:***@bucket/adforge.duckdb" in err and "qsecret" not in err


def test_a_bare_model_name_missing_from_the_cache_is_an_error(tmp_path: Path):
    empty = str(tmp_path / "models")
    s = load_settings(overrides={"models_dir": empty})
    with pytest.raises(ValueError) as e:
        s.engine()
    assert str(e.value) == (
        f"text_model: SmolLM2-135M-Instruct is not in the model cache {empty}; run adforge models prepare, "
        "or name a local folder or a hub id (org/name)"
    )
    with pytest.raises(ValueError, match=f"^image_model: tiny-sd is not in the model cache {empty};"):
        s.image_model_path()
    # A hub id or a path goes to the loader as is; generators other than vLLM and diffusers load nothing.
    hub = Settings(models_dir=empty, text_model="Qwen/Qwen2.5-7B-Instruct", image_model="./sd")
    assert (hub.text_model_path(), hub.image_model_path()) == ("Qwen/Qwen2.5-7B-Instruct", "./sd")
    load_settings(overrides={"models_dir": empty, **FAKES}).check_models()


def test_a_run_with_a_missing_model_stops_before_any_work(tmp_path: Path):
    loaded = set(generation._loaded)
    db = tmp_path / "adforge.duckdb"
    settings = {"db": str(db), "artifacts": str(tmp_path / "a"), "models_dir": str(tmp_path / "models")}
    with pytest.raises(ValueError, match=r"^text_model: SmolLM2-135M-Instruct is not in the model cache"):
        generate_campaigns(briefs=[str(write_briefs(tmp_path / "b.parquet"))], settings=settings)
    assert not db.exists() and set(generation._loaded) == loaded


WORKER = """
import json, os, sys
from prefect.flows import load_flow_from_entrypoint

if sys.argv[1]:
    load_flow_from_entrypoint(sys.argv[1])
names = ("DO_NOT_TRACK", "PREFECT_SERVER_ANALYTICS_ENABLED", "VLLM_NO_USAGE_STATS", "RAY_USAGE_STATS_ENABLED")
seen = {"env": {n: os.environ.get(n) for n in names}}
if "--ask-the-libraries" in sys.argv:
    from ray._common.usage.usage_lib import usage_stats_enabled
    from vllm.usage.usage_lib import is_usage_stats_enabled

    seen |= {"ray": usage_stats_enabled(), "vllm": is_usage_stats_enabled()}
print(json.dumps(seen))
"""
# Where a Prefect worker finds the flow: a file path (deploy/prefect.yaml) or a module path (`adforge serve`).
ENTRYPOINTS = [f"{ROOT}/flows/generate_campaigns.py:generate_campaigns",
               "adforge.flows.generate_campaigns:generate_campaigns"]  # fmt: skip
OFF = {"DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "VLLM_NO_USAGE_STATS": "1",
       "RAY_USAGE_STATS_ENABLED": "0"}  # fmt: skip


def load_like_a_worker(entrypoints: list[str], home: Path, *flags: str) -> list[dict]:
    """What a fresh process sees after loading each entrypoint (side by side), in an environment without
    any opt-out: none of the variables, and a home without opt-out files."""
    opt_outs = {*OFF, "VLLM_DO_NOT_TRACK"}
    env = {k: v for k, v in os.environ.items() if k not in opt_outs} | {"HOME": str(home)}
    argv = [sys.executable, "-c", WORKER]
    workers = [subprocess.Popen([*argv, e, *flags], cwd=home, env=env, stdout=subprocess.PIPE, text=True)
               for e in entrypoints]  # fmt: skip
    return [json.loads(w.communicate(timeout=300)[0].splitlines()[-1]) for w in workers]


def test_loading_the_flow_module_turns_usage_reports_off(tmp_path: Path):
    assert load_like_a_worker(ENTRYPOINTS, tmp_path) == [{"env": OFF}] * 2


@pytest.mark.slow
def test_vllm_and_ray_see_usage_reports_off(tmp_path: Path):
    """Asked themselves, vLLM and Ray say their reports are off; without the flow module (the last
    process) they say on, so the question can tell."""
    seen = load_like_a_worker([*ENTRYPOINTS, ""], tmp_path, "--ask-the-libraries")
    off, on = (
        {"env": OFF, "ray": False, "vllm": False},
        {"env": dict.fromkeys(OFF), "ray": True, "vllm": True},
    )
    assert seen == [off, off, on]


class Server:
    """A Prefect server with an auth string, and `adforge serve` on the fake generators, as processes."""

    def __init__(self, tmp_path: Path):
        self.tmp_path, self.port = tmp_path, free_port()
        self.auth = f"admin:{secrets.token_hex(8)}"
        base = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "ADFORGE_"))}
        self.env = base | {"PREFECT_HOME": str(tmp_path / "prefect-home"), "PYTHONPATH": str(ROOT / "tests"),
                           "PREFECT_RUNNER_POLL_FREQUENCY": "2",
                           "PREFECT_API_URL": f"http://127.0.0.1:{self.port}/api"}  # fmt: skip
        self.processes: list[subprocess.Popen] = []

    def start(self, argv: list[str], env: dict[str, str]) -> None:
        with open(self.tmp_path / f"{len(self.processes)}.log", "w") as log:
            self.processes.append(subprocess.Popen(
                argv, cwd=self.tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            ))  # fmt: skip

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/api{path}"

    def api(self, method: str, path: str, body: dict | None = None) -> httpx.Response:
        """A request with the auth string, as a client with PREFECT_API_AUTH_STRING sends it."""
        user, password = self.auth.split(":", 1)
        return httpx.request(method, self.url(path), json=body, auth=(user, password), timeout=30)

    def create_run(self, deployment: str, body: dict) -> str:
        """A flow run's id; a busy server's 5xx (its SQLite database locked) is asked again, twice."""
        for _ in range(3):
            response = self.api("POST", f"/deployments/{deployment}/create_flow_run", body)
            if response.status_code < 500:
                break
            time.sleep(2)
        assert response.is_success, f"{response.status_code}: {response.text[:500]}"
        return response.json()["id"]

    def wait_for(self, what: str, check, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if check():
                    return
            except httpx.HTTPError:
                pass  # not up yet
            time.sleep(1)
        logs = "\n".join(f.read_text()[-3000:] for f in sorted(self.tmp_path.glob("*.log")))
        raise AssertionError(f"timed out waiting for {what}\n{logs}")

    def stop(self) -> None:
        for process in reversed(self.processes):
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def server(tmp_path: Path):
    s = Server(tmp_path)
    yield s
    s.stop()


@pytest.mark.slow
def test_authenticated_server_and_what_a_run_may_change(server: Server, tmp_path: Path):
    server.start([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(server.port)],
                 server.env | {"PREFECT_SERVER_API_AUTH_STRING": server.auth})  # fmt: skip
    server.wait_for("the Prefect server", lambda: httpx.get(server.url("/health")).json() is True)

    # Without the auth string, or with a wrong one, the API refuses every client.
    assert httpx.post(server.url("/flows/filter"), json={}, auth=("admin", "wrong")).status_code == 401
    assert httpx.post(server.url("/flows/filter"), json={}).status_code == 401
    assert server.api("POST", "/flows/filter", {}).status_code == 200
    refused = subprocess.run([str(BIN / "prefect"), "deployment", "ls"], env=server.env, capture_output=True,
                             text=True, timeout=120)  # fmt: skip
    assert refused.returncode != 0 and "401" in refused.stdout + refused.stderr

    db = tmp_path / "adforge.duckdb"
    write_briefs(tmp_path / "drop" / "monday.parquet")
    client = server.env | {"PREFECT_API_AUTH_STRING": server.auth}
    server.start([str(BIN / "adforge"), "serve", "--briefs", "drop", "--name", "secure", "--db", str(db),
                  *(f"--{k.replace('_', '-')}={v}" for k, v in FAKES.items())], client)  # fmt: skip
    server.wait_for(
        "the deployment", lambda: server.api("GET", "/deployments/name/generate_campaigns/secure").is_success
    )
    deployment = server.api("GET", "/deployments/name/generate_campaigns/secure").json()
    assert deployment["parameters"]["overridable"] == list(OVERRIDABLE)

    elsewhere = tmp_path / "elsewhere.duckdb"
    runs = {
        "as deployed": {},
        "seed changed": {"parameters": {"settings": {"seed": 7}}},
        "db changed": {"parameters": {"settings": {"db": str(elsewhere)}}},
        "generator changed": {"parameters": {"settings": {"seed": 7, "text_generator": "os:system"}}},
        "overridable changed": {"parameters": {"settings": {"db": str(elsewhere)}, "overridable": ["db"]}},
        "environment changed": {"job_variables": {"env": {"ADFORGE_DB": str(elsewhere)}}},
    }
    ids = {name: server.create_run(deployment["id"], body) for name, body in runs.items()}
    states = {}

    def ended() -> bool:
        for name, run_id in ids.items():
            state = server.api("GET", f"/flow_runs/{run_id}").json()["state"]
            if state["type"] in ("COMPLETED", "FAILED", "CRASHED"):
                states[name] = (state["type"], state["message"])
        return len(states) == len(ids)

    server.wait_for("the flow runs", ended, timeout=400)
    refused = {
        "db changed": "settings.db: a run of deployment secure may not change it (overridable: seed, temp",
        "generator changed": "settings.text_generator: a run of deployment secure may not change it",
        "overridable changed": "overridable: a run of deployment secure may not change",
        # A worker starts the flow with a run's `env`, where ADFORGE_* variables are settings too.
        "environment changed": "job variable env: a run of deployment secure may not set its own",
    }
    ok = {"as deployed": "COMPLETED", "seed changed": "COMPLETED"}
    assert {name: kind for name, (kind, _) in states.items()} == ok | dict.fromkeys(refused, "FAILED"), states
    for name, message in refused.items():
        assert message in states[name][1]
    with duckdb.connect(str(db), read_only=True) as con:
        seeds = con.execute("SELECT seed FROM runs WHERE status = 'completed' ORDER BY seed").fetchall()
    assert seeds == [(0,), (7,)]
    assert not elsewhere.exists()


def test_the_lock_pins_every_dependency():
    """requirements.lock, which `make install` installs, pins a version of every dependency of
    pyproject.toml (the cpu and dev extras too) that the dependency's specifier allows: a dependency
    added or raised without `make lock` fails here."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    lines = (ROOT / "requirements.lock").read_text().splitlines()
    pins = dict(line.split("==") for line in lines if line and not line.startswith("#"))
    locked = {canonicalize_name(name): Version(version) for name, version in pins.items()}
    for requirement in map(Requirement, project["dependencies"] + extras["cpu"] + extras["dev"]):
        version = locked.get(canonicalize_name(requirement.name))
        assert version and requirement.specifier.contains(version, prereleases=True), requirement

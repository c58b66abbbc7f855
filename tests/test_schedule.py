"""A real Prefect server: the README's "Run it on a schedule" commands, run as written."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import free_port

from adforge.tasks.sample_briefs import COLUMNS, SAMPLE_BRIEFS

ROOT = Path(__file__).resolve().parent.parent
DEPLOYMENT = "generate_campaigns/adforge-nightly"


def readme_blocks(section: str) -> list[list[str]]:
    """The command lines of each code block in a README section."""
    text = (ROOT / "README.md").read_text().split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return [
        [line for line in block.splitlines() if line.strip()]
        for block in re.findall(r"```\n(.*?)```", text, re.S)
    ]


class Shell:
    """Runs README lines in one folder with one environment, as a user's terminal would."""

    def __init__(self, cwd: Path, env: dict[str, str], port: int):
        self.cwd, self.env, self.port = cwd, env, port
        self.background: list[subprocess.Popen] = []

    def argv(self, line: str) -> list[str]:
        return shlex.split(line.replace("4200", str(self.port)))

    def run(self, line: str, timeout: float = 120, cwd: Path | None = None) -> str:
        argv = self.argv(line)
        if argv[0] == "export":
            name, value = argv[1].split("=", 1)
            self.env[name] = value
            return ""
        result = subprocess.run(
            argv, cwd=cwd or self.cwd, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        assert result.returncode == 0, f"{line}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
        return result.stdout

    def start(self, line: str) -> None:
        """A long-running command (the user leaves it in its terminal); its output goes to a log."""
        with open(self.cwd / f"{len(self.background)}.log", "w") as log:  # the child keeps its own copy
            process = subprocess.Popen(
                self.argv(line), cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.background.append(process)

    def api(self, method: str, path: str, body: dict | None = None) -> Any:
        response = httpx.request(method, f"http://127.0.0.1:{self.port}/api{path}", json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    def wait_for(self, what: str, check, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if check():
                    return
            except (httpx.HTTPError, OSError):
                pass  # not up yet: try again until the deadline
            time.sleep(1)
        logs = "\n".join(f.read_text()[-2000:] for f in sorted(self.cwd.glob("*.log")))
        raise AssertionError(f"timed out waiting for {what}\n{logs}")

    def stop(self) -> None:
        for process in self.background:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def shell(tmp_path: Path, models_dir: str):
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "ADFORGE_"))}
    port = free_port()
    env |= {"PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_SERVER_API_PORT": str(port),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "ADFORGE_MODELS_DIR": models_dir}  # fmt: skip
    sh = Shell(tmp_path, env, port)
    yield sh
    sh.stop()


def artifacts_of(sh: Shell, flow_run_id: str) -> dict[str, dict]:
    found = sh.api("POST", "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}})
    return {a["key"]: a for a in found}


def summary_rows(artifact: dict) -> dict[str, Any]:
    data = artifact["data"]
    rows = json.loads(data) if isinstance(data, str) else data
    return {(r["stage"], r["measure"]): r["value"] for r in rows}


def trigger(sh: Shell, lines: list[str]) -> dict:
    """Run the README's trigger block; returns the flow run it created, once it has ended."""
    output = "".join(sh.run(line, timeout=600) for line in lines)
    flow_run_id = re.search(r"UUID: ([0-9a-f-]{36})", output)
    assert flow_run_id, output
    return sh.api("GET", f"/flow_runs/{flow_run_id[1]}")


@pytest.mark.slow
def test_schedule_section_of_readme(shell: Shell):
    server_block, serve_block, trigger_block, pool_block = readme_blocks("Run it on a schedule")
    brief = dict(zip(COLUMNS, SAMPLE_BRIEFS[0], strict=True)) | {"channels": ["instagram"], "variants": 2}
    drop = shell.cwd / "data" / "drop"
    drop.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([brief]), drop / "monday.parquet")

    started = time.monotonic()
    [server] = server_block
    shell.start(server)
    shell.wait_for("the Prefect server", lambda: shell.api("GET", "/health") is True)
    for line in serve_block:
        shell.start(line) if "adforge serve" in line else shell.run(line)
    shell.wait_for("the deployment", lambda: shell.api("GET", f"/deployments/name/{DEPLOYMENT}"))
    deployment = shell.api("GET", f"/deployments/name/{DEPLOYMENT}")
    assert [s["schedule"]["cron"] for s in deployment["schedules"]] == ["0 2 * * *"]

    first = trigger(shell, trigger_block)
    assert first["state"]["type"] == "COMPLETED", first["state"]
    tasks = shell.api("POST", "/task_runs/filter", {"task_runs": {"flow_run_id": {"any_": [first["id"]]}}})
    names = {t["name"] for t in tasks}
    assert {"read-briefs[1 paths]", "generate-copy[chunk 1/1]", "generate-images[batch 1/1]"} <= names, names
    artifacts = artifacts_of(shell, first["id"])
    # Prefect stores a link artifact as markdown: [text](link).
    assert {k: a["type"] for k, a in artifacts.items()} == {
        "run-summary": "table", "copy-sample": "markdown", "run-report": "markdown"
    }  # fmt: skip
    assert artifacts["run-report"]["data"].startswith("[Report of run-")
    rows = summary_rows(artifacts["run-summary"])
    print(
        "run-summary artifact:",
        json.dumps([{"stage": s, "measure": m, "value": v} for (s, m), v in rows.items()]),
    )
    copies = rows[("copy", "copies written")]
    assert rows[("read", "brief files read")] == 1 and rows[("read", "briefs read")] == 1
    assert copies + rows.get(("copy", "failures: headline"), 0) >= 1
    assert re.search(r"instagram · variant [12]", artifacts["copy-sample"]["data"])
    report = Path(artifacts["run-report"]["data"].split("](", 1)[1].rstrip(")").removeprefix("file://"))
    assert report.exists() and report.read_text().count("class='copy'") == copies

    # The next scheduled run finds nothing new in the drop folder and says so.
    second = trigger(shell, trigger_block)
    assert second["id"] != first["id"] and second["state"]["type"] == "COMPLETED"
    rows = summary_rows(artifacts_of(shell, second["id"])["run-summary"])
    assert rows[("read", "brief files skipped")] == 1 and rows[("copy", "copies written")] == 0
    assert rows[("run", "note")] == "no generation: all 1 brief files were processed before"
    with duckdb.connect(str(shell.cwd / "data" / "adforge.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM runs WHERE status LIKE 'completed%'").fetchone() == (2,)
        assert con.execute("SELECT count(*) FROM ingested_files").fetchone() == (1,)
    served = time.monotonic() - started

    # The work-pool deployments in deploy/prefect.yaml register against the same server.
    for line in pool_block:
        if "worker start" not in line:  # the worker is long-running; the deployments are what is checked
            shell.run(line.replace(".venv/bin/", f"{ROOT}/.venv/bin/"), cwd=ROOT)
    for name in ("adforge-nightly", "adforge-on-demand", "adforge-nightly-ray"):
        d = shell.api("GET", f"/deployments/name/generate_campaigns/{name}")
        assert d["work_pool_name"] == "adforge"
    print(f"server, serve and two triggered runs: {served:.0f} s")

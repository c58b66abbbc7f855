"""The Ray executor on a cluster of two nodes, each its own `ray start` (GCS and raylet processes), on one
machine: copy chunks and image batches run on both nodes, and the outputs equal the local executor's.

`two_node_cluster` is also what bench/multi_node.py measures."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adforge.flows.generate_campaigns import generate_campaigns
from adforge.flows.settings import Settings
from adforge.tasks.sample_briefs import COLUMNS, SAMPLE_BRIEFS

TESTS = Path(__file__).resolve().parent
RAY = str(Path(sys.executable).parent / "ray")
OBJECT_STORE_BYTES = 100 * 2**20
START_TIMEOUT_S = 90
GCS_WAIT_S = 60
AWS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
# Four sample briefs on X (whose rules the fake's copy meets), two variants each: 8 copies in 4
# chunks of 2, then 8 images in 4 batches of 2. Each node has one CPU and each task takes one, so the
# tasks submitted together must share the nodes.
SMALL = {"copy_chunk_size": 2, "image_batch_size": 2, "copy_attempts": 2, "ray_cpus_per_task": 1}
STAGES = {"generate-copy": 4, "generate-images": 4}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    address: str  # the head's GCS, what ray_address names
    dashboard: str  # the head's dashboard: Ray's state API (which node ran which task)
    env: dict[str, str]  # what the nodes' processes, and so their workers, were started with
    start_s: float  # from the first `ray start` until both nodes are alive and the state API answers
    temp_dir: str  # the nodes' logs are under its session_latest/logs
    nodes: dict[str, str] = field(default_factory=dict)  # custom resource (node_a, node_b) → Ray node id
    phases: dict[str, float] = field(default_factory=dict)  # seconds from the start: head, worker, state API


@contextmanager
def two_node_cluster(env: dict[str, str] | None = None) -> Iterator[Cluster]:
    """A head node (custom resource node_a) and a worker node (node_b), one CPU each, on one machine. Each
    node is a `ray start --block` in a session of its own, which is killed on exit: `ray stop` would stop
    every Ray process of the machine, other users' included.

    `env` is added to the nodes' environment, which their Ray workers inherit; tests/ is on PYTHONPATH
    for the fake generators. Ray puts the nodes on the machine's own address (it replaces 127.0.0.1 with a
    reachable one) and its GCS listens on every interface, so the nodes require Ray's token
    authentication (RAY_AUTH_MODE=token, a fresh token in RAY_AUTH_TOKEN) on the GCS and dashboard ports;
    the dashboard listens on loopback only. This process gets the same two variables for the block, as a
    driver needs them to connect."""
    temp = tempfile.mkdtemp(prefix="ray-")  # short: Ray's socket paths must stay under 108 bytes
    path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH", "")) if p)
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    node_env = os.environ | {"PYTHONPATH": path, "RAY_USAGE_STATS_ENABLED": "0", **auth, **(env or {})}
    gcs, dashboard = free_port(), free_port()
    common = ["--block", "--num-cpus", "1", "--num-gpus", "0",
              "--object-store-memory", str(OBJECT_STORE_BYTES), "--disable-usage-stats"]  # fmt: skip

    def ports() -> list[str]:  # every listening port chosen here: other clusters may run on this machine
        names = ("node-manager", "object-manager", "dashboard-agent-listen", "dashboard-agent-grpc",
                 "runtime-env-agent", "metrics-export")  # fmt: skip
        return [arg for name in names for arg in (f"--{name}-port", str(free_port()))]

    head = [RAY, "start", "--head", "--port", str(gcs), "--temp-dir", temp, *common, *ports(),
            "--resources", json.dumps({"node_a": 1}), "--include-dashboard", "true",
            "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard),
            "--ray-client-server-port", str(free_port())]  # fmt: skip
    worker = [RAY, "start", "--address", f"127.0.0.1:{gcs}", *common, *ports(),
              "--resources", json.dumps({"node_b": 1})]  # fmt: skip
    cluster = Cluster(f"127.0.0.1:{gcs}", f"http://127.0.0.1:{dashboard}", node_env, 0.0, temp)
    saved = {name: os.environ.get(name) for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, temp, ignore_errors=True)
        stack.callback(_use_auth, saved)
        _use_auth(dict(auth))
        started = time.perf_counter()
        # Both at once: the worker node's `ray start` imports Ray while the head starts, then waits for the
        # head's GCS (up to GCS_WAIT_S, a try a second).
        nodes, extra = {}, {"head": {}, "worker": {"RAY_gcs_server_port_wait_time_s": str(GCS_WAIT_S)}}
        for name, command in (("head", head), ("worker", worker)):
            with open(Path(temp) / f"{name}.log", "wb") as out:
                nodes[name] = subprocess.Popen(command, env=node_env | extra[name], stdout=out,
                                               stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
            stack.callback(_stop, nodes[name])
        for name, node in nodes.items():
            _wait_for(node, Path(temp) / f"{name}.log")
            cluster.phases[name] = round(time.perf_counter() - started, 2)
        cluster.nodes = _wait_for_nodes(cluster, 2)
        cluster.start_s = time.perf_counter() - started
        cluster.phases["state_api"] = round(cluster.start_s, 2)
        yield cluster


@pytest.fixture(scope="module")
def cluster(s3_endpoint: str) -> Iterator[Cluster]:
    """Two nodes whose workers import the fakes and reach the S3 server (the variables s3_bucket sets)."""
    with two_node_cluster({"AWS_ENDPOINT_URL": s3_endpoint, **AWS}) as c:
        yield c


@pytest.mark.slow
def test_multi_node_cluster_runs_chunks_and_batches_on_both_nodes(
    cluster: Cluster, settings: Settings, tmp_path: Path, s3_bucket: str
):
    """The same briefs through the local executor and through the cluster (ray_address = the head's GCS),
    artifacts on S3: equal outputs, and Ray's own record puts tasks of each stage on both nodes."""
    briefs = tmp_path / "briefs.parquet"
    rows = [dict(zip(COLUMNS, r, strict=True)) for r in SAMPLE_BRIEFS[:4]]
    pq.write_table(pa.Table.from_pylist([{**r, "channels": ["x"], "variants": 2} for r in rows]), briefs)
    runs = {"local": {}, "ray": {"executor": "ray", "ray_address": cluster.address}}
    for name, executor in runs.items():
        overrides = {"db": str(tmp_path / f"{name}.duckdb"), "artifacts": f"s3://{s3_bucket}/{name}",
                     **SMALL, **executor}  # fmt: skip
        summary = generate_campaigns(briefs=[str(briefs)], settings=settings.to_dict() | overrides)
        assert summary["copies"] == summary["images"] == summary["creatives"] == 8, summary
    local, ray = outputs(tmp_path / "local.duckdb"), outputs(tmp_path / "ray.duckdb")
    assert ray["copies"] == local["copies"], "same ids and the same text"
    assert ray["images"] == local["images"], "same ids, seeds and bytes"
    assert ray["creatives"] == local["creatives"]
    assert ray["failures"] == local["failures"] == []
    # The images the Ray workers wrote are on S3, byte for byte what their rows say.
    objects = fsspec.filesystem("s3")
    for path, sha256 in ray["paths"]:
        assert path.startswith(f"s3://{s3_bucket}/ray/images/")
        assert hashlib.sha256(objects.cat_file(path)).hexdigest() == sha256

    # Which node ran each task, as Ray recorded it (its task events, through the state API).
    ran = ray_tasks(cluster, STAGES)
    node = {node_id: resource for resource, node_id in cluster.nodes.items()}
    for stage, count in STAGES.items():
        nodes = sorted(node[t.node_id] for t in ran if t.name == stage)
        assert len(nodes) == count and set(nodes) == {"node_a", "node_b"}, f"{stage} ran on {nodes}"


@pytest.mark.slow
def test_multi_node_cluster_refuses_what_lacks_its_token(cluster: Cluster):
    """Token authentication is on: the dashboard (state API) and the GCS refuse a wrong or missing token."""
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{cluster.dashboard}/api/v0/nodes").close()
    assert refused.value.code == 401
    # One try at the GCS instead of Ray's twenty (a second each).
    env = cluster.env | {"RAY_AUTH_TOKEN": "0" * 64, "RAY_gcs_server_port_wait_time_s": "1"}
    driver = subprocess.run([sys.executable, "-c", f"import ray; ray.init({cluster.address!r})"], env=env,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert driver.returncode != 0
    assert "Authentication token is missing or incorrect" in driver.stderr


def outputs(db: Path) -> dict[str, list]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {
            "copies": con.execute(
                "SELECT copy_id, headline, body, cta, image_prompt FROM copies ORDER BY 1"
            ).fetchall(),
            "images": con.execute(
                "SELECT image_id, copy_id, seed, sha256, bytes FROM images ORDER BY 1"
            ).fetchall(),
            "creatives": con.execute(
                "SELECT creative_id, image_id, channel, sha256 FROM creatives ORDER BY 1"
            ).fetchall(),
            "failures": con.execute("SELECT item_id, reason FROM failures ORDER BY 1").fetchall(),
            "paths": con.execute("SELECT path, sha256 FROM images ORDER BY 1").fetchall(),
        }


def ray_tasks(cluster: Cluster, expected: dict[str, int]) -> list:
    """The finished Ray tasks of these names, once as many as expected have been reported: workers send
    their task events to the GCS every second or so, after the results."""
    from ray.util.state import list_tasks

    deadline = time.monotonic() + 30
    while True:
        tasks = [t for t in list_tasks(address=cluster.dashboard, detail=True, limit=1000)
                 if t.name in expected and t.state == "FINISHED"]  # fmt: skip
        counts = {name: sum(t.name == name for t in tasks) for name in expected}
        if counts == expected or time.monotonic() > deadline:
            return tasks
        time.sleep(0.5)


def _wait_for(node: subprocess.Popen, log: Path) -> None:
    """Until the node's `ray start` says it has started everything and now blocks."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while b"This command will now block" not in log.read_bytes():
        if node.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"a Ray node did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)


def _wait_for_nodes(cluster: Cluster, count: int) -> dict[str, str]:
    """Custom resource → node id of every alive node, once `count` are alive and the state API answers."""
    from ray.util.state import list_nodes

    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            alive = [n for n in list_nodes(address=cluster.dashboard, detail=True) if n.state == "ALIVE"]
        except Exception:
            alive = []
        if len(alive) >= count:
            return {r: n.node_id for n in alive for r in n.resources_total if r.startswith("node_")}
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(alive)} of {count} Ray nodes alive after {START_TIMEOUT_S} s")
        time.sleep(0.5)


def _stop(node: subprocess.Popen) -> None:
    """SIGTERM to the node's process group (the `ray start`, its GCS, raylet, dashboard and agents), then
    SIGKILL to whatever is left of its session: Ray workers make their own process groups, but stay in
    the session `start_new_session` gave the node."""
    with suppress(ProcessLookupError):
        os.killpg(node.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):  # a worker node exits in about a second; the head does not
        node.wait(timeout=3)
    deadline = time.monotonic() + 10
    while (left := _session(node.pid)) and time.monotonic() < deadline:
        for pid in left:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    node.wait(timeout=5)


def _session(sid: int) -> list[int]:
    """The live (not zombie) processes of session `sid`."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":  # state, ppid, pgrp, session
            pids.append(int(stat.parent.name))
    return pids


def _use_auth(values: dict[str, str] | dict[str, str | None]) -> None:
    """Set or clear RAY_AUTH_MODE and RAY_AUTH_TOKEN in this process, and make Ray read them again: a
    local `ray.init()` earlier in this process (another test) may have loaded another token and mode."""
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    from ray._raylet import AuthenticationTokenLoader, Config  # type: ignore[attr-defined]

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()

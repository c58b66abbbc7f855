"""Shared fixtures: one Prefect test server per session; settings for runs on the fake generators
(`settings`) or on the real engine and pipeline (`real_settings`, one of each per session).

Tests that use the real models (any test that needs `models_dir`) are marked `engine`; `make test-fast`
leaves them out."""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")

from fakes import FAKES
from prefect.testing.utilities import prefect_test_harness

from adforge.flows.settings import Settings, load_settings
from adforge.tasks.copy import generate_copy
from adforge.tasks.images import generate_images
from adforge.tasks.models import prepare_models
from bench.s3 import s3_server

# The cache `make models` builds (the models_dir setting's default), unless the tests are told otherwise.
MODELS_DIR = os.environ.get("ADFORGE_TEST_MODELS_DIR") or Settings.model_fields["models_dir"].default


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "models_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.engine)


@pytest.fixture(autouse=True)
def no_retry_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Failed generation tasks are still retried as declared; only the waits between tries (meant for
    a flaky engine) are left out."""
    for task in (generate_copy, generate_images):
        monkeypatch.setattr(task, "retry_delay_seconds", [0, 0])


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ADFORGE_* variable or adforge.toml of the developer's leaks into a test."""
    for name in list(os.environ):
        if name.startswith("ADFORGE_") and name != "ADFORGE_TEST_MODELS_DIR":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session", autouse=True)
def prefect_server():
    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def models_dir() -> str:
    prepare_models(MODELS_DIR)  # a no-op when `make models` has run
    return MODELS_DIR


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for a run into temporary files on the fake generators: no model is loaded."""
    return load_settings(
        overrides={"db": str(tmp_path / "adforge.duckdb"), "artifacts": str(tmp_path / "artifacts"), **FAKES}
    )


@pytest.fixture
def real_settings(models_dir: str, tmp_path: Path) -> Settings:
    """Settings for a run into temporary files on the real models; the engine options are the same in
    every test, so one engine serves the session."""
    return load_settings(
        overrides={"models_dir": models_dir, "db": str(tmp_path / "adforge.duckdb"),
                   "artifacts": str(tmp_path / "artifacts")}
    )  # fmt: skip


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory: pytest.TempPathFactory):
    """One fake-generator run of the sample briefs with their kits, shared by the session: tests that change
    the database take their own copy (sample_db)."""
    from adforge.flows.generate_campaigns import generate_campaigns
    from adforge.tasks.sample_brand_kits import write_sample_kits
    from adforge.tasks.sample_briefs import write_sample_briefs

    root = tmp_path_factory.mktemp("sample-run")
    briefs, kits = root / "briefs" / "sample.parquet", root / "kits"
    write_sample_briefs(briefs)
    write_sample_kits(kits)
    settings = load_settings(overrides={"db": str(root / "a.duckdb"), "artifacts": str(root / "artifacts"),
                                        "brand_kits": str(kits), **FAKES})  # fmt: skip
    return generate_campaigns(briefs=[str(briefs.parent)], settings=settings.to_dict()), settings


@pytest.fixture
def sample_db(sample_run, tmp_path: Path):
    """(summary, path of a copy of the sample run's database, settings): a database this test may change."""
    summary, settings = sample_run
    db = tmp_path / "a.duckdb"
    shutil.copy(settings.db, db)
    return summary, str(db), settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real S3 API on loopback: moto's server, in its own process (bench/s3.py)."""
    with s3_server(tmp_path_factory.mktemp("s3") / "server.log") as endpoint:
        yield endpoint


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """An empty bucket, reached the way a user reaches S3: the standard AWS variables."""
    import fsspec

    aws = {"AWS_ENDPOINT_URL": s3_endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
    for name, value in aws.items():
        monkeypatch.setenv(name, value)
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    fsspec.filesystem("s3").mkdir(bucket)
    return bucket

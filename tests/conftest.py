"""Shared fixtures: one Prefect test server, one vLLM engine and one image pipeline per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")

from prefect.testing.utilities import prefect_test_harness

from flows.settings import Settings, load_settings
from tasks.models import prepare_models

ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = os.environ.get("ADFORGE_TEST_MODELS_DIR", str(ROOT / "data" / "models"))


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
def settings(models_dir: str, tmp_path: Path) -> Settings:
    """Settings for a run into temporary files; the engine options are the same in every test."""
    return load_settings(
        overrides={"models_dir": models_dir, "db": str(tmp_path / "adforge.duckdb"),
                   "artifacts": str(tmp_path / "artifacts")}
    )  # fmt: skip

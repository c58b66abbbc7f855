"""The deploy/ examples are accepted by the tools that read them."""

from __future__ import annotations

import ipaddress
import re
import shlex
from pathlib import Path

import pytest
import yaml

from adforge.flows.settings import load_settings

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def test_ray_cluster_config_passes_rays_schema():
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((DEPLOY / "ray-cluster.yaml").read_text())
    validate_config(prepare_config(config))  # raises on an unknown or misplaced key
    with pytest.raises(Exception, match="not allowed"):
        validate_config(prepare_config(config | {"min_worker": 3}))


def test_gpu_profile_is_valid_settings():
    s = load_settings(DEPLOY / "gpu.toml")
    assert (s.device, s.dtype, s.enforce_eager) == ("cuda", "auto", False)


def ray_starts() -> list[tuple[dict[str, str], list[str]]]:
    """Each `ray start` command of the cluster file: its environment assignments and its arguments."""
    config = yaml.safe_load((DEPLOY / "ray-cluster.yaml").read_text())
    starts = []
    for command in config["head_start_ray_commands"] + config["worker_start_ray_commands"]:
        words = shlex.split(command)
        n = next(i for i, w in enumerate(words) if not re.fullmatch(r"[A-Z_]+=\S*", w))
        env, args = dict(w.split("=", 1) for w in words[:n]), words[n:]
        if args[1:2] == ["start"]:
            starts.append((env, args))
    return starts


def test_ray_cluster_needs_a_token_and_binds_nothing_to_every_interface():
    text = (DEPLOY / "ray-cluster.yaml").read_text()
    assert "0.0.0.0" not in text and "::" not in text
    starts = ray_starts()
    assert len(starts) == 2  # head and workers
    usage_off = {"RAY_USAGE_STATS_ENABLED": "0", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
    for env, args in starts:
        assert env == {"RAY_AUTH_MODE": "token", **usage_off}, args
    [head] = [args for _, args in starts if "--head" in args]
    [dashboard] = [a.split("=", 1)[1] for a in head if a.startswith("--dashboard-host=")]
    assert ipaddress.ip_address(dashboard).is_loopback
    # Every node gets the token that the machine running `ray up` generated.
    assert yaml.safe_load(text)["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"


def test_gpu_profile_pins_model_revisions():
    s = load_settings(DEPLOY / "gpu.toml", {"score_model": "hashing"})  # the scorer comes from PyPI: no hub
    for revision in (s.text_model_revision, s.image_model_revision):
        assert re.fullmatch(r"[0-9a-f]{40}", revision), revision
    assert s.engine().text_model_revision == s.text_model_revision  # what reaches vllm.LLM


def test_lake_upkeep_deployment_loads_and_runs_weekly():
    import asyncio
    from datetime import UTC, datetime

    from prefect.flows import load_flow_from_entrypoint
    from prefect.server.schemas.schedules import CronSchedule

    deployments = yaml.safe_load((DEPLOY / "prefect.yaml").read_text())["deployments"]
    [upkeep] = [d for d in deployments if d["name"] == "adforge-lake-upkeep"]
    path, name = upkeep["entrypoint"].split(":")
    assert load_flow_from_entrypoint(f"{DEPLOY.parent / path}:{name}").name == "maintain_lake"
    load_settings(overrides=upkeep["parameters"]["settings"])  # settings the flow accepts
    [schedule] = upkeep["schedules"]
    cron = CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])  # raises on a bad one
    runs = asyncio.run(cron.get_dates(n=3, start=datetime(2026, 1, 1, tzinfo=UTC)))
    assert [(r.weekday(), r.hour, r.minute) for r in runs] == [(6, 3, 0)] * 3  # Sundays, 03:00 UTC
    assert (runs[1] - runs[0]).days == 7

"""The deploy/ examples are accepted by the tools that read them."""

from __future__ import annotations

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

"""Settings: defaults < TOML file < ADFORGE_* variables < flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from adforge.flows.cli import build_parser, settings_from
from adforge.flows.settings import Settings, load_settings


def test_every_setting_has_a_default_and_a_description():
    for name, f in Settings.model_fields.items():
        assert f.description and f.default is not None, name
    assert Settings().text_model == "SmolLM2-135M-Instruct"


def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "adforge.toml").write_text('text_model = "from-file"\nseed = 5\nimage_steps = 3\n')
    assert load_settings().text_model == "from-file"
    monkeypatch.setenv("ADFORGE_TEXT_MODEL", "from-env")
    monkeypatch.setenv("ADFORGE_SEED", "7")
    monkeypatch.setenv("ADFORGE_ENFORCE_EAGER", "false")
    args = build_parser().parse_args(["run", "x.parquet", "--text-model", "from-flag"])
    s = settings_from(args)
    assert (s.text_model, s.seed, s.image_steps, s.enforce_eager) == ("from-flag", 7, 3, False)


def test_bad_values_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ADFORGE_SEED", "seven")
    with pytest.raises(ValueError, match="seed: expected a number, got 'seven'"):
        load_settings()
    (tmp_path / "s.toml").write_text('txt_model = "x"\n')
    with pytest.raises(ValueError, match="unknown settings txt_model"):
        load_settings(tmp_path / "s.toml", {"seed": 1})


def test_model_names_resolve_to_the_cache_when_present(tmp_path: Path):
    (tmp_path / "models" / "tiny-sd").mkdir(parents=True)
    s = Settings(models_dir=str(tmp_path / "models"), text_model="Qwen/Qwen2.5-7B-Instruct")
    assert s.image_model_path() == str(tmp_path / "models" / "tiny-sd")
    assert s.text_model_path() == "Qwen/Qwen2.5-7B-Instruct"

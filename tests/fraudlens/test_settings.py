"""One settings object: environment over config file over defaults; mistakes are named."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from fraudlens.commands.config import settings_rows
from fraudlens.settings import Settings, load_settings


def test_defaults_are_embedded() -> None:
    settings = Settings()
    assert settings.state.backend == "memory"
    assert settings.store.url.startswith("sqlite:///")
    assert settings.narrative.backend == "transformers"


def test_environment_overrides_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "fraudlens.yaml"
    config.write_text("state:\n  backend: redis\nmodel:\n  seed: 5\n  target_alert_rate: 0.01\n")
    monkeypatch.setenv("FRAUDLENS_MODEL__SEED", "9")
    settings = load_settings(config)
    assert settings.state.backend == "redis"  # from the file
    assert settings.model.target_alert_rate == 0.01  # from the file
    assert settings.model.seed == 9  # the environment wins


def test_config_file_from_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("kafka:\n  bootstrap: kafka-1:9092\n")
    monkeypatch.setenv("FRAUDLENS_CONFIG", str(config))
    assert load_settings().kafka.bootstrap == "kafka-1:9092"


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.yaml does not exist"):
        load_settings(tmp_path / "nope.yaml")


def test_invalid_values_name_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUDLENS_STATE__BACKEND", "cassandra")
    with pytest.raises(ValidationError, match="state.backend"):
        load_settings()


def test_unknown_key_in_config_file_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("modle:\n  seed: 1\n")
    with pytest.raises(ValidationError, match="modle"):
        load_settings(config)


def test_config_rows_cover_every_section_and_mask_secrets() -> None:
    settings = Settings(narrative={"openai_api_key": "s3cret"})
    rows = {variable: value for variable, value, _ in settings_rows(settings)}
    assert rows["FRAUDLENS_NARRATIVE__OPENAI_API_KEY"] == "***"
    assert "s3cret" not in str(rows)
    for section in ("FEATURES", "STATE", "MODEL", "NARRATIVE", "KAFKA", "BROKER", "STORE"):
        assert any(v.startswith(f"FRAUDLENS_{section}__") for v in rows)

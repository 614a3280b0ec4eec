"""Process-level reliability: kill -9 mid-replay, SIGTERM mid-stream (real broker, subprocesses)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from stream_processes import committed, count_scores, stream_settings, through_proxy, wait_for

from streaming.broker import EmbeddedBroker, free_port
from streaming.scoring import RuleScorer
from streaming.settings import BrokerSettings, KafkaSettings, StoreSettings
from streaming.shutdown import EXIT_UNFINISHED
from streaming.store import SqlAlertStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: The issue's 100,000 (about 45 s here); FRAUDLENS_TEST_KILL_N=30000 for a quicker run.
KILL_N = int(os.environ.get("FRAUDLENS_TEST_KILL_N", "100000"))


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """A broker of the test's own, which the test may freeze (SIGSTOP) or kill."""
    broker = EmbeddedBroker(BrokerSettings(port=free_port()), log_path=tmp_path / "broker.log").start()
    yield broker
    if broker.pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(broker.pid, signal.SIGCONT)  # a frozen broker cannot act on the stop below
    broker.stop()


def test_kill_9_mid_replay_then_restart_scores_every_transaction_exactly_once(
    kafka_settings: KafkaSettings, sqlite_store_settings: StoreSettings, kafka_io: Any, transactions: Any,
    spawn: Callable[..., subprocess.Popen[bytes]], tmp_path: Path,
) -> None:
    records = transactions(KILL_N, seed=7)
    kafka_io.produce(kafka_settings.transactions_topic, kafka_io.encode(records))
    store = SqlAlertStore(sqlite_store_settings)
    store.setup()

    first = spawn(kafka_settings, sqlite_store_settings, "first")
    wait_for(lambda: count_scores(store) >= KILL_N * 0.3, 180, "the first process to score 30%")
    first.send_signal(signal.SIGKILL)
    first.wait()
    at_kill = count_scores(store)
    assert at_kill < KILL_N, "the replay finished before the kill; raise FRAUDLENS_TEST_KILL_N"

    second = spawn(kafka_settings, sqlite_store_settings, "second")
    wait_for(lambda: count_scores(store) >= KILL_N, 240, "the restarted process to score everything")
    second.send_signal(signal.SIGTERM)
    assert second.wait(30) == 0, (tmp_path / "second.log").read_text()[-3000:]

    ids = [r["transaction_id"] for r in records]
    assert store.count_scores() == KILL_N
    assert store.scored_ids(ids) == set(ids)
    expected_alerts = {r["transaction_id"] for r in records if RuleScorer().score_one(r["amount"]) >= 0.9}
    assert store.count_alerts() == len(expected_alerts)
    assert {a["transaction_id"] for a in store.list_alerts(limit=10 * KILL_N)} == expected_alerts

    # Topics are at-least-once: every transaction has a score record; a record published
    # just before the kill may appear twice (same transaction id, same score).
    on_topic = Counter(json.loads(m.value)["transaction_id"] for m in kafka_io.read(kafka_settings.scores_topic))
    assert set(on_topic) == set(ids)
    alerts_topic = Counter(json.loads(m.value)["transaction"]["transaction_id"] for m in kafka_io.read(kafka_settings.alerts_topic))
    assert set(alerts_topic) == expected_alerts
    summary = json.loads((tmp_path / "second.log").read_text().strip().splitlines()[-1])["summary"]
    assert summary["scored"] == KILL_N - at_kill  # the restart scored only what the store lacked
    store.close()


def test_sigterm_finishes_the_batch_commits_and_exits_0(
    kafka_settings: KafkaSettings, sqlite_store_settings: StoreSettings, kafka_io: Any, transactions: Any,
    spawn: Callable[..., subprocess.Popen[bytes]], tmp_path: Path,
) -> None:
    n = 20_000
    kafka_io.produce(kafka_settings.transactions_topic, kafka_io.encode(transactions(n, seed=8)))
    store = SqlAlertStore(sqlite_store_settings)
    store.setup()
    process = spawn(kafka_settings, sqlite_store_settings, "service")
    wait_for(lambda: count_scores(store) > 0, 120, "the service to start scoring")
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0, (tmp_path / "service.log").read_text()[-3000:]
    stored = store.count_scores()
    # Nothing in flight was abandoned: what is committed is exactly what is stored.
    assert 0 < stored <= n
    assert committed(kafka_settings.bootstrap, kafka_settings.group_id) == stored
    lines = [json.loads(line) for line in (tmp_path / "service.log").read_text().splitlines() if line.startswith("{")]
    assert any(line.get("message") == "stop requested" and line.get("signal") == "SIGTERM" for line in lines)
    store.close()


def test_sigterm_while_the_broker_is_frozen_exits_75_in_order_and_a_restart_loses_nothing(
    own_broker: EmbeddedBroker, sqlite_store_settings: StoreSettings, make_kafka_io: Callable[[str], Any],
    transactions: Any, spawn: Callable[..., subprocess.Popen[bytes]], tmp_path: Path,
) -> None:
    # A broker of the test's own, frozen with SIGSTOP: its connections stay open and nothing
    # answers. kafka-python's own waits have no overall bound here (its flush and close were
    # still waiting 90 s later); the stop bounds each (acks, commit, group leave) and says so.
    settings = stream_settings(own_broker.bootstrap, batch_size=200, shutdown_timeout_s=20.0)
    n = 20_000
    records = transactions(n, seed=13)
    io = make_kafka_io(settings.bootstrap)
    io.produce(settings.transactions_topic, io.encode(records))
    store = SqlAlertStore(sqlite_store_settings)
    store.setup()

    first = spawn(settings, sqlite_store_settings, "first")
    wait_for(lambda: count_scores(store) >= n * 0.2, 120, "the service to score 20%")
    assert own_broker.pid is not None
    os.kill(own_broker.pid, signal.SIGSTOP)
    first.send_signal(signal.SIGTERM)
    status = first.wait(60)
    output = (tmp_path / "first.log").read_text()
    assert status == EXIT_UNFINISHED, output[-3000:]
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert any(line.get("message") == "stopped with uncommitted batches" for line in lines), output[-3000:]
    assert not any(line.get("message", "").startswith("shutdown timed out") for line in lines), output[-3000:]
    assert "Exception ignored" not in output  # nothing left for kafka-python's __del__ to trip over at exit
    at_exit = count_scores(store)
    assert at_exit < n, "the stream finished before the freeze; use more records"

    os.kill(own_broker.pid, signal.SIGCONT)
    second = spawn(settings, sqlite_store_settings, "second")
    wait_for(lambda: count_scores(store) >= n, 240, "the restarted service to score everything")
    second.send_signal(signal.SIGTERM)
    assert second.wait(30) == 0, (tmp_path / "second.log").read_text()[-3000:]

    ids = [r["transaction_id"] for r in records]
    assert store.count_scores() == n
    assert store.scored_ids(ids) == set(ids)
    assert {json.loads(m.value)["transaction_id"] for m in io.read(settings.scores_topic)} == set(ids)
    store.close()


def test_sigterm_while_the_store_is_a_black_hole_ends_by_the_watchdog_with_stacks_and_loses_nothing(
    kafka_settings: KafkaSettings, pg_store_settings: StoreSettings, kafka_io: Any, transactions: Any,
    spawn: Callable[..., subprocess.Popen[bytes]], tmp_path: Path,
) -> None:
    # PostgreSQL behind a proxy that keeps the connections open and forwards nothing: the
    # service's store calls wait in the driver with no timeout, so the stop cannot finish.
    proxy, proxied = through_proxy(pg_store_settings)
    settings = kafka_settings.model_copy(update={"shutdown_timeout_s": 3.0})
    n = 20_000
    records = transactions(n, seed=16)
    kafka_io.produce(settings.transactions_topic, kafka_io.encode(records))
    store = SqlAlertStore(pg_store_settings)  # the test reads past the proxy
    store.setup()
    try:
        first = spawn(settings, proxied, "first")
        wait_for(lambda: count_scores(store) >= n * 0.2, 120, "the service to score 20%")
        proxy.freeze()
        first.send_signal(signal.SIGTERM)
        # Without the watchdog this process would wait for as long as the network stays silent.
        status = first.wait(60)
        output = (tmp_path / "first.log").read_text()
        assert status == EXIT_UNFINISHED, output[-3000:]
        lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
        timed_out = [line for line in lines if line.get("message", "").startswith("shutdown timed out")]
        assert timed_out and timed_out[0]["timeout_s"] == 3.0 and timed_out[0]["exit_status"] == 75, output[-3000:]
        assert "most recent call first" in output and "Current thread" in output  # faulthandler's dump
        assert count_scores(store) < n, "the stream finished before the freeze; use more records"

        proxy.thaw()
        proxy.cut()  # the old connections go (the database rolls their transactions back)
        # The restart talks to the database directly: what is tested is that nothing was lost.
        second = spawn(settings.model_copy(update={"shutdown_timeout_s": 25.0}), pg_store_settings, "second")
        wait_for(lambda: count_scores(store) >= n, 240, "the restarted service to score everything")
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0, (tmp_path / "second.log").read_text()[-3000:]
        ids = [r["transaction_id"] for r in records]
        assert store.count_scores() == n
        assert store.scored_ids(ids) == set(ids)
        assert committed(settings.bootstrap, settings.group_id) == n
    finally:
        proxy.thaw()
        proxy.cut()
        store.close()


def test_sigterm_during_a_store_outage_exits_75_and_a_restart_loses_nothing(
    kafka_settings: KafkaSettings, pg_store_settings: StoreSettings, kafka_io: Any, transactions: Any,
    spawn: Callable[..., subprocess.Popen[bytes]], tmp_path: Path,
) -> None:
    # The real PostgreSQL behind a TCP proxy we cut: the service's writes fail and retry
    # (backpressure) until it is told to stop; then it cannot make its batches durable.
    proxy, proxied = through_proxy(pg_store_settings)
    n = 20_000
    records = transactions(n, seed=14)
    kafka_io.produce(kafka_settings.transactions_topic, kafka_io.encode(records))
    store = SqlAlertStore(pg_store_settings)  # the test reads past the proxy
    store.setup()
    try:
        first = spawn(kafka_settings, proxied, "first")
        wait_for(lambda: count_scores(store) >= n * 0.2, 120, "the service to score 20%")
        proxy.cut()
        wait_for(lambda: "store write" in (tmp_path / "first.log").read_text(), 60, "the service to retry a store write")
        at_cut = count_scores(store)
        first.send_signal(signal.SIGTERM)
        status = first.wait(60)
        output = (tmp_path / "first.log").read_text()
        assert status == EXIT_UNFINISHED, output[-3000:]
        lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
        assert any(line.get("message") == "stopped with uncommitted batches" for line in lines)
        assert json.loads(output.strip().splitlines()[-1])["summary"]["interrupted"] is True
        assert not any(line.get("message", "").startswith("shutdown timed out") for line in lines)
        assert at_cut < n, "the stream finished before the cut; use more records"
        # Only durable batches were committed: nothing the store lacks is marked consumed.
        assert committed(kafka_settings.bootstrap, kafka_settings.group_id) <= count_scores(store)

        # The restart talks to the database directly: what is tested is that nothing was lost.
        second = spawn(kafka_settings, pg_store_settings, "second")
        wait_for(lambda: count_scores(store) >= n, 240, "the restarted service to score everything")
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0, (tmp_path / "second.log").read_text()[-3000:]
        ids = [r["transaction_id"] for r in records]
        assert store.count_scores() == n
        assert store.scored_ids(ids) == set(ids)
        assert committed(kafka_settings.bootstrap, kafka_settings.group_id) == n
    finally:
        proxy.cut()
        store.close()


def test_sigterm_after_the_broker_died_exits_75_in_order_without_the_watchdog(
    own_broker: EmbeddedBroker, sqlite_store_settings: StoreSettings, make_kafka_io: Callable[[str], Any],
    transactions: Any, spawn: Callable[..., subprocess.Popen[bytes]], tmp_path: Path,
) -> None:
    # The broker killed mid-stream (its memory storage dies with it): acks, commits and the
    # group leave all fail. The stop gives up each within its share of shutdown_timeout_s and
    # says so, instead of waiting for the watchdog.
    settings = stream_settings(own_broker.bootstrap, batch_size=200, shutdown_timeout_s=20.0)
    n = 20_000
    io = make_kafka_io(settings.bootstrap)
    io.produce(settings.transactions_topic, io.encode(transactions(n, seed=15)))
    store = SqlAlertStore(sqlite_store_settings)
    store.setup()
    process = spawn(settings, sqlite_store_settings, "service")
    wait_for(lambda: count_scores(store) >= n * 0.2, 120, "the service to score 20%")
    assert own_broker.pid is not None
    os.kill(own_broker.pid, signal.SIGKILL)
    assert count_scores(store) < n, "the stream finished before the broker died; use more records"
    process.send_signal(signal.SIGTERM)
    status = process.wait(60)
    output = (tmp_path / "service.log").read_text()
    assert status == EXIT_UNFINISHED, output[-3000:]
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert any(line.get("message") == "stopped with uncommitted batches" for line in lines), output[-3000:]
    assert not any(line.get("message", "").startswith("shutdown timed out") for line in lines), output[-3000:]
    assert "Exception ignored" not in output  # nothing left for kafka-python's __del__ to trip over at exit
    assert json.loads(output.strip().splitlines()[-1])["summary"]["interrupted"] is True
    store.close()

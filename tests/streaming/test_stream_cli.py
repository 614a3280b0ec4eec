"""`fraudlens broker | produce | stream`: help, fail-fast startup, a produce round trip."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fraudlens.cli import app
from streaming.broker import BrokerError, EmbeddedBroker, locate_tansu
from streaming.settings import BrokerSettings, KafkaSettings

runner = CliRunner()


def test_commands_are_registered() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("broker", "produce", "stream"):
        assert name in result.output


def test_stream_fails_fast_when_the_model_is_missing(tmp_path: Path) -> None:
    result = runner.invoke(app, ["stream", "--model", str(tmp_path / "nope"), "--plain-logs"])
    assert result.exit_code == 2
    assert "error:" in result.output and "does not exist" in result.output


def test_stream_fails_fast_when_the_registry_has_no_champion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUDLENS_MODEL__REGISTRY_DIR", str(tmp_path / "models"))
    result = runner.invoke(app, ["stream", "--plain-logs"])
    assert result.exit_code == 2 and "no champion" in result.output


def test_broker_binary_is_found() -> None:
    assert locate_tansu().is_file()
    with pytest.raises(BrokerError, match="not an executable"):
        locate_tansu(Path("/nonexistent/tansu"))


@pytest.mark.integration
def test_broker_refuses_a_port_in_use(broker: EmbeddedBroker) -> None:
    with pytest.raises(BrokerError, match="already listens"):
        EmbeddedBroker(BrokerSettings(port=broker.settings.port)).start()


@pytest.mark.integration
def test_produce_replays_a_file_in_time_order_keyed_by_card(
    kafka_settings: KafkaSettings, kafka_io: Any, transactions: Any, tmp_path: Path
) -> None:
    records = transactions(500, seed=4)
    shuffled = list(reversed(records))
    data = tmp_path / "tx.jsonl"
    data.write_text("\n".join(json.dumps({**r, "is_fraud": 0}) for r in shuffled) + "\n")
    result = runner.invoke(app, ["produce", "--data", str(data), "--bootstrap", kafka_settings.bootstrap,
                                 "--topic", kafka_settings.transactions_topic, "--rate", "5000"])
    assert result.exit_code == 0, result.output
    messages = kafka_io.read(kafka_settings.transactions_topic)
    assert len(messages) == len(records)
    # Per partition, records arrive in time order; every record is keyed by its card.
    for partition in {m.partition for m in messages}:
        stamps = [datetime.fromisoformat(json.loads(m.value)["timestamp"]) for m in messages if m.partition == partition]
        assert stamps == sorted(stamps)
    assert all(m.key.decode() == json.loads(m.value)["card_id"] for m in messages)
    assert all("is_fraud" not in json.loads(m.value) for m in messages)  # labels are not sent by default


@pytest.mark.integration
def test_broker_command_serves_until_sigterm_then_exits_0(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    from streaming.broker import ensure_topics, free_port, port_is_open

    port = free_port()
    fraudlens = Path(sys.executable).with_name("fraudlens")
    process = subprocess.Popen([str(fraudlens), "broker", "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 30
        while not port_is_open("127.0.0.1", port):
            assert process.poll() is None and time.monotonic() < deadline, "broker did not come up"
            time.sleep(0.1)
        time.sleep(0.5)  # topics are created right after the port opens
        assert ensure_topics(f"127.0.0.1:{port}", ["transactions", "scores", "alerts", "transactions.dlq"], 4) == []
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
        assert not port_is_open("127.0.0.1", port)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

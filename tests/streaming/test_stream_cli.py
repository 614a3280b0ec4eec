"""`fraudlens broker | produce | stream`: help, fail-fast startup, a produce round trip."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from process_guard import stop_process_tree
from stream_processes import wait_for
from typer.testing import CliRunner

from fraudlens.cli import app
from streaming.broker import BrokerError, EmbeddedBroker, free_port, locate_tansu, port_is_open
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


def _start_broker_command(tmp_path: Path, port: int) -> tuple[subprocess.Popen[bytes], Path]:
    """`fraudlens broker` in a process group of its own, its output in a log file."""
    log = tmp_path / "broker-command.log"
    fraudlens = Path(sys.executable).with_name("fraudlens")
    with log.open("wb") as out:
        process = subprocess.Popen([str(fraudlens), "broker", "--port", str(port)], stdout=out,
                                   stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True)
    return process, log


def _still_running(process: subprocess.Popen[bytes], log: Path) -> bool:
    if process.poll() is not None:
        raise AssertionError(f"`fraudlens broker` exited with {process.returncode}:\n{log.read_text()[-3000:]}")
    return True


def _listed_topics(bootstrap: str) -> set[str]:
    """The topics the broker lists now; none while it does not answer yet."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    host, port = bootstrap.rsplit(":", 1)
    if not port_is_open(host, int(port)):
        return set()
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="fraudlens-test")
    except KafkaError:
        return set()
    try:
        return set(admin.list_topics())
    finally:
        admin.close()


@pytest.mark.integration
def test_broker_command_serves_until_sigterm_then_exits_0(tmp_path: Path) -> None:
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    defaults = KafkaSettings()
    topics = {defaults.transactions_topic, defaults.scores_topic, defaults.alerts_topic, defaults.dlq_topic,
              defaults.shadow_topic, defaults.labels_topic}
    process, log = _start_broker_command(tmp_path, port)
    try:
        # The command creates its topics only after the port opens, later still on a busy machine.
        wait_for(lambda: _still_running(process, log) and topics <= _listed_topics(bootstrap), 60,
                 f"the broker command to create {sorted(topics)}")
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0, log.read_text()[-3000:]
        assert not port_is_open("127.0.0.1", port)
    finally:
        stop_process_tree(process)


@pytest.mark.integration
def test_a_broker_command_killed_with_sigkill_takes_its_broker_with_it(tmp_path: Path) -> None:
    port = free_port()
    process, log = _start_broker_command(tmp_path, port)
    try:
        wait_for(lambda: _still_running(process, log) and port_is_open("127.0.0.1", port), 60,
                 "the broker to listen")
        process.kill()  # no chance to stop its broker: the broker must end by itself
        process.wait()
        wait_for(lambda: not port_is_open("127.0.0.1", port), 10, "the broker of the killed command to end")
    finally:
        stop_process_tree(process)

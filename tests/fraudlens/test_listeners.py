"""Every listener binds loopback unless an operator opens it: the stream's metrics, the API, the broker.

The bound address is read from the kernel (/proc/net/tcp) for the real process, not from our settings.
"""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest
from cli_processes import cli_env, listening_address, start_cli, stop, train_tiny_bundle, wait_for

from api.settings import ApiSettings
from streaming.broker import free_port
from streaming.settings import BrokerSettings, KafkaSettings

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/net/tcp")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_bundle(tmp_path_factory.mktemp("listener-model"))


def test_defaults_are_loopback() -> None:
    assert KafkaSettings().metrics_host == "127.0.0.1"
    assert ApiSettings().host == "127.0.0.1"
    assert BrokerSettings().host == "127.0.0.1"


def _stream_metrics_address(tmp_path: Path, bundle: Path, host: str | None) -> tuple[str | None, int]:
    extra = {"FRAUDLENS_KAFKA__METRICS_HOST": host} if host else {}
    # No broker (a closed port): the stream keeps retrying, and serves its metrics meanwhile.
    env = cli_env(tmp_path, FRAUDLENS_STORE__URL=f"sqlite:///{tmp_path / 'store.db'}", **extra)
    port, log = free_port(), tmp_path / f"stream-{host}.log"
    process = start_cli(env, log, "stream", "--model", str(bundle), "--bootstrap", f"127.0.0.1:{free_port()}",
                        "--metrics-port", str(port))
    reach = host or "127.0.0.1"
    try:
        wait_for(lambda: httpx.get(f"http://{reach}:{port}/metrics", timeout=2).status_code == 200,
                 "the metrics server", process, log)
        return listening_address(process.pid, port), port
    finally:
        stop(process)


@pytest.mark.slow
@pytest.mark.integration
def test_stream_metrics_listen_on_loopback_by_default(tmp_path: Path, bundle: Path) -> None:
    address, _port = _stream_metrics_address(tmp_path, bundle, None)
    assert address == "127.0.0.1"


@pytest.mark.slow
@pytest.mark.integration
def test_metrics_host_setting_moves_the_listener(tmp_path: Path, bundle: Path) -> None:
    # 127.0.0.2 is loopback too on Linux, yet a different address than the default: the setting took effect.
    address, _port = _stream_metrics_address(tmp_path, bundle, "127.0.0.2")
    assert address == "127.0.0.2"


@pytest.mark.slow
def test_serve_listens_on_loopback_by_default(tmp_path: Path) -> None:
    env = cli_env(tmp_path, FRAUDLENS_STORE__URL=f"sqlite:///{tmp_path / 'store.db'}")
    port, log = free_port(), tmp_path / "serve.log"
    process = start_cli(env, log, "serve", "--port", str(port))
    try:
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200,
                 "the API", process, log)
        assert listening_address(process.pid, port) == "127.0.0.1"
    finally:
        stop(process)

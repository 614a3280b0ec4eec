"""``fraudlens demo`` does what its settings say: the ports the user set, every file under the work dir."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from cli_processes import cli_env, start_cli, stop, wait_for

from streaming.broker import free_port


@pytest.mark.slow
@pytest.mark.integration
def test_demo_uses_the_set_ports_and_keeps_every_file_under_the_work_dir(tmp_path: Path) -> None:
    broker_port, api_port = free_port(), free_port()
    work, elsewhere = tmp_path / "work", tmp_path / "cwd"
    elsewhere.mkdir()
    env = cli_env(work, FRAUDLENS_BROKER__PORT=str(broker_port), FRAUDLENS_API__PORT=str(api_port))
    log = tmp_path / "demo.log"
    # Run from another directory: nothing may land in its ./runs.
    process = start_cli(env, log, "demo", "--cards", "200", "--days", "45", "--test-days", "7", "--narratives", "1",
                        "--no-validate", cwd=elsewhere)
    try:
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{api_port}/healthz", timeout=2).status_code == 200,
                 "the demo's investigator desk", process, log, timeout=480)
    finally:
        stop(process)
    assert f"broker at 127.0.0.1:{broker_port}" in log.read_text()
    assert list(elsewhere.iterdir()) == []
    assert (work / "demo" / "fraudlens.db").is_file()
    assert any((work / "models").glob("fl-*/manifest.json"))  # the registry followed the work dir
    assert (work / "narratives.audit.jsonl").is_file()

"""Run the real ``fraudlens`` command as a person does: a subprocess with its own environment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

REPO = Path(__file__).parents[2]
#: Every FRAUDLENS_* variable of the developer's shell is dropped: each test says what it sets.
BASE_ENV = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDLENS_")}


def cli_env(tmp_path: Path, **variables: str) -> dict[str, str]:
    """An environment whose work dir is ``tmp_path`` plus ``variables``; narratives by template (no model)."""
    return {**BASE_ENV, "FRAUDLENS_WORK_DIR": str(tmp_path), "FRAUDLENS_NARRATIVE__BACKEND": "template",
            **variables}


def run_cli(env: Mapping[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fraudlens", *args], env=dict(env), cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, check=False)


def start_cli(env: Mapping[str, str], log: Path, *args: str, cwd: Path = REPO) -> subprocess.Popen[bytes]:
    """A long-running command (serve, stream); stdout and stderr go to ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "fraudlens", *args], env={**env, "PYTHONPATH": str(REPO)},
                                cwd=cwd, stdout=out, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes], timeout: float = 30) -> int:
    """SIGINT (what Ctrl-C sends), then kill if it does not end."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def wait_for(predicate: object, what: str, process: subprocess.Popen[bytes], log: Path,
             timeout: float = 90) -> None:
    """Poll ``predicate()`` until true; fail with the process log when it exits or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"process exited {process.returncode} before {what}:\n{log.read_text()[-3000:]}")
        try:
            if predicate():  # type: ignore[operator]
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")


def listening_address(pid: int, port: int) -> str | None:
    """The IPv4 address a process's socket listens on at ``port`` (from /proc), or None."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state, inode = fields[1], fields[3], fields[9]
        hex_ip, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port and inode in inodes:  # 0A: LISTEN
            return ".".join(str(b) for b in reversed(bytes.fromhex(hex_ip)))
    return None


def train_tiny_bundle(out: Path) -> Path:
    """A real model bundle, trained small (a few seconds), saved under ``out``."""
    from detection.training import train
    from features.pipeline import FeaturePipeline
    from features.simulator import simulate
    from fraudlens.settings import ModelSettings

    frame = simulate(300, 30, 3)
    bundle = train(frame, train_start=frame["timestamp"].min().date(), train_end=frame["timestamp"].max().date(),
                   pipeline=FeaturePipeline.from_settings(),
                   settings=ModelSettings.model_validate({"max_rounds": 60, "early_stopping_rounds": 10}),
                   data_hash="0" * 64, source="simulated")
    return Path(bundle.save(out))

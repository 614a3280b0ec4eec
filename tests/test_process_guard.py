"""The session guard fails a run that leaves a process behind; stop_process_tree ends a whole tree."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from process_guard import process_table, run_process, stop_process_tree

TESTS = Path(__file__).parent

# A test that starts two processes and stops neither: a child of pytest, and a grandchild that
# becomes an orphan (its parent exits), so only the session's mark in its environment ties it
# to the run. Each writes its pid where the outer test can find it.
LEAKY = """
import subprocess, sys, time
from pathlib import Path

def test_before():
    pass  # the leaks below start right at this test's end: they must be named under the next one

def test_leaks(tmp_path_factory):
    out = Path({out!r})
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], stdout=subprocess.DEVNULL)
    orphan_maker = subprocess.run(
        [sys.executable, "-c",
         "import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'],"
         " start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); print(p.pid)"],
        capture_output=True, text=True, check=True)
    out.write_text(f"{{child.pid}} {{orphan_maker.stdout.strip()}}")
"""


def _run_inner(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(body))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    return run_process([sys.executable, "-m", "pytest", "-q", "-p", "process_guard", "-p", "no:cacheprovider",
                        "--rootdir", str(tmp_path), str(tmp_path / "test_inner.py")],
                       cwd=tmp_path, env=env, timeout_s=120)


def test_a_session_that_leaves_processes_running_fails_naming_and_killing_them(tmp_path: Path) -> None:
    out = tmp_path / "pids"
    done = _run_inner(tmp_path, LEAKY.format(out=str(out)))
    pids = [int(p) for p in out.read_text().split()]
    table = process_table()
    assert [pid for pid in pids if pid in table and not table[pid].zombie] == [], "the leftovers were not killed"
    assert done.returncode == 1, done.stdout
    assert "2 passed" in done.stdout  # the tests themselves passed: the guard is what failed the run
    assert "processes left running" in done.stdout
    for pid in pids:
        assert f"pid {pid}: " in done.stdout and "started during test_inner.py::test_leaks" in done.stdout


def test_a_clean_session_passes(tmp_path: Path) -> None:
    done = _run_inner(tmp_path, """
        import subprocess, sys

        def test_clean():
            subprocess.run([sys.executable, "-c", "pass"], check=True)
    """)
    assert done.returncode == 0, done.stdout
    assert "processes left running" not in done.stdout


def test_stop_process_tree_ends_a_child_that_left_the_group_and_ignores_sigterm(tmp_path: Path) -> None:
    # The parent ignores SIGTERM (it must be killed) and its child runs in a session of its own
    # (as the broker does), outside the group the parent leads.
    script = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'], start_new_session=True)\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(300)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
    finally:
        stop_process_tree(parent, timeout_s=1.0)
    table = process_table()
    assert parent.returncode is not None
    assert child not in table or table[child].zombie

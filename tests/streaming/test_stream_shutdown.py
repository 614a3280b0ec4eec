"""The shutdown watchdog on its own: it fires only after a stop, only once its time is up."""

from __future__ import annotations

import io
import threading
from pathlib import Path

from streaming.shutdown import EXIT_UNFINISHED, ShutdownWatchdog


class RecordedExit:
    """Stands in for os._exit, which would end the test run itself."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.called = threading.Event()

    def __call__(self, status: int) -> None:
        self.statuses.append(status)
        self.called.set()


def test_a_stop_that_does_not_finish_in_time_dumps_every_stack_and_exits_75(tmp_path: Path) -> None:
    stop, exited = threading.Event(), RecordedExit()
    stuck = threading.Event()
    blocker = threading.Thread(target=stuck.wait, name="stuck-in-flush", daemon=True)
    blocker.start()
    try:
        with open(tmp_path / "stderr.txt", "w+") as stderr:  # a real file: faulthandler writes to its descriptor
            ShutdownWatchdog(stop, 0.2, exit_process=exited, stacks_to=stderr).start()
            stop.set()
            assert exited.called.wait(10), "the watchdog did not fire after the stop"
            stderr.seek(0)
            stacks = stderr.read()
    finally:
        stuck.set()  # the blocked thread ends, pass or fail
        blocker.join(10)
    assert exited.statuses == [EXIT_UNFINISHED] == [75]
    assert "most recent call first" in stacks  # faulthandler's format, one block per thread
    assert stacks.count("Thread 0x") >= 2  # the blocked thread is in the dump, not only the watchdog's


def test_stacks_still_come_out_on_a_stream_without_a_file_descriptor() -> None:
    stop, exited, out = threading.Event(), RecordedExit(), io.StringIO()
    ShutdownWatchdog(stop, 0.05, exit_process=exited, stacks_to=out).start()
    stop.set()
    assert exited.called.wait(10)
    assert "fraudlens-shutdown-watchdog" in out.getvalue()
    assert "_expire" in out.getvalue()


def test_a_stop_that_finishes_in_time_never_fires() -> None:
    stop, exited = threading.Event(), RecordedExit()
    watchdog = ShutdownWatchdog(stop, 0.3, exit_process=exited).start()
    stop.set()
    watchdog.disarm()
    watchdog._thread.join(10)
    assert not watchdog._thread.is_alive()
    assert exited.statuses == []


def test_without_a_stop_it_never_fires_and_its_thread_ends_when_disarmed() -> None:
    stop, exited = threading.Event(), RecordedExit()
    watchdog = ShutdownWatchdog(stop, 0.05, exit_process=exited).start()
    assert not exited.called.wait(0.5)
    watchdog.disarm()
    watchdog._thread.join(10)
    assert not watchdog._thread.is_alive()
    assert exited.statuses == []


class StuckStream(io.StringIO):
    """A stderr nobody reads: every write and flush blocks (a full pipe)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def write(self, text: str) -> int:
        self.release.wait()
        return super().write(text)

    def flush(self) -> None:
        self.release.wait()


def test_it_exits_even_when_the_stacks_cannot_be_written() -> None:
    stop, exited, stuck = threading.Event(), RecordedExit(), StuckStream()
    ShutdownWatchdog(stop, 0.05, exit_process=exited, stacks_to=stuck).start()
    stop.set()
    try:
        assert exited.called.wait(30), "the watchdog stayed blocked on its output"
        assert exited.statuses == [EXIT_UNFINISHED]
    finally:
        stuck.release.set()

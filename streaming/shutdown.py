"""A bounded shutdown: once a stop is asked for, the process is gone within a deadline.

A stop waits on the broker and the store. The service bounds the waits it knows about:
broker acks, the final commit and the group leave each get a share of
``shutdown_timeout_s``. A stop that gives up on them says so, and the process exits
with :data:`EXIT_UNFINISHED`. Some waits cannot be bounded from outside, though. A
database connection whose network has gone silent keeps the driver waiting with no
timeout (tested: PostgreSQL behind a proxy that forwards nothing). Before those
bounds, a frozen broker kept kafka-python's flush and close waiting 90 s and more. An
orchestrator would SIGKILL such a process at the end of its grace period, and nobody
would learn where it hung.

:class:`ShutdownWatchdog` gets there first. It dumps every thread's stack to stderr,
logs one error line and exits with :data:`EXIT_UNFINISHED`. Leaving this way is as safe
as ``kill -9``, which the reliability tests cover. Offsets are committed only after a
batch's outputs are durable, so any batch still in flight is redelivered to whichever
consumer takes the partition, and outputs are idempotent by transaction id.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import TextIO

log = logging.getLogger(__name__)

#: Exit status of a stop that did not finish: some batches were not committed and are
#: redelivered to whichever consumer takes their partitions. BSD's EX_TEMPFAIL ("try
#: again"). Used by the watchdog and by a stop that gave up on a failing broker or store.
EXIT_UNFINISHED = 75


class ShutdownWatchdog:
    """Ends the process ``timeout_s`` after ``stop_requested`` is set, unless disarmed first."""

    def __init__(
        self,
        stop_requested: threading.Event,
        timeout_s: float,
        *,
        exit_process: Callable[[int], object] = os._exit,
        stacks_to: TextIO | None = None,
    ) -> None:
        self.stop_requested = stop_requested
        self.timeout_s = timeout_s
        # os._exit, not sys.exit: the main thread is the one that is stuck, and a
        # SystemExit raised here would end only this thread.
        self._exit_process = exit_process
        self._stacks_to = stacks_to
        self._disarmed = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="fraudlens-shutdown-watchdog", daemon=True)

    def start(self) -> ShutdownWatchdog:
        self._thread.start()
        return self

    def disarm(self) -> None:
        """The shutdown finished (or the caller owns the rest of it): never fire."""
        self._disarmed.set()

    def _watch(self) -> None:
        # Wake now and then so that a disarmed watchdog's thread ends even if no stop ever comes.
        while not self._disarmed.is_set():
            if self.stop_requested.wait(timeout=0.5):
                break
        if self._disarmed.wait(self.timeout_s):
            return
        self._expire()

    def _expire(self) -> None:
        # Writing can block too (stderr a full pipe, a logging lock held by the stuck thread):
        # exit anyway a little later, with or without the stacks.
        backstop = threading.Timer(5.0, self._exit_process, args=(EXIT_UNFINISHED,))
        backstop.daemon = True
        backstop.start()
        log.error("shutdown timed out: exiting without finishing; uncommitted batches will be redelivered",
                  extra={"timeout_s": self.timeout_s, "exit_status": EXIT_UNFINISHED})
        out = self._stacks_to or sys.stderr
        for handler in logging.getLogger().handlers:
            handler.flush()
        try:
            out.flush()
            faulthandler.dump_traceback(file=out, all_threads=True)
            out.flush()
        except (OSError, ValueError, AttributeError):
            # No real file descriptor behind ``out`` (captured stream): write Python's view instead.
            out.write(_python_stacks())
            out.flush()
        self._exit_process(EXIT_UNFINISHED)
        backstop.cancel()  # reached only where exit_process returns (tests)


def _python_stacks() -> str:
    import traceback

    names = {thread.ident: thread.name for thread in threading.enumerate()}
    parts = []
    for ident, frame in sys._current_frames().items():
        parts.append(f"Thread {names.get(ident, ident)}:\n{''.join(traceback.format_stack(frame))}")
    return "\n".join(parts)

"""Making batches durable off the poll thread, in order.

The poll thread decodes and scores batch N+1 while this thread waits for the
broker to acknowledge batch N's outputs and writes them to the store. Before, the
poll loop did both in line: every batch paid a produce round trip, a store commit
(an fsync on SQLite) and an offset commit before the next poll, and records that
arrived meanwhile waited for all of it - the p99 latency at 2,000 tx/s was most of
a second, almost all of it queueing in front of the poll (measured: processing one
batch took 3-20 ms of the 150-450 ms).

Guarantees stay those of the in-line loop:

* a batch is handed back for offset commit only after its outputs are acknowledged
  (acks=all) *and* written to the store, and batches complete in submission order,
  so a committed offset never covers a record whose outputs are not durable;
* a failed send is published again (idempotent by transaction id downstream);
  a store outage blocks this thread, the bounded queue fills and the poll thread
  blocks in :meth:`DurableWriter.submit` - backpressure, never a drop;
* on stop or rebalance the poll thread calls :meth:`DurableWriter.drain` and commits
  what completed; whatever did not complete is not committed and is redelivered.

kafka-python's consumer is not thread-safe, so this thread never touches it: offsets
are committed by the poll thread from :meth:`DurableWriter.completed`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streaming.records import BatchOutputs, SourceRecord

log = logging.getLogger(__name__)


@dataclass(slots=True)
class InFlight:
    """One scored batch on its way to durability."""

    records: list[SourceRecord]
    batch: BatchOutputs
    futures: list[Any]
    received_at: float
    duplicates: int = 0
    new_alerts: int = 0
    durable_at: float = 0.0


class WriterStopped(RuntimeError):
    """The writer thread ended with an error; the poll thread re-raises :attr:`DurableWriter.error`."""


class DurableWriter:
    """A single background thread that makes :class:`InFlight` batches durable, in order.

    ``make_durable(item)`` does the work for one batch (wait for acks, republish on
    failure, write the store, with the service's retry policy) and returns the number
    of new alerts. At most ``max_in_flight`` batches wait in the queue.
    """

    _STOP = object()

    def __init__(self, make_durable: Callable[[InFlight], int], *, max_in_flight: int = 4) -> None:
        self._make_durable = make_durable
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_in_flight)
        self._done: queue.SimpleQueue[InFlight] = queue.SimpleQueue()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fraudlens-durable-writer", daemon=True)
        self._thread.start()

    def submit(self, item: InFlight) -> None:
        """Queue a batch; blocks while ``max_in_flight`` batches are pending (backpressure).

        Raises :class:`WriterStopped` once the writer has failed (a stop requested during
        a store outage ends the writer's retry with ``Interrupted``, so this never hangs).
        """
        while True:
            self._raise_if_failed()
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def completed(self) -> list[InFlight]:
        """Batches made durable since the last call, in submission order."""
        out: list[InFlight] = []
        while True:
            try:
                out.append(self._done.get_nowait())
            except queue.Empty:
                return out

    def drain(self) -> None:
        """Wait until every submitted batch is durable (or the writer failed)."""
        while self._queue.unfinished_tasks and self.error is None and self._thread.is_alive():
            time.sleep(0.001)

    def close(self) -> None:
        """Finish pending batches and stop the thread."""
        if self._thread.is_alive():
            self._queue.put(self._STOP)
            self._thread.join()

    @property
    def pending(self) -> int:
        return self._queue.unfinished_tasks

    def _raise_if_failed(self) -> None:
        if self.error is not None:
            raise WriterStopped("the output writer stopped") from self.error

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is self._STOP:
                    return
                if self.error is not None:
                    continue  # after a failure nothing more becomes durable: it is all redelivered
                item.new_alerts = self._make_durable(item)
                item.durable_at = time.time()
                self._done.put(item)
            except BaseException as exc:  # noqa: BLE001 - handed to the poll thread, which decides
                self.error = exc
            finally:
                self._queue.task_done()

"""The narrative worker: narratives off the scoring path, several alerts per forward pass.

The streaming service builds each card with :func:`explain.card.build_alert_card`
(template narrative, microseconds), publishes/stores it, then ``submit``\\ s it here.
A background thread takes up to ``batch_size`` cards (waiting at most
``max_wait_ms`` to fill a batch), narrates them in one backend call and hands each
updated card to ``on_ready`` (e.g. the alert store's update). ``submit`` never
blocks: when the queue is full it returns False and the card keeps its template
narrative.

>>> worker = NarrativeWorker(narrator, on_ready=store.update).start()   # doctest: +SKIP
>>> worker.submit(card)                                                  # doctest: +SKIP
True
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from explain.card import AlertCard
from explain.narrator import Narrator
from explain.settings import NarrativeSettings

log = logging.getLogger(__name__)

_STOP = object()


class NarrativeWorker:
    """One background thread batching cards through a :class:`~explain.narrator.Narrator`."""

    def __init__(
        self,
        narrator: Narrator,
        on_ready: Callable[[AlertCard], None],
        *,
        batch_size: int = 8,
        max_wait_ms: int = 200,
        queue_size: int = 1000,
    ) -> None:
        self.narrator = narrator
        self.on_ready = on_ready
        self.batch_size = batch_size
        self.max_wait_s = max_wait_ms / 1000
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self.submitted = 0
        self.dropped = 0
        self.completed = 0
        self.failed_batches = 0

    @classmethod
    def from_settings(cls, settings: NarrativeSettings, on_ready: Callable[[AlertCard], None], *,
                      narrator: Narrator | None = None) -> NarrativeWorker:
        """A worker with the configured backend, batch size, wait and queue size (not started)."""
        return cls(narrator or Narrator.from_settings(settings), on_ready, batch_size=settings.batch_size,
                   max_wait_ms=settings.max_wait_ms, queue_size=settings.queue_size)

    def start(self) -> NarrativeWorker:
        """Set up the backend (model load) in the worker thread and start consuming."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="narrative-worker", daemon=True)
            self._thread.start()
        return self

    def submit(self, card: AlertCard) -> bool:
        """Queue a card; False (card dropped, template narrative kept) when the queue is full."""
        try:
            self._queue.put_nowait(card)
        except queue.Full:
            self.dropped += 1
            return False
        self.submitted += 1
        return True

    def pending(self) -> int:
        return self._queue.qsize()

    def close(self, timeout: float | None = None) -> None:
        """Narrate what is queued, then stop the thread."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout)
        self._thread = None

    def _take_batch(self) -> tuple[list[AlertCard], bool]:
        first = self._queue.get()
        if first is _STOP:
            return [], True
        batch = [first]
        deadline = time.monotonic() + self.max_wait_s
        while len(batch) < self.batch_size:
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True  # type: ignore[return-value]
            batch.append(item)
        return batch, False  # type: ignore[return-value]

    def _run(self) -> None:
        self.narrator.setup()
        stop = False
        while not stop:
            batch, stop = self._take_batch()
            if not batch:
                continue
            try:
                cards = self.narrator.narrate(batch)
            except Exception:  # a backend bug must not kill the worker: cards keep their template narrative
                log.exception("narrative batch of %d failed; cards keep their template narrative", len(batch))
                self.failed_batches += 1
                continue
            for card in cards:
                try:
                    self.on_ready(card)
                except Exception:
                    log.exception("on_ready failed for %s", card.alert_id)
                self.completed += 1

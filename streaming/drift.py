"""Live drift: PSI of the score and the top features over the recent traffic, against training.

The bundle carries its training population binned (``bundle.reference``, a
:class:`~detection.drift.BinnedReference`). :class:`DriftMonitor` bins every scored
batch with the same cut points and keeps a rolling window as a ring of per-batch bin
counts plus their running sum: adding a batch and evicting the oldest ones costs
O(bins), whatever the window length, so the monitor can sit on the hot path. PSI is
computed from the summed counts only when a snapshot is due (every N seconds or
batches); the snapshot sets the ``fraudlens_drift_psi`` gauges and is persisted by
the store (``drift_snapshots``), where ``GET /v1/models/{version}`` reads it.

The window holds whole batches: after a batch is added, the oldest batches leave
while more than ``window`` rows remain (a single batch larger than the window is
kept whole), so the window is "the last ``window`` transactions" to within a batch.

>>> import numpy as np
>>> from detection.drift import Binned, BinnedReference
>>> ref = BinnedReference(score=Binned.fit(np.linspace(0, 1, 100)), features={}, importance=[], n_rows=100, window={})
>>> monitor = DriftMonitor(ref, [], "v1", window=1000, min_rows=10, every_batches=1)
>>> monitor.observe(np.linspace(0, 1, 50), None).flags
{'score': 'stable'}
"""

from __future__ import annotations

import math
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from detection.drift import Binned, BinnedReference, psi_flag
from streaming.records import DriftSnapshot

#: The name the score goes by among the monitored variables (features keep their own names).
SCORE = "score"


class DriftMonitor:
    """Rolling bin counts of the live score and top features; PSI snapshots against the training reference."""

    def __init__(
        self,
        reference: BinnedReference,
        feature_names: Sequence[str],
        model_version: str,
        *,
        window: int = 50_000,
        top: int = 10,
        every_s: float = 60.0,
        every_batches: int = 0,
        min_rows: int = 1000,
        instance: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if window < 1:
            raise ValueError(f"drift window must hold at least one row, got {window}")
        positions = {name: j for j, name in enumerate(feature_names)}
        # Only features the live matrix has and the reference binned: a bundle always has both.
        watched = [n for n in reference.top_features(top) if n in positions and n in reference.features][:top]
        self.model_version = model_version
        self.window = window
        self.every_s = every_s
        self.every_batches = every_batches
        self.min_rows = min_rows
        self.instance = instance
        self._clock = clock
        self.variables: list[str] = [SCORE, *watched]
        self._binned: list[Binned] = [reference.score, *(reference.features[n] for n in watched)]
        #: Column of each variable in the feature matrix (None: the score).
        self._columns: list[int | None] = [None, *(positions[n] for n in watched)]
        # Each variable owns len(cuts) + 2 consecutive slots of one flat count vector
        # (value bins, then the missing bin), so a batch is counted with one bincount.
        sizes = [b.cuts.size + 2 for b in self._binned]
        self._offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.intp)
        self._ring: deque[tuple[int, np.ndarray]] = deque()
        self._total = np.zeros(int(self._offsets[-1]), dtype=np.int64)
        self.rows = 0
        self._last_at = clock()
        self._batches = 0
        self._gauge: Any = None

    @classmethod
    def for_bundle(cls, bundle: Any, settings: Any, *, clock: Callable[[], float] = time.time) -> DriftMonitor | None:
        """The monitor the streaming settings ask for (``kafka.drift_*``); None when ``drift_window`` is 0."""
        if settings.drift_window <= 0:
            return None
        return cls(bundle.reference, list(bundle.feature_names), str(bundle.version), window=settings.drift_window,
                   top=settings.drift_top_features, every_s=settings.drift_every_s,
                   every_batches=settings.drift_every_batches, min_rows=settings.drift_min_rows,
                   instance=f"{socket.gethostname()}:{os.getpid()}", clock=clock)

    def export_to(self, gauge: Any) -> None:
        """Set this labelled gauge (``model_version``, ``variable``) to the PSI at each snapshot."""
        self._gauge = gauge

    # -- hot path ----------------------------------------------------------------------
    def count(self, scores: np.ndarray, X: np.ndarray | None) -> np.ndarray:
        """One batch's bin counts, all variables in one flat vector (see :meth:`counts`)."""
        n = len(scores)
        idx = np.empty((len(self.variables), n), dtype=np.intp)
        for i, (column, binned) in enumerate(zip(self._columns, self._binned, strict=True)):
            if column is None:
                values = np.asarray(scores)
            elif X is None:
                raise ValueError(f"drift monitor watches feature {self.variables[i]!r} but the scorer gave no features")
            else:
                values = X[:, column]
            bins = np.searchsorted(binned.cuts, values, side="left")
            # Same rule as detection.drift.bin_counts: NaN and ±inf count as missing.
            bins[~np.isfinite(values)] = binned.cuts.size + 1
            idx[i] = bins + self._offsets[i]
        return np.bincount(idx.ravel(), minlength=self._total.size)

    def add(self, n_rows: int, counts: np.ndarray) -> None:
        """Push one batch's counts into the window and evict the oldest batches beyond it."""
        self._ring.append((n_rows, counts))
        self._total += counts
        self.rows += n_rows
        while self.rows > self.window and len(self._ring) > 1:
            old_rows, old = self._ring.popleft()
            self._total -= old
            self.rows -= old_rows

    def observe(self, scores: np.ndarray, X: np.ndarray | None) -> DriftSnapshot | None:
        """Count a scored batch; return a snapshot when one is due (and update the gauges), else None."""
        if len(scores):
            self.add(len(scores), self.count(scores, X))
        self._batches += 1
        if self.rows < self.min_rows:
            return None
        now = self._clock()
        if now - self._last_at >= self.every_s or (self.every_batches and self._batches >= self.every_batches):
            return self.snapshot(now)
        return None

    # -- snapshots ---------------------------------------------------------------------
    def counts(self) -> dict[str, np.ndarray]:
        """The window's counts per variable (value bins, then the missing bin), as ``Binned.counts`` lays them out."""
        return {name: self._total[self._offsets[i]:self._offsets[i + 1]].copy()
                for i, name in enumerate(self.variables)}

    def psi(self) -> dict[str, float]:
        """PSI of each variable over the window against its training bins (nan on an empty window)."""
        return {name: binned.psi(self._total[self._offsets[i]:self._offsets[i + 1]], binned=True)
                for i, (name, binned) in enumerate(zip(self.variables, self._binned, strict=True))}

    def snapshot(self, now: float | None = None) -> DriftSnapshot:
        """PSI and flags now; resets the snapshot clock and sets the gauges."""
        now = self._clock() if now is None else now
        self._last_at, self._batches = now, 0
        values = self.psi()
        if self._gauge is not None:
            for name, value in values.items():
                self._gauge.labels(self.model_version, name).set(value)
        return DriftSnapshot(
            model_version=self.model_version,
            taken_at_ms=int(now * 1000),
            window_rows=self.rows,
            psi={name: (v if math.isfinite(v) else None) for name, v in values.items()},
            flags={name: psi_flag(v) for name, v in values.items()},
            instance=self.instance,
        )

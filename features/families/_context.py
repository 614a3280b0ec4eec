"""Arrays that the batch executions share for one frame, computed once and on demand.

The pipeline builds one :class:`BatchContext` per ``transform_many`` call and hands
it to every family, so the stable time sort and the per-entity grouping (the costly
parts at a million rows) happen once, and the input frame is never copied or
modified: columns are gathered into processing order only when a family asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from features.schema import timestamps_ms

NAT_MS = np.iinfo(np.int64).min


@dataclass(frozen=True)
class Groups:
    """An entity column grouped: ``perm`` lists processing positions entity by entity.

    Within one entity the positions keep processing order (the sort is stable), so
    a kernel walking ``perm`` sees each entity's events as the online engine does.
    """

    codes: np.ndarray  # int64 per processing position, -1 where the value is missing
    perm: np.ndarray  # int64 processing positions, grouped by code
    starts: np.ndarray  # bool over perm: True where a new entity begins
    n_groups: int


class BatchContext:
    """A canonical frame seen in processing order: stable sort by ``timestamp``."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.n = len(frame)
        raw = timestamps_ms(frame["timestamp"])
        #: frame positions in processing order
        self.order = np.argsort(raw, kind="stable")
        #: epoch ms in processing order
        self.ts = raw[self.order]
        self._groups: dict[str, Groups] = {}
        self._codes: dict[str, tuple[np.ndarray, int]] = {}

    def has(self, name: str) -> bool:
        return name in self.frame.columns

    def objects(self, name: str) -> np.ndarray | None:
        """A column as an object array in processing order, or None when the frame lacks it."""
        if not self.has(name):
            return None
        return self.frame[name].to_numpy(dtype=object)[self.order]

    def floats(self, name: str) -> np.ndarray:
        """A numeric column as float64 in processing order; all-NaN when the frame lacks it."""
        if not self.has(name):
            return np.full(self.n, np.nan)
        return pd.to_numeric(self.frame[name], errors="coerce").to_numpy(
            dtype="float64", na_value=np.nan
        )[self.order]

    def times_ms(self, name: str) -> np.ndarray | None:
        """A time column as epoch ms in processing order (``NAT_MS`` where missing), or None."""
        if not self.has(name):
            return None
        return timestamps_ms(self.frame[name])[self.order]

    @cached_property
    def amount(self) -> np.ndarray:
        return self.floats("amount")

    def codes(self, name: str) -> tuple[np.ndarray, int]:
        """Integer codes of a column in processing order (-1 = missing) and the number of distinct values."""
        if name not in self._codes:
            if not self.has(name):
                self._codes[name] = np.full(self.n, -1, dtype=np.int64), 0
            else:
                codes, uniques = pd.factorize(self.frame[name].to_numpy(dtype=object)[self.order])
                self._codes[name] = codes.astype(np.int64, copy=False), len(uniques)
        return self._codes[name]

    def groups(self, name: str) -> Groups:
        """``name`` (an entity column such as ``card_id``) grouped; cached per column."""
        if name not in self._groups:
            codes, n_groups = self.codes(name)
            perm = np.argsort(codes, kind="stable")
            sorted_codes = codes[perm]
            starts = np.ones(self.n, dtype=bool)
            starts[1:] = sorted_codes[1:] != sorted_codes[:-1]
            self._groups[name] = Groups(codes, perm, starts, n_groups)
        return self._groups[name]

    def unsort(self, values: np.ndarray) -> np.ndarray:
        """Rows in processing order -> rows in frame order."""
        out = np.empty_like(values)
        out[self.order] = values
        return out

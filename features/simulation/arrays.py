"""Transactions as a struct of numpy arrays, before ids become strings."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

NO_DEVICE = -1


@dataclass
class TxArrays:
    """One element per transaction. ``t`` is seconds after the simulation start, UTC."""

    card: np.ndarray
    t: np.ndarray
    merchant: np.ndarray
    category: np.ndarray
    amount: np.ndarray
    country: np.ndarray
    currency: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    device: np.ndarray  # NO_DEVICE for card-present and ATM
    scenario: np.ndarray  # 0 = legit, else 1 + index in SCENARIOS

    def __len__(self) -> int:
        return len(self.t)

    def take(self, index: np.ndarray) -> TxArrays:
        return TxArrays(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @classmethod
    def concat(cls, parts: list[TxArrays]) -> TxArrays:
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})

    @classmethod
    def empty(cls) -> TxArrays:
        ints = {"card", "t", "merchant", "category", "country", "currency", "device"}
        return cls(
            **{
                f.name: np.zeros(0, dtype=np.int64 if f.name in ints else np.int8 if f.name == "scenario" else np.float64)
                for f in fields(cls)
            }
        )

"""Failed-authentication limits: a token bucket per client address and per key id, in this process.

Each failed authentication takes a token from the caller's address bucket and, when
the presented key names a key id (``flk_<key id>_<secret>``), from that key id's
bucket; buckets refill at a steady rate.

- An address whose bucket is empty is answered 429 with ``Retry-After`` before its key
  is looked up: guessing costs the guesser time and the database nothing.
- A key id whose bucket is empty turns its failures into 429s (guesses spread over
  many addresses), but never refuses the right key: key ids appear in logs and the
  audit trail, and anyone who knows one must not be able to lock its holder (a bank's
  scoring platform) out by sending wrong secrets under it.

The state lives in one process: with N API processes behind a balancer a guesser gets
up to N times the allowance (a shared limit needs the proxy or a shared store).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from api.keys import KEY_PREFIX


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """Buckets of ``burst`` tokens refilled at ``per_second``, one per key, bounded in number.

    >>> buckets = TokenBuckets(burst=2, per_second=1.0)
    >>> buckets.take("ip:10.0.0.1"), buckets.take("ip:10.0.0.1"), buckets.retry_after("ip:10.0.0.1") > 0
    (True, True, True)
    """

    def __init__(self, burst: int, per_second: float, *, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.burst = burst
        self.per_second = per_second
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def _refilled(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                # Bounded: drop the full buckets (they hold no state worth keeping), else start over.
                self._buckets = {k: b for k, b in self._buckets.items()
                                 if b.tokens + (now - b.updated) * self.per_second < self.burst}
                if len(self._buckets) >= self.max_keys:
                    self._buckets.clear()
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.per_second)
        bucket.updated = now
        return bucket

    def retry_after(self, key: str) -> int:
        """Seconds until ``key`` has a token again; 0 when it has one now."""
        with self._lock:
            if key not in self._buckets:
                return 0
            bucket = self._refilled(key, self._clock())
            if bucket.tokens >= 1:
                return 0
            return max(1, math.ceil((1 - bucket.tokens) / self.per_second))

    def take(self, key: str) -> bool:
        """Take a token; False when there was none."""
        with self._lock:
            bucket = self._refilled(key, self._clock())
            if bucket.tokens < 1:
                return False
            bucket.tokens -= 1
            return True


def key_id_of(plaintext: str | None) -> str | None:
    """The key id a presented key claims (``flk_<id>_<secret>``), whether or not the key is valid."""
    if not plaintext or not plaintext.startswith(KEY_PREFIX):
        return None
    key_id = plaintext[len(KEY_PREFIX):].split("_", 1)[0]
    return key_id[:32] or None


class AuthLimiter:
    """Per-address and per-key-id limits on failed authentication."""

    def __init__(self, burst: int, per_minute: float) -> None:
        self.buckets = TokenBuckets(burst, per_minute / 60.0)

    @staticmethod
    def _keys(address: str | None, plaintext: str | None) -> list[str]:
        keys = [f"ip:{address or 'unknown'}"]
        key_id = key_id_of(plaintext)
        if key_id:
            keys.append(f"key:{key_id}")
        return keys

    def address_wait(self, address: str | None) -> int:
        """Seconds this address must wait before its next key is even looked up; 0 when it may try now."""
        return self.buckets.retry_after(f"ip:{address or 'unknown'}")

    def failed(self, address: str | None, plaintext: str | None) -> int:
        """Count a failed authentication; the seconds to wait when a bucket it draws on was already empty
        (answer 429), else 0 (answer 401)."""
        waits = [0 if self.buckets.take(k) else max(1, self.buckets.retry_after(k))
                 for k in self._keys(address, plaintext)]
        return max(waits)

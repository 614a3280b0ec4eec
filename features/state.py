"""Per-entity online feature state behind a small protocol: in memory (default) or Redis.

Keys name an entity (``"card:<id>"``, ``"merchant:<id>"``); a state is a JSON-ready
value (dicts with string keys, lists, finite numbers, strings, None) so that every
backend can hold it without pickle. JSON goes through ``orjson`` when installed
(else the stdlib, same documents); NaN is not JSON-ready (orjson writes it as null). Memory stays bounded twice over: families drop window
data older than their horizon on every update, and a whole entity expires when it
has been idle longer than the TTL the engine passes to :meth:`StateStore.save_many`
(the longest feature horizon).

Snapshots are portable between backends: ``FLS1`` + zlib-compressed JSON with each
key, its remaining TTL in ms (null = none) and its state.

>>> store = MemoryStateStore()
>>> store.save_many({"card:c1": {"p": 1}}, ttl_ms=60_000)
>>> store.load_many(["card:c1", "card:c2"])
{'card:c1': {'p': 1}}
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

from fraudlens.settings import StateSettings

_SNAPSHOT_MAGIC = b"FLS1"
_SCAN_BATCH = 1000


class StateStoreError(ValueError):
    """A snapshot or stored state cannot be read back."""


@runtime_checkable
class StateStore(Protocol):
    """Where per-entity state lives between events."""

    def load_many(self, keys: list[str]) -> dict[str, Any]:
        """States of the keys that exist (missing or expired keys are simply absent)."""

    def save_many(self, states: dict[str, Any], ttl_ms: int | None) -> None:
        """Write states; each expires ``ttl_ms`` after this write (None: never)."""

    def snapshot(self, skip_prefixes: tuple[str, ...] = ()) -> bytes:
        """Every live state with its remaining TTL, as portable bytes (keys starting with one of
        ``skip_prefixes`` left out: state that is rebuilt from elsewhere, such as labels)."""

    def snapshot_document(self, skip_prefixes: tuple[str, ...] = ()) -> bytes:
        """:meth:`snapshot` before compression: the copy, taken while the state holds still;
        :func:`seal_snapshot` turns it into the snapshot, on any thread."""

    def restore(self, data: bytes) -> None:
        """Load a snapshot (keys in it replace existing ones)."""

    def clear(self) -> None:
        """Delete every state (a restore that must replace the whole state clears first)."""

    def evict(self, now_ms: int | None = None) -> int:
        """Drop expired entities now; returns how many (Redis expires keys itself: 0)."""

    def close(self) -> None:
        """Release connections."""


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def _plain(value: Any) -> Any:
    # Numpy scalars sneak in from frames (np.int64 timestamps, np.float64 amounts).
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"state value of type {type(value).__name__} is not JSON-ready: {value!r}")


try:  # orjson: the same JSON 5-10x faster, which is most of a Redis round trip's CPU
    import orjson

    def _dumps(value: Any) -> bytes:
        return orjson.dumps(value, default=_plain)

    _loads: Callable[[bytes | str], Any] = orjson.loads
except ImportError:  # pragma: no cover - the stdlib gives identical documents

    def _dumps(value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":"), default=_plain).encode()

    _loads = json.loads


def encode_snapshot(entries: Iterable[tuple[str, int | None, Any]]) -> bytes:
    return seal_snapshot(snapshot_document(entries))


def snapshot_document(entries: Iterable[tuple[str, int | None, Any]]) -> bytes:
    """The uncompressed JSON of a snapshot: the consistent copy of the state (see :func:`seal_snapshot`)."""
    return _dumps({"entries": [list(entry) for entry in entries]})


def seal_snapshot(document: bytes) -> bytes:
    """A :func:`snapshot_document` as snapshot bytes. zlib releases the GIL, so a caller may seal
    on another thread while the state moves on (the document is already a copy)."""
    return _SNAPSHOT_MAGIC + zlib.compress(document, 3)


def decode_snapshot(data: bytes) -> list[tuple[str, int | None, Any]]:
    if not data.startswith(_SNAPSHOT_MAGIC):
        raise StateStoreError(
            "not a fraudlens state snapshot (missing FLS1 header); was it written by snapshot()?"
        )
    try:
        entries = _loads(zlib.decompress(data[len(_SNAPSHOT_MAGIC) :]))["entries"]
    except (zlib.error, ValueError, KeyError) as exc:
        raise StateStoreError(f"state snapshot is corrupt: {exc}") from None
    return [(str(key), None if ttl is None else int(ttl), state) for key, ttl, state in entries]


class SnapshotCapture:
    """A consistent snapshot of a :class:`MemoryStateStore` taken while it keeps serving (copy on write).

    The key set is fixed when it starts; afterwards each state is copied (as JSON) either by
    :meth:`run`, on any thread, or by the store itself just before it hands the state out for
    change or drops it, whichever comes first. So the snapshot is the state at the start,
    however long the copying takes, and the writer never waits for more than one state's copy.
    """

    def __init__(self, states: dict[str, Any], pending: dict[str, int | None], now: int) -> None:
        self._states = states
        #: Key -> deadline at the start, for the states not copied yet.
        self._pending = pending
        self._now = now
        self._parts: list[bytes] = []
        self._lock = threading.Lock()

    def take(self, keys: Iterable[str]) -> None:
        """Copy these keys' states now if they are part of the snapshot and not copied yet."""
        pending = self._pending
        if not pending:
            return
        with self._lock:
            for key in keys:
                if key in pending:
                    deadline = pending.pop(key)
                    ttl = None if deadline is None else deadline - self._now
                    self._parts.append(_dumps([key, ttl, self._states[key]]))

    def run(self) -> bytes:
        """Copy every state not copied yet; returns the :func:`snapshot_document`."""
        while self._pending:
            # Small slices: the store's own copies interleave with these.
            self.take(list(itertools.islice(self._pending, 256)))
        return b'{"entries":[' + b",".join(self._parts) + b"]}"


class MemoryStateStore:
    """States as live Python objects in a dict; the default backend.

    ``load_many`` hands out the stored objects themselves (no copy), so the engine
    mutates them in place; ``save_many`` then only refreshes the expiry. TTLs run
    on ``clock`` (wall-clock ms by default, like Redis); expired keys read as
    missing at once and are swept from memory at most every ``sweep_every_ms``.
    """

    def __init__(
        self, *, clock: Callable[[], int] = wall_clock_ms, sweep_every_ms: int = 60_000
    ) -> None:
        self._clock = clock
        self._sweep_every_ms = sweep_every_ms
        self._states: dict[str, Any] = {}
        self._deadlines: dict[str, int | None] = {}
        self._next_sweep: int | None = None
        self._capture: SnapshotCapture | None = None

    def __len__(self) -> int:
        return len(self._states)

    def load_many(self, keys: list[str]) -> dict[str, Any]:
        now = self._clock()
        states, deadlines = self._states, self._deadlines
        if self._capture is not None:
            self._capture.take(keys)  # the caller changes these objects in place
        out: dict[str, Any] = {}
        for key in keys:
            if key in states:
                deadline = deadlines[key]
                if deadline is None or deadline > now:
                    out[key] = states[key]
        return out

    def save_many(self, states: dict[str, Any], ttl_ms: int | None) -> None:
        now = self._clock()
        deadline = None if ttl_ms is None else now + ttl_ms
        if self._capture is not None:
            self._capture.take(states)
        self._states.update(states)
        self._deadlines.update(dict.fromkeys(states, deadline))
        if self._next_sweep is None or now >= self._next_sweep:
            self.evict(now)

    def evict(self, now_ms: int | None = None) -> int:
        now = self._clock() if now_ms is None else now_ms
        expired = [
            key
            for key, deadline in self._deadlines.items()
            if deadline is not None and deadline <= now
        ]
        if self._capture is not None:
            self._capture.take(expired)
        for key in expired:
            del self._states[key]
            del self._deadlines[key]
        self._next_sweep = now + self._sweep_every_ms
        return len(expired)

    def snapshot(self, skip_prefixes: tuple[str, ...] = ()) -> bytes:
        return seal_snapshot(self.snapshot_document(skip_prefixes))

    def snapshot_document(self, skip_prefixes: tuple[str, ...] = ()) -> bytes:
        """:meth:`snapshot` before compression (:func:`seal_snapshot` finishes it)."""
        now = self._clock()
        return snapshot_document(
            (key, None if deadline is None else deadline - now, self._states[key])
            for key, deadline in self._deadlines.items()
            if (deadline is None or deadline > now) and not (skip_prefixes and key.startswith(skip_prefixes))
        )

    def begin_snapshot(self, skip_prefixes: tuple[str, ...] = ()) -> SnapshotCapture:
        """Start a copy-on-write snapshot: it holds the state as it is now; finish it with
        :meth:`SnapshotCapture.run` on another thread while this store keeps serving. Starting
        costs one pass over the keys, not a copy of the states."""
        now = self._clock()
        pending = {
            key: deadline
            for key, deadline in self._deadlines.items()
            if (deadline is None or deadline > now) and not (skip_prefixes and key.startswith(skip_prefixes))
        }
        self._settle_capture()
        self._capture = SnapshotCapture(self._states, pending, now)
        return self._capture

    def _settle_capture(self) -> None:
        # Before the states go wholesale (or another capture starts), a running one copies the rest.
        if self._capture is not None:
            self._capture.take(list(self._capture._pending))
            self._capture = None

    def restore(self, data: bytes) -> None:
        self._settle_capture()
        now = self._clock()
        for key, ttl, state in decode_snapshot(data):
            self._states[key] = state
            self._deadlines[key] = None if ttl is None else now + ttl

    def clear(self) -> None:
        self._settle_capture()
        self._states.clear()
        self._deadlines.clear()

    def close(self) -> None:
        """Nothing to release; the states stay readable."""


class RoutedStateStore:
    """Keys with a routed prefix live in their own store; every other key in ``default``.

    The stream keeps card state in Redis (shared across a consumer group: cards move
    between consumers on a rebalance) but, when it consumes the labels topic, merchant
    state in each process's memory: merchant label state is a function of the labels
    alone, every process reads every label, and applying one label twice to a shared
    state would count it twice.
    """

    def __init__(self, default: StateStore, routes: dict[str, StateStore]) -> None:
        self.default = default
        self.routes = dict(routes)
        self._prefixes = list(self.routes)
        #: Index 0 is the default store, then one per routed prefix.
        self._stores: list[StateStore] = [default, *self.routes.values()]

    def _split(self, keys: Iterable[str]) -> list[list[str]]:
        groups: list[list[str]] = [[] for _ in self._stores]
        for key in keys:
            index = next((i + 1 for i, prefix in enumerate(self._prefixes) if key.startswith(prefix)), 0)
            groups[index].append(key)
        return groups

    def load_many(self, keys: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for store, group in zip(self._stores, self._split(keys), strict=True):
            if group:
                out.update(store.load_many(group))
        return out

    def save_many(self, states: dict[str, Any], ttl_ms: int | None) -> None:
        for store, group in zip(self._stores, self._split(states), strict=True):
            if group:
                store.save_many({key: states[key] for key in group}, ttl_ms)

    # Snapshots cover the default store only: routed state is rebuilt from its source (the labels topic).
    def snapshot(self, skip_prefixes: tuple[str, ...] = ()) -> bytes:
        return self.default.snapshot(skip_prefixes)

    def snapshot_document(self, skip_prefixes: tuple[str, ...] = ()) -> bytes:
        return self.default.snapshot_document(skip_prefixes)

    def restore(self, data: bytes) -> None:
        self.default.restore(data)

    def clear(self) -> None:
        for store in self._stores:
            store.clear()

    def evict(self, now_ms: int | None = None) -> int:
        return sum(store.evict(now_ms) for store in self._stores)

    def setup(self) -> Any:
        setup = getattr(self.default, "setup", None)
        if setup is not None:
            setup()
        return self

    def close(self) -> None:
        for store in self._stores:
            store.close()


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


class RedisStateStore:
    """States as compact JSON strings under ``key_prefix + key``, with a PX TTL per key.

    One ``MGET`` per :meth:`load_many` and one pipelined batch of ``SET .. PX`` per
    :meth:`save_many`, so a micro-batch costs two round trips whatever its size.
    The constructor does no I/O; the connection opens on first use or in
    :meth:`setup` (which also pings, to fail fast with the URL in the message).
    """

    def __init__(
        self, url: str = "redis://127.0.0.1:6379/0", key_prefix: str = "fraudlens:state:"
    ) -> None:
        self.url = url
        self.key_prefix = key_prefix
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            import redis

            self._client = redis.Redis.from_url(self.url)
        return self._client

    def setup(self) -> RedisStateStore:
        import redis

        try:
            self.client.ping()
        except redis.RedisError as exc:
            raise ConnectionError(
                f"cannot reach Redis at {self.url} for the feature state store: {exc}"
            ) from exc
        return self

    def load_many(self, keys: list[str]) -> dict[str, Any]:
        if not keys:
            return {}
        prefix = self.key_prefix
        raw = self.client.mget([prefix + key for key in keys])
        return {
            key: _loads(value) for key, value in zip(keys, raw, strict=True) if value is not None
        }

    def save_many(self, states: dict[str, Any], ttl_ms: int | None) -> None:
        if not states:
            return
        pipe = self.client.pipeline(transaction=False)
        prefix = self.key_prefix
        for key, state in states.items():
            pipe.set(prefix + key, _dumps(state), px=ttl_ms)
        pipe.execute()

    def _keys(self) -> Iterable[list[bytes]]:
        batch: list[bytes] = []
        for name in self.client.scan_iter(
            match=_glob_escape(self.key_prefix) + "*", count=_SCAN_BATCH
        ):
            batch.append(name)
            if len(batch) >= _SCAN_BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    def snapshot(self, skip_prefixes: tuple[str, ...] = ()) -> bytes:
        return seal_snapshot(self.snapshot_document(skip_prefixes))

    def snapshot_document(self, skip_prefixes: tuple[str, ...] = ()) -> bytes:
        """:meth:`snapshot` before compression (:func:`seal_snapshot` finishes it)."""
        entries: list[tuple[str, int | None, Any]] = []
        cut = len(self.key_prefix.encode())
        skip = tuple(self.key_prefix.encode() + prefix.encode() for prefix in skip_prefixes)
        for names in self._keys():
            if skip:
                names = [name for name in names if not name.startswith(skip)]
                if not names:
                    continue
            pipe = self.client.pipeline(transaction=False)
            pipe.mget(names)
            for name in names:
                pipe.pttl(name)
            values, *ttls = pipe.execute()
            for name, value, ttl in zip(names, values, ttls, strict=True):
                if value is not None and ttl != -2:  # -2: expired between SCAN and MGET
                    entries.append((name[cut:].decode(), None if ttl < 0 else ttl, _loads(value)))
        return snapshot_document(entries)

    def restore(self, data: bytes) -> None:
        pipe = self.client.pipeline(transaction=False)
        for key, ttl, state in decode_snapshot(data):
            pipe.set(self.key_prefix + key, _dumps(state), px=ttl if ttl is None or ttl > 0 else 1)
        pipe.execute()

    def evict(self, now_ms: int | None = None) -> int:
        return 0  # Redis expires keys by their PX TTL itself

    def clear(self) -> None:
        """Delete every key under this store's prefix."""
        for names in self._keys():
            self.client.delete(*names)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def make_state_store(settings: StateSettings) -> StateStore:
    """The store the settings name; no I/O happens here."""
    if settings.backend == "redis":
        return RedisStateStore(settings.redis_url, settings.key_prefix)
    return MemoryStateStore()

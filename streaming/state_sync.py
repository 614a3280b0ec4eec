"""Feature state tied to the consumer's offsets, so a restart scores exactly as an uninterrupted run.

Kafka Streams keeps a changelog beside the offsets, Flink checkpoints state aligned with
them; here the service keeps, per (topic, partition), the offset below which every record
is in the feature state (:attr:`StateSync.applied`), and:

* between batches, on the poll thread, at most every ``checkpoint_every_s`` /
  ``checkpoint_every_records``, writes a checkpoint: a state snapshot and those offsets
  (:mod:`streaming.checkpoint`);
* when partitions are assigned, before their first record is scored, brings the state up
  to the group's committed offsets. The first time: it clears the state, restores the
  newest checkpoint the committed offsets cover, learns every label again (label state
  is left out of checkpoints: it is rebuilt from the labels topic, where learning a label
  early is harmless), then replays the gap from the checkpoint's offsets to the committed
  ones through the features only (a plain assigned consumer, no group). A later
  assignment (a rebalance) replays each new partition from where this process's state
  left it (its beginning if never seen) to its committed offset;
* records after the committed offsets that the store already holds (scored before the
  crash, not yet committed) still go through the features, without outputs: their
  state update was lost with the process (memory) or rolled back by the restore.

Which records update the state is decided the same way everywhere: a valid transaction
does unless the store holds its id from another record (a duplicate; the store keeps the
source partition and offset of the record that was scored). So the state does not depend
on batch boundaries, on where a crash happened or on which process scored a partition.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import select

from features.schema import DEFAULT_LIMITS, Transaction, ValidationLimits
from features.state import MemoryStateStore, seal_snapshot
from streaming.checkpoint import CheckpointDir, Offsets
from streaming.pipeline import Decoded, decode_batch
from streaming.records import SourceRecord
from streaming.scoring import StatefulScorer
from streaming.settings import KafkaSettings

log = logging.getLogger(__name__)

Key = tuple[str, int]


def state_sync_enabled(settings: KafkaSettings, scorer: Any) -> bool:
    """Whether ``scorer``'s state is checkpointed (see ``KafkaSettings.state_checkpoints``)."""
    if settings.state_checkpoints == "off" or not isinstance(scorer, StatefulScorer):
        return False
    if settings.state_checkpoints == "on":
        return True
    # auto: only state this process owns alone; restoring a snapshot into Redis shared by a
    # group would overwrite the cards other processes are scoring.
    return isinstance(scorer.feature_state, MemoryStateStore)


def make_gap_reader(settings: KafkaSettings) -> Any:
    """A consumer with no group: it reads assigned partitions between two offsets, commits nothing."""
    from kafka import KafkaConsumer

    from streaming import fetch_parsing

    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap.split(","),
        client_id=f"{settings.client_id}-state-rebuild",
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",  # never jump to the end: a gap must be read, not skipped
        max_poll_records=settings.batch_size,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        reconnect_backoff_max_ms=int(settings.retry_backoff_max_s * 1000),
        metrics_enabled=False,
    )
    fetch_parsing.install(consumer)
    return consumer


def stored_sources(store: Any) -> Callable[[Sequence[str]], dict[str, tuple[int, int]]] | None:
    """For a SQL store: id -> (source partition, source offset) of the record its score came from.
    Only replays ask (a restart's first batches and its gap), so plain SQLAlchemy is fast enough."""
    from streaming.store import SqlAlertStore, scores_table

    if not isinstance(store, SqlAlertStore):
        return None
    columns = (scores_table.c.transaction_id, scores_table.c.source_partition, scores_table.c.source_offset)

    def sources(transaction_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
        ids = list(transaction_ids)
        found: dict[str, tuple[int, int]] = {}
        with store.engine.connect() as conn:
            for start in range(0, len(ids), 500):  # SQLite bounds the parameters of one statement
                query = select(*columns).where(scores_table.c.transaction_id.in_(ids[start : start + 500]))
                found.update((row[0], (int(row[1]), int(row[2]))) for row in conn.execute(query))
        return found

    return sources


class StateSync:
    """Keeps one scorer's feature state consistent with the consumer's committed offsets."""

    def __init__(
        self,
        settings: KafkaSettings,
        scorer: StatefulScorer,
        sources: Callable[[Sequence[str]], dict[str, tuple[int, int]]] | None,
        *,
        reader_factory: Callable[[KafkaSettings], Any] = make_gap_reader,
        rebuild_timeout_s: float = 600.0,
        limits: ValidationLimits = DEFAULT_LIMITS,
    ) -> None:
        self.settings = settings
        #: Decoded with the live batches' limits, so the gap keeps exactly the records scoring kept.
        self.limits = limits
        self.scorer = scorer
        #: id -> (partition, offset) of the stored score (:func:`stored_sources`); None: every record
        #: the store holds counts as this one (no store dedupe, or a store that does not keep sources).
        self._sources = sources
        self._reader_factory = reader_factory
        self._rebuild_timeout_s = rebuild_timeout_s
        self.directory = CheckpointDir(settings.checkpoint_dir / settings.group_id / settings.client_id,
                                       keep=settings.checkpoints_kept)
        #: Per partition: every record below this offset is in the state, none at or above it.
        self.applied: Offsets = {}
        #: Offsets the group has committed, as far as this process knows (prunes old checkpoints).
        self.committed: Offsets = {}
        self._pending: set[Key] = set()
        self._restored = False
        self._records_since = 0
        self._checkpoint_at = time.monotonic()
        self._due = False
        #: Records replayed through the features at assignments (logged, and read by tests).
        self.rebuilt = 0
        self._writing: threading.Thread | None = None

    # -- assignment ------------------------------------------------------------------
    def assigned(self, partitions: Iterable[Any]) -> None:
        """Partitions to bring up to date before their first record is scored (rebalance listener)."""
        self._pending.update((tp.topic, tp.partition) for tp in partitions)

    @property
    def pending(self) -> bool:
        return bool(self._pending)

    def catch_up(self, consumer: Any, learn_labels: Callable[[], bool]) -> bool:
        """Bring the state up to the committed offsets of newly assigned partitions (poll thread,
        before scoring). ``learn_labels`` learns every label on the topic; it runs right after the
        first restore. False: stopped meanwhile (``learn_labels`` returned False)."""
        if not self._pending:
            return True
        pending = sorted(self._pending)
        first = not self._restored
        known = {key for checkpoint in self.directory.list() for key in checkpoint.offsets} if first else set()
        committed, beginning = self._offsets(consumer, set(pending) | known)
        self.committed.update(committed)
        if first:
            self._restore(committed, beginning, pending)
            if not learn_labels():
                return False
            self._restored = True
        ranges: dict[Key, tuple[int, int]] = {}
        for key in pending:
            start, target = self.applied.get(key, beginning[key]), committed[key]
            if start < beginning[key]:
                # Retention deleted records the state needs: the cards' history before the
                # beginning is lost (keep the topic's retention longer than checkpoints take).
                log.warning("records the feature state needs were deleted from the topic", extra={
                    "topic": key[0], "partition": key[1], "state_offset": start, "beginning": beginning[key]})
                start = beginning[key]
            if start < target:
                ranges[key] = (start, target)
            elif start > target:
                # This process applied records its commit did not cover, and another owner then
                # re-scored them: the state cannot take them back, so their cards count them twice.
                log.warning("feature state is ahead of the committed offset", extra={
                    "topic": key[0], "partition": key[1], "state_offset": start, "committed": target})
        started = time.monotonic()
        replayed = self._rebuild(ranges) if ranges else 0
        self.rebuilt += replayed
        for key in pending:
            self.applied[key] = max(self.applied.get(key, 0), committed[key])
        self._pending.difference_update(pending)
        if self._due:
            # A new group: checkpoint the starting state before anything changes it, so that a
            # crash before the first commit restores it (Redis would otherwise keep that batch).
            self.checkpoint(wait=True)
        log.info("feature state caught up", extra={
            "partitions": [p for _, p in pending], "replayed": replayed,
            "seconds": round(time.monotonic() - started, 3)})
        return True

    def _offsets(self, consumer: Any, keys: set[Key]) -> tuple[Offsets, Offsets]:
        """Committed offsets (the beginning where nothing is committed) and beginning offsets."""
        from kafka import TopicPartition

        tps = [TopicPartition(topic, partition) for topic, partition in sorted(keys)]
        beginning = {(tp.topic, tp.partition): int(offset) for tp, offset in consumer.beginning_offsets(tps).items()}
        committed: Offsets = {}
        for tp in tps:
            offset = consumer.committed(tp)
            key = (tp.topic, tp.partition)
            committed[key] = beginning[key] if offset is None else max(int(offset), beginning[key])
        return committed, beginning

    def _restore(self, committed: Offsets, beginning: Offsets, assigned: list[Key]) -> None:
        state = self.scorer.feature_state
        checkpoint = self.directory.usable(committed)
        if checkpoint is not None:
            state.clear()
            state.restore(checkpoint.state())
            self.applied = dict(checkpoint.offsets)
            log.info("feature state restored", extra={"checkpoint": checkpoint.path.name,
                                                       "offsets": _readable(checkpoint.offsets)})
            return
        if any(committed[key] > beginning[key] for key in assigned):
            # The group has progress but no checkpoint covers it (first run with checkpoints, or the
            # directory lost): the partitions are replayed from their beginning into an empty state.
            state.clear()
            log.warning("no feature-state checkpoint covers the committed offsets; rebuilding from the "
                        "partitions' beginning", extra={"directory": str(self.directory.path)})
        else:
            # A new group: the state the process started with is the state at the beginning offsets
            # (checkpointed as such once the labels are learnt, see catch_up).
            self._due = True
        self.applied = {}

    def _rebuild(self, ranges: dict[Key, tuple[int, int]]) -> int:
        """Replay [start, target) of each partition through the features; returns how many transactions."""
        from kafka import TopicPartition

        reader = self._reader_factory(self.settings)
        applied = 0
        try:
            tps = {key: TopicPartition(*key) for key in ranges}
            reader.assign(list(tps.values()))
            for key, (start, _target) in ranges.items():
                reader.seek(tps[key], start)
            deadline = time.monotonic() + self._rebuild_timeout_s
            while any(reader.position(tps[key]) < target for key, (_, target) in ranges.items()):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"replaying feature state up to the committed offsets took longer than "
                                       f"{self._rebuild_timeout_s:g} s; ranges {_readable_ranges(ranges)}")
                polled = reader.poll(timeout_ms=200, max_records=self.settings.batch_size)
                records = [
                    SourceRecord(m.topic, m.partition, m.offset, m.key, m.value, m.timestamp)
                    for messages in polled.values() for m in messages
                    if m.offset < ranges[(m.topic, m.partition)][1]
                ]
                if records:
                    decoded = decode_batch(records, max_bytes=self.settings.max_record_bytes, limits=self.limits)
                    txs = self.replays(decoded, {tx.transaction_id for tx in decoded.transactions}, everything=True)
                    if txs:
                        self.scorer.update_state(txs)
                    applied += len(txs)
                    # Progress is kept, so a retry after a broker or store error resumes here.
                    self.observed(records, count=False)
        finally:
            reader.close()
        return applied

    # -- the scoring path --------------------------------------------------------------
    def replays(self, decoded: Decoded, stored: set[str], *, everything: bool = False) -> list[Transaction]:
        """Transactions of ``decoded`` whose id is in ``stored`` (the store holds a score for it) and
        that must still update the state: the store's score came from this very record. With
        ``everything``, also those the store lacks (the gap replay: those were scored too)."""
        candidates = [(tx, src) for tx, src in zip(decoded.transactions, decoded.sources, strict=True)
                      if tx.transaction_id in stored]
        if not candidates:
            return []
        if self._sources is None:
            return [tx for tx, _ in candidates]
        found = self._sources([tx.transaction_id for tx, _ in candidates])
        return [tx for tx, src in candidates
                if found.get(tx.transaction_id, (src.partition, src.offset) if everything else None)
                == (src.partition, src.offset)]

    def observed(self, records: Sequence[SourceRecord], *, count: bool = True) -> None:
        """A polled batch went through the state (scored or replayed); every record of it is applied."""
        applied = self.applied
        for r in records:
            key = (r.topic, r.partition)
            if r.offset >= applied.get(key, 0):
                applied[key] = r.offset + 1
        if count:
            self._records_since += len(records)

    def maybe_checkpoint(self) -> None:
        """Between batches (poll thread): write a checkpoint when one is due."""
        now = time.monotonic()
        if not self._due:
            if not self._records_since:
                return
            if (self._records_since < self.settings.checkpoint_every_records
                    and now - self._checkpoint_at < self.settings.checkpoint_every_s):
                return
        self.checkpoint()

    def checkpoint(self, *, wait: bool = False) -> None:
        """Cut the state now (poll thread: it holds still between batches), copy, compress and write
        it on a background thread. In memory the cut is copy-on-write (the store copies a state
        before it changes it), so scoring does not wait for the copy; other stores are copied at
        the cut. A checkpoint still being written makes this one wait for the next turn, unless
        ``wait`` (a clean stop), which also waits for this one's file."""
        if self._writing is not None and self._writing.is_alive():
            if not wait:
                return
            self._writing.join()
        started = time.perf_counter()
        store, skip = self.scorer.feature_state, self._skip_prefixes()
        begin = getattr(store, "begin_snapshot", None)
        if begin is not None:
            capture = begin(skip)
            document: Callable[[], bytes] = capture.run
        else:
            copied = store.snapshot_document(skip)
            document = lambda: copied  # noqa: E731 - the copy is taken; the thread only seals it
        cut_ms = (time.perf_counter() - started) * 1000
        self._records_since, self._checkpoint_at, self._due = 0, time.monotonic(), False
        self._writing = threading.Thread(target=self._write, args=(document, dict(self.applied), dict(self.committed),
                                                                   cut_ms), name="state-checkpoint", daemon=True)
        self._writing.start()
        if wait:
            self._writing.join()

    def _write(self, document: Callable[[], bytes], offsets: Offsets, committed: Offsets, cut_ms: float) -> None:
        started = time.perf_counter()
        try:
            state = seal_snapshot(document())
            written = self.directory.write(offsets, state)
            self.directory.prune(committed)
        except OSError as exc:
            # Not fatal: a restart replays from an older checkpoint (or the partitions' beginning).
            log.error("feature state checkpoint not written", extra={"directory": str(self.directory.path),
                                                                     "error": str(exc)})
            return
        log.info("feature state checkpointed", extra={
            "checkpoint": written.path.name, "bytes": len(state), "cut_ms": round(cut_ms, 1),
            "background_ms": round((time.perf_counter() - started) * 1000, 1)})

    def committed_offsets(self, positions: dict[Key, int]) -> None:
        """Offsets this process committed (sync commit done, or async commit acknowledged)."""
        for key, offset in positions.items():
            if offset > self.committed.get(key, -1):
                self.committed[key] = offset

    def _skip_prefixes(self) -> tuple[str, ...]:
        return self.scorer.label_state_prefixes if self.settings.consume_labels else ()


def _readable(offsets: Offsets) -> dict[str, int]:
    return {f"{topic}:{partition}": offset for (topic, partition), offset in sorted(offsets.items())}


def _readable_ranges(ranges: dict[Key, tuple[int, int]]) -> dict[str, list[int]]:
    return {f"{topic}:{partition}": list(span) for (topic, partition), span in sorted(ranges.items())}

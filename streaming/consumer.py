"""The Kafka loop: poll a micro-batch, run the pure pipeline, make outputs durable, commit.

Order per batch (at-least-once, idempotent outputs):

1. decode + validate (bad records become dead letters);
2. set aside transactions the store already scored (a replay after a crash or rebalance):
   no outputs again, but the ones scored from this very record still update the feature
   state (their update was lost with the crashed process or undone by the restore);
3. score the rest;
4. hand scores, alerts and dead letters to the producer (acks=all);
5. (writer thread) wait for the acknowledgements, then write scores and alerts to the
   store in one transaction (ON CONFLICT DO NOTHING);
6. (poll thread, at its next turn) commit the offsets of batches that completed 5.

Steps 1-4 of the next batch run while the writer thread does step 5 of this one
(see :mod:`streaming.writer`): the poll loop never waits for a round trip unless
``max_in_flight_batches`` batches are already pending.

Publishing comes before the store write so that "in the store" implies "published":
step 2 can then skip a replayed transaction's outputs without losing them.
A crash between 4 and 5 only re-publishes (consumers of the topics key on
``transaction_id``); a crash between 5 and 6 replays records that step 2 sets aside.

A stateful scorer's feature state is tied to the offsets (:mod:`streaming.state_sync`):
between batches it is checkpointed with the offsets it covers, and when partitions are
assigned, before their first record is scored, it is brought up to the committed offsets
(restore + replay of the gap), so a restart scores exactly as an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any, cast

import numpy as np
from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata

from features.schema import DEFAULT_LIMITS, ValidationLimits
from streaming import fetch_parsing
from streaming.heap import HeapPolicy
from streaming.metrics import StreamMetrics, dead_letter_reason_label
from streaming.outputs import KafkaOutputs, PublishError, make_producer
from streaming.pipeline import decode_batch, score_decoded
from streaming.records import SourceRecord
from streaming.retry import Backoff, Interrupted, retry
from streaming.scoring import Scorer, StatefulScorer
from streaming.settings import KafkaSettings
from streaming.state_sync import StateSync, state_sync_enabled, stored_sources
from streaming.store import TRANSIENT_ERRORS, AlertStore
from streaming.writer import DurableWriter, InFlight, WriterStopped

log = logging.getLogger(__name__)

_LAG_EVERY_S = 1.0


@dataclass(slots=True)
class RunSummary:
    consumed: int = 0
    scored: int = 0
    new_alerts: int = 0
    dead_lettered: int = 0
    duplicates: int = 0
    batches: int = 0
    elapsed_s: float = 0.0
    #: First polled record to the last committed batch: excludes connecting, joining and idling.
    active_s: float = 0.0
    interrupted: bool = False

    @property
    def throughput(self) -> float:
        """Records per second while there were records (group join excluded)."""
        return self.consumed / self.active_s if self.active_s > 0 else 0.0


def kafka_transient_errors() -> tuple[type[BaseException], ...]:
    return (KafkaError, PublishError, ConnectionError, TimeoutError)


def _scoring_transient() -> tuple[type[BaseException], ...]:
    # Feature state lives in Redis when scaled out; its outage blocks scoring like a store outage.
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    try:
        import redis.exceptions

        errors += [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError]
    except ImportError:
        pass
    return tuple(errors)


def make_consumer(settings: KafkaSettings, listener: Any | None = None) -> Any:
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap.split(","),
        group_id=settings.group_id,
        client_id=f"{settings.client_id}-consumer",
        enable_auto_commit=False,
        auto_offset_reset=settings.auto_offset_reset,
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=settings.heartbeat_interval_ms,
        max_poll_interval_ms=settings.max_poll_interval_ms,
        max_poll_records=settings.batch_size,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        reconnect_backoff_max_ms=int(settings.retry_backoff_max_s * 1000),
        metrics_enabled=False,
    )
    fetch_parsing.install(consumer)  # compiled record parsing (see streaming.fetch_parsing)
    consumer.subscribe([settings.transactions_topic], listener=listener)
    return consumer


class PhaseTimer:
    """Accumulates wall time per named step; cheap enough to stay on in production."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


def _abandon(producer: Any) -> None:
    """Close a kafka-python producer without delivering what it still holds.

    After an unfinished stop, what it holds belongs to uncommitted batches, which are
    redelivered, so waiting for a broker that is away would only delay the exit. kafka-python has no
    public way: ``close`` flushes first, waiting up to its timeout for each batch in turn,
    and a failed close leaves ``__del__`` to try again at exit. Failing the queued batches
    first (what its own force-close does) lets ``close(timeout=0)`` finish.
    """
    with contextlib.suppress(Exception):
        producer._accumulator.abort_incomplete_batches()
    with contextlib.suppress(Exception):
        producer.close(timeout=0)


class StreamService:
    """One consumer-group member scoring the transactions topic.

    Build it with a scorer and a store that were set up already (startup errors,
    like a missing model, surface before the service touches Kafka); :meth:`run`
    connects, loops until :meth:`stop` (or a signal) and returns a summary.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        scorer: Scorer,
        store: AlertStore,
        *,
        metrics: StreamMetrics | None = None,
        consumer_factory: Callable[..., Any] = make_consumer,
        producer_factory: Callable[[KafkaSettings], Any] = make_producer,
        limits: ValidationLimits = DEFAULT_LIMITS,
    ) -> None:
        self.settings = settings
        #: The transaction contract's limits (features.*), for every record this process decodes:
        #: the live batches, the state catch-up and the labels feed alike.
        self.limits = limits
        self.scorer = scorer
        self.store = store
        self.metrics = metrics if metrics is not None else StreamMetrics()
        self._consumer_factory = consumer_factory
        self._producer_factory = producer_factory
        self._cards = getattr(scorer, "cards", None)
        self._stop = threading.Event()
        self._stop_at: float | None = None
        self._backoff = Backoff(settings.retry_backoff_s, settings.retry_backoff_max_s)
        self._kafka_errors = kafka_transient_errors()
        self._lag_at = 0.0
        self._active_at: float | None = None
        self._consumer: Any = None
        self._outputs: KafkaOutputs | None = None
        self._writer: DurableWriter | None = None
        self._submitted = 0
        self._labels: Any = None
        self._last_durable = 0.0
        #: Next offset to commit per (topic, partition): past every record whose outputs are durable.
        self._to_commit: dict[tuple[str, int], int] = {}
        self._committed_at = 0.0
        self._heap = HeapPolicy(every_s=settings.heap_freeze_every_s) if settings.heap_freeze_every_s > 0 else None
        #: Feature state tied to the offsets (checkpoints, catch-up at assignment); None: not checkpointed.
        self.state_sync: StateSync | None = None
        if state_sync_enabled(settings, scorer):
            sources = stored_sources(store) if settings.dedupe_against_store else None
            self.state_sync = StateSync(settings, cast(StatefulScorer, scorer), sources, limits=limits)
        self.summary = RunSummary()
        #: Seconds spent per step of the loop (where the time goes; the benchmark reports it).
        self.timer = PhaseTimer()

    # -- lifecycle ---------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the loop to finish the in-flight batch, commit and return."""
        if self._stop_at is None:
            self._stop_at = time.monotonic()
        self._stop.set()

    def _outputs_given_up(self) -> bool:
        """True once a stop has waited a third of ``shutdown_timeout_s`` for broker acks. The batch
        then stays uncommitted and is redelivered. The rest of the limit leaves room for the three
        synchronous calls a stop still makes (the commit, the commit of the revocation at close and
        the group leave, each bounded by :attr:`_sync_call_timeout_ms`) with a margin, so an outage
        ends in an orderly exit 75 rather than the watchdog's."""
        limit = self.settings.shutdown_timeout_s
        return self._stop_at is not None and limit > 0 and time.monotonic() - self._stop_at > limit / 3

    @property
    def _sync_call_timeout_ms(self) -> int:
        """Longest one synchronous commit attempt, or the group leave at close, waits for the broker:
        5 s, or a sixth of ``shutdown_timeout_s`` if that is less: a stop during an outage makes three
        such calls after waiting a third of the limit for acks, which leaves a sixth as margin for the
        rest of the exit. Left alone, kafka-python waits its request timeout or longer, and a stop has
        to fit within the watchdog's limit. Commits are retried with backoff unless stopping."""
        limit = self.settings.shutdown_timeout_s
        return int(1000 * (min(5.0, limit / 6) if limit > 0 else 5.0))

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def stop_requested(self) -> threading.Event:
        """Set once a stop is asked for (a shutdown watchdog waits on it)."""
        return self._stop

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT → :meth:`stop` (call from the main thread)."""

        def handler(signum: int, _frame: FrameType | None) -> None:
            log.info("stop requested", extra={"signal": signal.Signals(signum).name})
            self.stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run(self, *, idle_exit_s: float | None = None, max_records: int | None = None) -> RunSummary:
        """Consume until stopped. Also returns once ``max_records`` were consumed, or after
        ``idle_exit_s`` without records once partitions were assigned (tests, demo)."""
        started = time.monotonic()
        first_record: float | None = None
        consumer = producer = None
        try:
            producer = self._connect("producer", lambda: self._producer_factory(self.settings))
            consumer = self._connect("consumer", lambda: self._consumer_factory(self.settings, _Rebalance(self)))
            if producer is None or consumer is None:
                return self.summary
            self._consumer = consumer
            self._outputs = KafkaOutputs(producer, self.settings)
            self._writer = DurableWriter(self._make_durable, max_in_flight=self.settings.max_in_flight_batches)
            # With state checkpoints, labels are learnt after the state is restored (at the first assignment).
            if self.state_sync is None and not self._start_labels():
                return self.summary
            if self._heap is not None:
                self._heap.start()  # the model and the feature state are loaded: freeze them
            log.info("consuming", extra={"topic": self.settings.transactions_topic, "group": self.settings.group_id,
                                         "model_version": self.scorer.model_version})
            try:
                while not self.stopping:
                    self._commit_completed()
                    if self._heap is not None:
                        self._heap.tick()
                    self._learn_new_labels()
                    polled = self._poll(consumer)
                    if not self._catch_up_state(consumer):
                        break
                    if not polled:
                        if self._idle_for(idle_exit_s):
                            break
                        self._update_lag(consumer)
                        continue
                    self._active_at = time.monotonic()
                    if first_record is None:
                        first_record = self._active_at
                    self._process(polled)
                    if self.state_sync is not None:
                        with self.timer("checkpoint"):
                            self.state_sync.maybe_checkpoint()
                    if max_records is not None and self._submitted >= max_records:
                        break
                # Stopping: everything submitted becomes durable and committed before we leave.
                self._writer.drain()
                self._commit_completed(force=True)
                if self.state_sync is not None and not self.state_sync.pending:
                    self.state_sync.checkpoint(wait=True)  # the next start restores it with no gap to replay
            except (Interrupted, WriterStopped) as exc:
                # Uncommitted batches are redelivered after restart: nothing lost.
                reason = exc.__cause__ if isinstance(exc, WriterStopped) and exc.__cause__ is not None else exc
                if not isinstance(reason, Interrupted):
                    raise reason from None
                log.warning("stopped with uncommitted batches", extra={"reason": str(reason)})
                self.summary.interrupted = True
                # Commit what did become durable, if the broker takes it; if it is away too,
                # those batches are replayed and the store-side dedupe skips them.
                with contextlib.suppress(Interrupted):
                    self._commit_completed(raise_errors=False, force=True)
        finally:
            ended = time.monotonic()
            self.summary.elapsed_s = ended - started
            self.summary.active_s = max(0.0, self._last_durable - first_record) if first_record is not None else 0.0
            if self._writer is not None:
                self._writer.close()
            if self._labels is not None:
                self._labels.close()
            self._close(consumer, producer)
            if self._heap is not None:
                cycles = self._heap.release()
                log.info("heap released", extra={"unreachable_objects": cycles})
        log.info("stopped", extra={"consumed": self.summary.consumed, "scored": self.summary.scored,
                                   "dead_lettered": self.summary.dead_lettered, "alerts": self.summary.new_alerts})
        return self.summary

    def _start_labels(self) -> bool:
        """With ``consume_labels``: read every label on the topic into the feature state before
        the first batch is scored (False: stopped while waiting for the broker)."""
        learn = getattr(self.scorer, "learn_labels", None)
        if not self.settings.consume_labels:
            return True
        if learn is None:
            raise TypeError(f"consume_labels is on but the scorer {type(self.scorer).__name__} has no feature state "
                            "to learn labels into")
        from streaming.labels import LabelFeed

        label_event = self.scorer.label_event  # type: ignore[attr-defined]
        feed = self._connect("labels consumer", lambda: LabelFeed(self.settings, label_event, limits=self.limits))
        if feed is None:
            return False
        self._labels = feed
        try:
            events = self._retry(feed.catch_up, "labels catch-up", self._kafka_errors)
        except Interrupted:
            return False
        learn(events)
        self.metrics.labels.inc(len(events))
        log.info("labels learnt", extra={"labels": len(events), "rejected": feed.rejected,
                                         "topic": self.settings.labels_topic})
        return True

    def _catch_up_state(self, consumer: Any) -> bool:
        """Before a newly assigned partition's first record is scored: its feature state up to the
        committed offset (the first time: restore the checkpoint, learn the labels, replay the gap).
        False: stopped meanwhile."""
        sync = self.state_sync
        if sync is None or not sync.pending:
            return True
        try:
            with self.timer("state catch-up"):
                return bool(self._retry(lambda: sync.catch_up(consumer, self._start_labels), "state catch-up",
                                        (*self._kafka_errors, *TRANSIENT_ERRORS, *_scoring_transient())))
        except Interrupted:
            return False

    def _learn_new_labels(self) -> None:
        if self._labels is None:
            return
        try:
            with self.timer("labels"):
                events = self._labels.poll()
                if events:
                    self.scorer.learn_labels(events)  # type: ignore[attr-defined]
        except self._kafka_errors as exc:
            # The labels consumer reconnects by itself; scoring goes on with what it knows.
            log.warning("labels poll failed", extra={"error": type(exc).__name__})
            return
        if events:
            self.metrics.labels.inc(len(events))

    def _idle_for(self, idle_exit_s: float | None) -> bool:
        # Counted from the last records or the last assignment: joining a group can take a
        # session timeout, which is not idleness.
        return (idle_exit_s is not None and self._active_at is not None
                and time.monotonic() - self._active_at > idle_exit_s)

    def _connect(self, what: str, factory: Callable[[], Any]) -> Any:
        try:
            return retry(factory, step=f"connect {what}", transient=self._kafka_errors, backoff=self._backoff,
                         should_stop=self._stop.is_set, on_retry=self._count_retry)
        except Interrupted:
            return None

    def _close(self, consumer: Any, producer: Any) -> None:
        if consumer is not None:
            try:
                # Leave the group now: partitions move without waiting a session.
                consumer.close(autocommit=False, timeout_ms=self._sync_call_timeout_ms)
            except Exception:  # noqa: BLE001 - closing a half-dead client must not mask the real outcome
                log.warning("consumer close failed", exc_info=True)
        if producer is not None:
            if self.summary.interrupted:
                _abandon(producer)
                return
            try:
                producer.close(timeout=10)
            except Exception:  # noqa: BLE001
                log.warning("producer close failed", exc_info=True)

    # -- one micro-batch ---------------------------------------------------------------
    def _poll(self, consumer: Any) -> list[SourceRecord]:
        try:
            with self.timer("poll"):
                batches = consumer.poll(timeout_ms=self.settings.poll_timeout_ms, max_records=self.settings.batch_size)
        except self._kafka_errors as exc:
            # The client reconnects by itself; wait a little so an outage is not a busy loop.
            log.warning("poll failed", extra={"error": type(exc).__name__})
            self._count_retry("poll")
            time.sleep(self.settings.retry_backoff_s)
            return []
        return [
            SourceRecord(m.topic, m.partition, m.offset, m.key, m.value, m.timestamp)
            for messages in batches.values()
            for m in messages
        ]

    def _process(self, records: list[SourceRecord]) -> None:
        """Steps 1-4 for one polled batch, then hand it to the writer thread."""
        assert self._outputs is not None and self._writer is not None
        received_at = time.time()
        s, timer, outputs = self.settings, self.timer, self._outputs
        with timer("decode"):
            decoded = decode_batch(records, max_bytes=s.max_record_bytes, limits=self.limits)
        if s.dedupe_against_store and decoded.transactions:
            ids = [tx.transaction_id for tx in decoded.transactions]
            with timer("store read"):
                done = self._retry(lambda: self.store.scored_fingerprints(ids), "store read", TRANSIENT_ERRORS)
            replayed = self.state_sync.replays(decoded, set(done)) if self.state_sync is not None and done else []
            # A scored id with the same content is skipped (a replay); with other content, dead-lettered.
            decoded, _same = decoded.split_replayed(done)
            if replayed:  # scored before a crash, not committed: no outputs again, but their state update
                sync = self.state_sync
                assert sync is not None
                with timer("score"):
                    self._retry(lambda: sync.scorer.update_state(replayed), "score", _scoring_transient())
        transient = _scoring_transient()
        with timer("score"):
            batch = self._retry(lambda: score_decoded(decoded, self.scorer, received_at=received_at,
                                                      cards=self._cards, transient=transient), "score", transient)
        if self.state_sync is not None:
            self.state_sync.observed(records)
        with timer("send"):
            futures = self._retry(lambda: outputs.send(batch), "publish", self._kafka_errors)
        with timer("queue wait"):
            self._writer.submit(InFlight(records, batch, futures, received_at, duplicates=decoded.duplicates))
        self._submitted += len(records)

    def _make_durable(self, item: InFlight) -> int:
        """Step 5 (writer thread): acknowledged by the broker, then in the store. Returns new alerts."""
        outputs = self._outputs
        assert outputs is not None

        def acked() -> None:
            try:
                outputs.await_acks(item.futures, timeout_s=30.0, give_up=self._outputs_given_up)
            except PublishError:
                # Some sends failed (broker outage): publish the whole batch again and wait for it.
                item.futures = []
                outputs.publish(item.batch)

        self._retry(acked, "publish", self._kafka_errors)
        written = self._retry(lambda: self.store.write(item.batch), "store write", TRANSIENT_ERRORS)
        return int(written.new_alerts)

    def _commit_completed(self, *, raise_errors: bool = True, force: bool = False) -> None:
        """Step 6 (poll thread): account every batch the writer finished; commit their offsets.

        Offsets are committed at most every ``commit_interval_ms``, asynchronously: the
        loop does not wait a coordinator round trip (2-5 ms each, measured) and a lost or
        rejected commit is covered by the next one, which names later offsets. When
        ``force`` (stop, rebalance) the commit is synchronous and retried, so partitions
        leave with everything durable committed. A crash replays at most what the last
        commits did not cover, which the store-side dedupe skips.
        """
        writer, consumer = self._writer, self._consumer
        if writer is None or consumer is None:
            return
        done = writer.completed()
        if done:
            with self.timer("account"):
                for item in done:
                    self._account(item)
                    self._mark_durable(item.records)
            self._last_durable = time.monotonic()
        due = time.monotonic() - self._committed_at >= self.settings.commit_interval_ms / 1000.0
        if self._to_commit and (force or due):
            with self.timer("commit"):
                positions, self._to_commit = self._to_commit, {}
                self._commit(consumer, positions, wait=force)
            self._committed_at = time.monotonic()
            self._update_lag(consumer)
        if raise_errors:
            self._raise_writer_error()

    def _raise_writer_error(self) -> None:
        writer = self._writer
        if writer is not None and writer.error is not None:
            raise WriterStopped("the output writer stopped") from writer.error

    def drain_and_commit(self) -> None:
        """Make every submitted batch durable and commit it (before partitions move away)."""
        if self._writer is not None:
            self._writer.drain()
        self._commit_completed(raise_errors=False, force=True)

    def _retry(self, fn: Callable[[], Any], step: str, transient: tuple[type[BaseException], ...]) -> Any:
        return retry(fn, step=step, transient=transient, backoff=self._backoff, should_stop=self._stop.is_set,
                     on_retry=self._count_retry)

    def _mark_durable(self, records: list[SourceRecord]) -> None:
        to_commit = self._to_commit
        for r in records:
            key = (r.topic, r.partition)
            if r.offset >= to_commit.get(key, 0):
                to_commit[key] = r.offset + 1

    def _commit(self, consumer: Any, positions: dict[tuple[str, int], int], *, wait: bool = True) -> None:
        offsets = {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in positions.items()}
        if not wait:
            try:
                consumer.commit_async(offsets=offsets, callback=self._commit_done)
                return
            except self._kafka_errors as exc:  # e.g. no coordinator right now: commit and wait instead
                log.info("async commit not sent; committing synchronously", extra={"error": type(exc).__name__})

        def attempt() -> bool:
            try:
                consumer.commit(offsets=offsets, timeout_ms=self._sync_call_timeout_ms)
            except CommitFailedError:
                return False  # final, not transient: the partitions belong to someone else now
            if self.state_sync is not None:
                self.state_sync.committed_offsets(positions)
            return True

        if not self._retry(attempt, "commit", self._kafka_errors):
            # The group rebalanced while we worked: the new owner replays these records and
            # the store-side dedupe skips them. Outputs are already durable; nothing is lost.
            log.warning("commit rejected after a rebalance; records will be replayed by the new owner",
                        extra={"partitions": sorted(p for _, p in positions)})

    def _commit_done(self, offsets: dict[Any, Any], response: Any) -> None:
        """Async commit callback (inside ``consumer.poll``, on the poll thread).

        A failed commit goes back into the next one (unless a later offset is already
        waiting), so a failure followed by silence on the topic is still committed; a
        partition that moved to another consumer meanwhile is left to its new owner.
        """
        if not isinstance(response, BaseException):
            if self.state_sync is not None:
                self.state_sync.committed_offsets({(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()})
            return
        self._count_retry("commit")
        log.warning("offset commit failed; it goes again with the next one",
                    extra={"error": type(response).__name__, "partitions": sorted(tp.partition for tp in offsets)})
        owned = self._consumer.assignment() if self._consumer is not None else set()
        for tp, meta in offsets.items():
            key = (tp.topic, tp.partition)
            if tp in owned and meta.offset > self._to_commit.get(key, 0):
                self._to_commit[key] = meta.offset

    def _account(self, item: InFlight) -> None:
        m, summary, batch = self.metrics, self.summary, item.batch
        n = len(item.records)
        summary.consumed += n
        summary.scored += len(batch.scores)
        summary.new_alerts += item.new_alerts
        summary.dead_lettered += len(batch.dead)
        summary.duplicates += item.duplicates
        summary.batches += 1
        m.consumed.inc(n)
        m.scored.inc(len(batch.scores))
        m.alerts.inc(item.new_alerts)
        m.duplicates.inc(item.duplicates)
        for dead in batch.dead:
            m.dead_lettered.labels(dead_letter_reason_label(dead.reason)).inc()
        m.batch_size.observe(n)
        seconds = item.durable_at - item.received_at
        m.processing_seconds.observe(seconds)
        if batch.scores:
            produced_ms = np.fromiter((score.source_timestamp_ms for score in batch.scores), dtype=np.float64,
                                      count=len(batch.scores))
            m.end_to_end_seconds.observe_many(np.maximum(0.0, item.durable_at * 1000.0 - produced_ms) / 1000.0)
        if seconds > 5:
            log.warning("slow batch", extra={"records": n, "seconds": round(seconds, 2)})

    def _update_lag(self, consumer: Any) -> None:
        now = time.monotonic()
        if now - self._lag_at < _LAG_EVERY_S:
            return
        self._lag_at = now
        try:
            for tp in consumer.assignment():
                high = consumer.highwater(tp)
                position = consumer.position(tp, timeout_ms=0) if high is not None else None
                if high is not None and position is not None:
                    self.metrics.lag.labels(tp.topic, str(tp.partition)).set(max(0, high - position))
        except Exception:  # noqa: BLE001 - lag is best effort; it must never stop scoring
            log.debug("lag update failed", exc_info=True)

    def _count_retry(self, step: str) -> None:
        self.metrics.retries.labels(step).inc()


class _Rebalance(ConsumerRebalanceListener):
    """Commits what is in flight before partitions move; logs assignments; clears lag gauges.

    kafka-python calls this inside ``poll`` on the poll thread, so committing here is
    safe; the batches still with the writer are made durable first, so the new owner
    starts after them instead of replaying them.
    """

    def __init__(self, service: StreamService) -> None:
        self.service = service

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.service.drain_and_commit()
        for tp in revoked:
            with contextlib.suppress(KeyError):
                self.service.metrics.lag.remove(tp.topic, str(tp.partition))
        log.info("partitions revoked", extra={"partitions": sorted(tp.partition for tp in revoked)})

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.service._active_at = time.monotonic()
        if self.service.state_sync is not None:
            # Caught up on the poll thread after this poll returns, before any record is scored
            # (kafka-python logs and swallows what a listener raises).
            self.service.state_sync.assigned(assigned)
        log.info("partitions assigned", extra={"partitions": sorted(tp.partition for tp in assigned)})

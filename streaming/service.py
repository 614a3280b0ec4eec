"""Wiring for one scoring process: store, topics, metrics, signals, the loop.

The `fraudlens stream` command and the tests' subprocess runner both call
:func:`serve`, so the process under test is the process that ships.
"""

from __future__ import annotations

import logging

from features.schema import DEFAULT_LIMITS, ValidationLimits
from streaming.broker import BrokerError, ensure_topics
from streaming.consumer import RunSummary, StreamService, kafka_transient_errors
from streaming.metrics import StreamMetrics
from streaming.retry import Backoff, Interrupted, retry
from streaming.scoring import Scorer
from streaming.settings import KafkaSettings, StoreSettings
from streaming.shutdown import ShutdownWatchdog
from streaming.store import TRANSIENT_ERRORS, AlertStore, make_store

log = logging.getLogger(__name__)


def serve(
    kafka: KafkaSettings,
    store_settings: StoreSettings,
    scorer: Scorer,
    *,
    create_topics_partitions: int | None = None,
    idle_exit_s: float | None = None,
    install_signals: bool = True,
    limits: ValidationLimits = DEFAULT_LIMITS,
) -> RunSummary:
    """Run one consumer-group member until SIGTERM/SIGINT (or ``idle_exit_s`` without records).

    ``install_signals``: this process is the service. SIGTERM/SIGINT stop it, and a stop
    that takes longer than ``kafka.shutdown_timeout_s`` ends the process (streaming.shutdown).
    """
    metrics = StreamMetrics()
    monitor = getattr(scorer, "drift", None)
    if monitor is not None:
        monitor.export_to(metrics.drift_psi)
    if kafka.metrics_port:
        host, port = metrics.serve(kafka.metrics_port, kafka.metrics_host)
        log.info("metrics served", extra={"host": host, "port": port})
    store = make_store(store_settings)
    service = StreamService(kafka, scorer, store, metrics=metrics, limits=limits)
    watchdog = None
    if install_signals:
        service.install_signal_handlers()
        if kafka.shutdown_timeout_s > 0:
            watchdog = ShutdownWatchdog(service.stop_requested, kafka.shutdown_timeout_s).start()
    try:
        return _run(service, store, kafka, create_topics_partitions, idle_exit_s)
    finally:
        if watchdog is not None:
            watchdog.disarm()


def _run(service: StreamService, store: AlertStore, kafka: KafkaSettings, create_topics_partitions: int | None,
         idle_exit_s: float | None) -> RunSummary:
    backoff = Backoff(kafka.retry_backoff_s, kafka.retry_backoff_max_s)
    try:
        retry(store.setup, step="store setup", transient=TRANSIENT_ERRORS, backoff=backoff,
              should_stop=lambda: service.stopping)
        if create_topics_partitions:
            topics = [kafka.transactions_topic, kafka.scores_topic, kafka.alerts_topic, kafka.dlq_topic,
                      kafka.shadow_topic, kafka.labels_topic]
            retry(lambda: ensure_topics(kafka.bootstrap, topics, create_topics_partitions), step="create topics",
                  transient=(*kafka_transient_errors(), BrokerError), backoff=backoff, should_stop=lambda: service.stopping)
    except Interrupted:
        store.close()
        return service.summary
    try:
        return service.run(idle_exit_s=idle_exit_s)
    finally:
        store.close()

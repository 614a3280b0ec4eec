"""Prometheus metrics of the streaming service.

Each service instance owns a :class:`~prometheus_client.CollectorRegistry`, so tests
and several services in one process never collide on the global registry.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_BATCH_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)


class StreamMetrics:
    """Counters, histograms and gauges named ``fraudlens_stream_*`` (and ``fraudlens_drift_psi``)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.consumed = Counter("fraudlens_stream_consumed", "Records consumed from the transactions topic.", registry=r)
        self.scored = Counter("fraudlens_stream_scored", "Transactions scored and stored.", registry=r)
        self.alerts = Counter("fraudlens_stream_alerts", "Alerts raised (new in the store).", registry=r)
        self.labels = Counter("fraudlens_stream_labels", "Labels learnt from the labels topic.", registry=r)
        self.dead_lettered = Counter(
            "fraudlens_stream_dead_lettered", "Records sent to the dead-letter topic.", ["reason"], registry=r
        )
        self.duplicates = Counter(
            "fraudlens_stream_duplicates", "Records skipped because their transaction was already scored.", registry=r
        )
        self.retries = Counter(
            "fraudlens_stream_retries", "Retries after a failed step (broker or store).", ["step"], registry=r
        )
        self.batch_size = Histogram(
            "fraudlens_stream_batch_size", "Records per micro-batch.", buckets=_BATCH_BUCKETS, registry=r
        )
        self.processing_seconds = Histogram(
            "fraudlens_stream_processing_seconds",
            "Poll to committed, per micro-batch.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.end_to_end_seconds = Histogram(
            "fraudlens_stream_end_to_end_seconds",
            "Record timestamp (producer) to its score being durable.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.lag = Gauge("fraudlens_stream_consumer_lag", "Records behind the partition end.", ["topic", "partition"], registry=r)
        self.drift_psi = Gauge(
            "fraudlens_drift_psi",
            "PSI of the live score or a top feature over the recent window against the training reference "
            "(0.1: shift worth a look, 0.25: act).",
            ["model_version", "variable"],
            registry=r,
        )

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:
        """Expose /metrics over HTTP on ``port`` (a daemon thread)."""
        start_http_server(port, addr=addr, registry=self.registry)


def dead_letter_reason_label(reason: str) -> str:
    """A low-cardinality label for a dead-letter reason (the part before the first colon)."""
    head = reason.split(":", 1)[0]
    return head[:60]

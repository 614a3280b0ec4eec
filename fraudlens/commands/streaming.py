"""Streaming commands: ``fraudlens broker | produce | stream | narrate | shadow-report``.

Kafka, SQLAlchemy and the model load inside the command bodies so ``fraudlens --help``
stays instant. Errors a person can fix (no broker binary, bad data file, missing or
incompatible model) print one ``error: ...`` line and exit with code 2.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fraudlens.commands._common import user_errors

if TYPE_CHECKING:
    from streaming.settings import BrokerSettings, KafkaSettings, StoreSettings

log = logging.getLogger(__name__)

BootstrapOpt = Annotated[
    str | None, typer.Option("--bootstrap", help="Kafka bootstrap servers (default: settings kafka.bootstrap).")
]


def _user_errors() -> Any:
    from streaming.broker import BrokerError
    from streaming.scoring import ModelLoadError
    from streaming.store import StoreError

    return user_errors(BrokerError, ModelLoadError, StoreError)


def _quiet_kafka() -> None:
    # kafka-python narrates every connection at INFO; our own lines say what matters.
    logging.getLogger("kafka").setLevel(logging.WARNING)


def _sections(bootstrap: str | None = None) -> tuple[KafkaSettings, BrokerSettings, StoreSettings, Any]:
    """The streaming sections of the root settings, with a --bootstrap override applied."""
    from fraudlens.cli import get_settings

    settings = get_settings()
    kafka, broker, store = settings.kafka, settings.broker, settings.store
    if bootstrap:
        kafka = kafka.model_copy(update={"bootstrap": bootstrap})
    return kafka, broker, store, settings


def broker_command(
    port: Annotated[int | None, typer.Option("--port", help="Listen port (default: broker.port, 9092).")] = None,
    host: Annotated[str | None, typer.Option("--host", help="Listen address (default: broker.host).")] = None,
    partitions: Annotated[int | None, typer.Option("--partitions", min=1, help="Partitions per topic.")] = None,
) -> None:
    """Run the embedded Kafka-compatible broker (Tansu, in memory) and create the topics; Ctrl-C stops it."""
    import signal

    from streaming.broker import EmbeddedBroker

    _quiet_kafka()
    kafka, broker_settings, _store, _ = _sections()
    updates = {k: v for k, v in {"port": port, "host": host, "partitions": partitions}.items() if v is not None}
    broker_settings = broker_settings.model_copy(update=updates)
    topics = [kafka.transactions_topic, kafka.scores_topic, kafka.alerts_topic, kafka.dlq_topic, kafka.shadow_topic,
              kafka.labels_topic]
    with _user_errors():
        broker = EmbeddedBroker(broker_settings, topics=topics).start()
    typer.echo(f"broker on {broker.bootstrap} (memory storage); topics: {', '.join(topics)}", err=True)
    def interrupt(_signum: int, _frame: Any) -> None:
        # Unwind out of wait() and stop in `finally`: stopping inside the handler would
        # re-enter Popen.wait, which holds a non-reentrant lock, and hang.
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    try:
        code = broker.wait()
    except KeyboardInterrupt:
        code = 0
    finally:
        broker.stop()
    raise typer.Exit(0 if code in (0, -15) else 1)


def produce_command(
    data: Annotated[Path, typer.Option("--data", help="Transactions file (.parquet, .csv, .jsonl).")],
    columns: Annotated[Path | None, typer.Option("--columns", help="YAML column mapping canonical -> source.")] = None,
    rate: Annotated[float | None, typer.Option("--rate", min=0, help="Records per second (default: as fast as possible).")] = None,
    labels: Annotated[bool, typer.Option("--labels/--no-labels", help="Include is_fraud / label_timestamp.")] = False,
    topic: Annotated[str | None, typer.Option("--topic", help="Target topic (default: kafka.transactions_topic).")] = None,
    bootstrap: BootstrapOpt = None,
) -> None:
    """Replay a dataset onto the transactions topic in time order, keyed by card id."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from features.io import ColumnMapping, read_transactions
    from features.schema import ValidationLimits, iter_transactions
    from streaming.replay import replay

    _quiet_kafka()
    kafka, _broker, _store, settings = _sections(bootstrap)
    if topic:
        kafka = kafka.model_copy(update={"transactions_topic": topic})
    with _user_errors():
        mapping = ColumnMapping.from_yaml(columns) if columns is not None else None
        frame = read_transactions(data, columns=mapping, limits=ValidationLimits.from_settings(settings.features)).frame
        frame = frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
        columns_shown = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
        with Progress(*columns_shown, transient=False) as progress:
            task = progress.add_task(f"→ {kafka.transactions_topic}", total=len(frame))
            summary = replay(iter_transactions(frame), kafka, rate=rate or None, labels=labels,
                             on_progress=lambda n: progress.advance(task, n))
    typer.echo(f"{summary.sent:,} transactions sent in {summary.seconds:.1f} s ({summary.rate:,.0f}/s)"
               + (f"; {summary.failed} NOT acknowledged" if summary.failed else ""), err=True)
    if summary.failed:
        raise typer.Exit(1)


def _resolve_model(model: Path | None, registry_dir: Path) -> Path:
    if model is not None:
        return model
    from detection.registry import ModelRegistry

    registry = ModelRegistry(registry_dir)
    return registry.root / registry.champion_version()


def stream_command(
    model: Annotated[
        Path | None, typer.Option("--model", help="Model bundle DIR/<version>/ (default: the registry's champion).")
    ] = None,
    bootstrap: BootstrapOpt = None,
    metrics_port: Annotated[int | None, typer.Option("--metrics-port", help="Serve Prometheus metrics here.")] = None,
    idle_exit: Annotated[
        float | None, typer.Option("--idle-exit", help="Exit after this many seconds without records (demo).")
    ] = None,
    create_topics: Annotated[
        bool, typer.Option("--create-topics/--no-create-topics", help="Create missing topics at start.")
    ] = True,
    json_logs: Annotated[bool, typer.Option("--json-logs/--plain-logs", help="Structured JSON log lines.")] = True,
    shadow: Annotated[
        str | None,
        typer.Option("--shadow", help="Challenger bundle DIR or registry version scored beside the champion on the "
                     "same online features; recorded on the shadow topic and table, never alerts "
                     "(default: kafka.shadow_model)."),
    ] = None,
) -> None:
    """Score the transactions topic in a consumer group until SIGTERM/SIGINT; exits 0 after a clean stop,
    75 after a stop that left batches uncommitted (they are redelivered)."""
    from features.schema import ValidationLimits
    from streaming.drift import DriftMonitor
    from streaming.logs import use_json_logs
    from streaming.scoring import ModelScorer, Scorer
    from streaming.service import serve
    from streaming.shadow import ShadowScorer, resolve_challenger
    from streaming.shutdown import EXIT_UNFINISHED

    kafka, broker_settings, store, settings = _sections(bootstrap)
    if metrics_port is not None:
        kafka = kafka.model_copy(update={"metrics_port": metrics_port})
    if json_logs:
        use_json_logs(logging.getLogger().level or logging.INFO)
    challenger = shadow or kafka.shadow_model
    scorer: Scorer
    with _user_errors():
        # Fail fast, before joining the group: a bad model must not take partitions it cannot score.
        champion = ModelScorer.load(_resolve_model(model, settings.model.registry_dir), settings.state,
                                    local_merchant_state=kafka.consume_labels and settings.state.backend == "redis")
        champion.drift = DriftMonitor.for_bundle(champion.bundle, kafka)
        scorer = champion
        if challenger:
            scorer = ShadowScorer.load(champion, resolve_challenger(challenger, settings.model.registry_dir))
            log.info("shadow scoring", extra={"champion": champion.model_version,
                                              "challenger": scorer.challenger_version, "topic": kafka.shadow_topic})
    summary = serve(kafka, store, scorer, create_topics_partitions=broker_settings.partitions if create_topics else None,
                    idle_exit_s=idle_exit, limits=ValidationLimits.from_settings(settings.features))
    typer.echo(f"{summary.consumed:,} consumed, {summary.scored:,} scored, {summary.new_alerts:,} alerts, "
               f"{summary.dead_lettered:,} dead-lettered in {summary.elapsed_s:.1f} s", err=True)
    if summary.interrupted:
        typer.echo("stopped with uncommitted batches (broker or store failing): they are redelivered to the next "
                   "consumer of their partitions", err=True)
        raise typer.Exit(EXIT_UNFINISHED)


def narrate_command(
    once: Annotated[bool, typer.Option("--once/--loop", help="One pass over pending alerts, or poll until stopped.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Most alerts narrated in one pass (--once).")] = 100,
    backend: Annotated[str | None, typer.Option("--backend", help="transformers | openai | template.")] = None,
    poll: Annotated[float, typer.Option("--poll", min=0.1, help="Seconds between polls when idle (--loop).")] = 2.0,
) -> None:
    """The narrative worker: write checked LLM narratives for stored alerts, in batches, off the scoring path."""
    import signal

    from streaming.narration import narrate_pending, run_worker
    from streaming.store import make_store

    _kafka, _broker, store_settings, settings = _sections()
    narrative = settings.narrative if backend is None else settings.narrative.model_copy(update={"backend": backend})
    with _user_errors():
        store = make_store(store_settings)
        store.setup()
    try:
        if once:
            outcome = narrate_pending(store, narrative, limit=limit)
        else:
            stop = {"now": False}

            def request_stop(_signum: int, _frame: Any) -> None:
                stop["now"] = True

            signal.signal(signal.SIGTERM, request_stop)
            signal.signal(signal.SIGINT, request_stop)
            outcome = run_worker(store, narrative, poll_s=poll, should_stop=lambda: stop["now"])
    finally:
        store.close()
    typer.echo(f"{outcome.narrated} narrated ({narrative.backend}): {outcome.passed} passed the checks, "
               f"{outcome.fallbacks} kept the template", err=True)


def _since_ms(since: str | None) -> int | None:
    """``--since`` as epoch milliseconds: an ISO date or date-time (naive = UTC)."""
    if since is None:
        return None
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--since {since!r} is not an ISO date or date-time, e.g. 2026-01-31 or 2026-01-31T12:00") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _pick_pair(pairs: list[tuple[str, str, int]], champion: str | None, challenger: str | None) -> tuple[str, str]:
    matching = [(a, b) for a, b, _ in pairs if champion in (None, a) and challenger in (None, b)]
    if not matching:
        seen = ", ".join(f"{a} vs {b} ({n:,} rows)" for a, b, n in pairs) or "none"
        raise ValueError(f"no shadow rows for champion {champion or 'any'} and challenger {challenger or 'any'} "
                         f"in the store; pairs stored: {seen}. Run `fraudlens stream --shadow VERSION` first")
    if len(matching) > 1:
        raise ValueError("the store holds shadow rows of several model pairs ("
                         + ", ".join(f"{a} vs {b}" for a, b in matching) + "); choose with --champion/--challenger")
    return matching[0]


def _fmt(value: float | None, pct: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:.1%}" if pct else f"{value:.4f}"


def shadow_report_command(
    champion: Annotated[str | None, typer.Option("--champion", help="Champion version (default: the only one stored).")] = None,
    challenger: Annotated[
        str | None, typer.Option("--challenger", help="Challenger version (default: the only one stored).")
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help="Only transactions at or after this ISO date/time.")] = None,
    labels: Annotated[
        Path | None, typer.Option("--labels", help="Labels file (transaction_id, is_fraud) for precision/recall/AP.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
) -> None:
    """Compare the champion and a shadow challenger on the live traffic the stream stored."""
    import json

    from streaming.shadow import compare, read_labels
    from streaming.store import make_store

    _kafka, _broker, store_settings, _ = _sections()
    with _user_errors():  # LabelsError is a ValueError: one line, exit 2
        since_ms = _since_ms(since)
        known = read_labels(labels) if labels is not None else None
        store = make_store(store_settings)
        store.setup()
        try:
            pair = _pick_pair(store.shadow_pairs(), champion, challenger)
            rows = store.shadow_rows(champion=pair[0], challenger=pair[1], since_ms=since_ms)
        finally:
            store.close()
        if not rows:
            raise ValueError(f"no shadow rows for {pair[0]} vs {pair[1]} since {since}")
        report = compare(rows, known)
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
        return
    from rich.table import Table

    from fraudlens.commands._common import stderr_console

    table = Table(title=f"shadow report: {report.rows:,} transactions"
                  + (f", {report.labelled:,} labelled ({report.frauds:,} fraud)" if known is not None else ""))
    table.add_column("")
    table.add_column(f"champion {report.champion.version}", justify="right")
    table.add_column(f"challenger {report.challenger.version}", justify="right")
    for side_name, attr, pct in (("alerts", "alerts", False), ("alert rate", "alert_rate", True),
                                 ("precision", "precision", True), ("recall", "recall", True),
                                 ("average precision", "average_precision", False)):
        a, b = getattr(report.champion, attr), getattr(report.challenger, attr)
        if known is None and attr in ("precision", "recall", "average_precision"):
            continue
        table.add_row(side_name, f"{a:,}" if isinstance(a, int) else _fmt(a, pct),
                      f"{b:,}" if isinstance(b, int) else _fmt(b, pct))
    console = stderr_console()
    console.print(table)
    console.print(f"decisions agree on {_fmt(report.agreement, True)}: both alert {report.both_alert:,}, "
                  f"champion only {report.champion_only:,}, challenger only {report.challenger_only:,}; "
                  f"score correlation {_fmt(report.pearson)} (Spearman {_fmt(report.spearman)})")


def register(app: typer.Typer) -> None:
    app.command("broker")(broker_command)
    app.command("produce")(produce_command)
    app.command("stream")(stream_command)
    app.command("narrate")(narrate_command)
    app.command("shadow-report")(shadow_report_command)

"""``fraudlens demo``: the whole product on embedded defaults, in one command.

simulate → train + evaluate out of time against two baselines → validate the model
(the model-risk report) → promote it through the promotion gate → start the embedded
broker → warm the online feature state from history → stream the out-of-time window
through the real consumer (scores, alert cards, dead letters) → narrate the top
alerts with the local language model → summary → serve the investigator desk.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from fraudlens.commands._common import stderr_console, user_errors

#: Days at the start of the simulated data that only build feature history (widest card window).
HISTORY_WARMUP_DAYS = 30
#: Fewer training days leave slices without frauds to fit, stop early on and calibrate with.
MIN_TRAIN_DAYS = 7


def demo(
    cards: Annotated[int, typer.Option("--cards", min=50, help="Simulated cards.")] = 1500,
    days: Annotated[int, typer.Option("--days", min=40, help="Simulated days; the last --test-days are out of time.")] = 120,
    test_days: Annotated[int, typer.Option("--test-days", min=7, help="Out-of-time days, streamed through the broker.")] = 30,
    seed: Annotated[int, typer.Option("--seed", help="Simulation seed.")] = 7,
    narratives: Annotated[int, typer.Option("--narratives", min=0, help="Top alerts narrated by the language model.")] = 3,
    validate: Annotated[
        bool, typer.Option("--validate/--no-validate", help="Write the validation report and promote through the gate.")
    ] = True,
    stream: Annotated[bool, typer.Option("--stream/--no-stream", help="Run the streaming part.")] = True,
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Finish by serving the API and investigator pages (Ctrl-C stops).")
    ] = True,
) -> None:
    """Simulate, train, evaluate, stream and explain: the whole pipeline on embedded defaults."""
    from fraudlens.cli import get_settings

    settings = get_settings()
    console = stderr_console()
    # The demo narrates each step itself; the libraries' and the consumer's INFO lines would bury it.
    for name in ("kafka", "streaming", "explain", "detection", "features"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # In one process the consumer's scoring holds the GIL long enough for kafka-python's
    # I/O loop to warn that it was blocked; harmless here (the stream command runs alone).
    logging.getLogger("kafka.net.selector").setLevel(logging.ERROR)
    work = settings.work_dir / "demo"
    work.mkdir(parents=True, exist_ok=True)
    first_day = date(2026, 1, 1)
    test_start = first_day + timedelta(days=days - test_days)
    test_end = first_day + timedelta(days=days - 1)
    train_days = days - test_days - HISTORY_WARMUP_DAYS
    if train_days < MIN_TRAIN_DAYS:
        raise typer.BadParameter(f"{days} days leave {train_days} training days after {HISTORY_WARMUP_DAYS} days of "
                                 f"feature history and {test_days} out-of-time days; the demo needs at least "
                                 f"{MIN_TRAIN_DAYS}: raise --days or lower --test-days", param_hint="--days")
    # A fresh store per demo run; the registry (settings.model.registry_dir) keeps its history.
    (work / "fraudlens.db").unlink(missing_ok=True)
    store_url = f"sqlite:///{(work / 'fraudlens.db').resolve()}"
    with user_errors():
        frame, data = _simulate(console, work, cards, days, seed, first_day)
        bundle, report = _train_and_compare(console, settings, frame, data, first_day, test_start, test_end)
        _print_quality(console, report)
        if validate:
            _validate(console, settings, work, frame, data, bundle, test_start, test_end)
            _promote(console, settings, store_url, bundle)
        if not stream:
            return
        summary = _stream(console, settings, work, frame, bundle, test_start, store_url)
        if narratives:
            _narrate(console, settings, store_url, narratives)
        _print_example(console, settings, store_url, summary)
        if serve:
            _serve(console, settings, store_url, bundle)


def _simulate(console: Any, work: Path, cards: int, days: int, seed: int, first_day: date) -> tuple[Any, Path]:
    from features.io import write_transactions
    from features.simulator import simulate

    data = work / "transactions.parquet"
    with console.status(f"simulating {cards:,} cards over {days} days"):
        frame = simulate(cards, days, seed, start=first_day.isoformat())
        write_transactions(frame, data)
    n_fraud = int(frame["is_fraud"].sum())
    console.print(f"[bold]1. data[/bold]  {len(frame):,} transactions, {n_fraud:,} fraudulent "
                  f"({n_fraud / len(frame):.2%}), five scenarios -> {data}")
    return frame, data


def _train_and_compare(console: Any, settings: Any, frame: Any, data: Path, first_day: date, test_start: date,
                       test_end: date) -> tuple[Any, dict[str, Any]]:
    from detection.baselines import run_comparison
    from detection.bundle import file_sha256
    from detection.registry import ModelRegistry
    from features.pipeline import FeaturePipeline

    train_end = test_start - timedelta(days=1)
    # The simulation starts with no history: until the widest card window (30 days) has filled,
    # features describe a population the model will never score, and the validation report's
    # stability check compares the live month with the training window. Those days only build
    # feature history (as the months before a bank's training window do).
    train_start = first_day + timedelta(days=HISTORY_WARMUP_DAYS)
    with console.status("training the model and both baselines") as status:
        comparison = run_comparison(
            frame, train_start=train_start, train_end=train_end, test_start=test_start, test_end=test_end,
            pipeline=FeaturePipeline.from_settings(settings.features), settings=settings.model,
            data_hash=file_sha256(data), source=str(data), feature_settings=settings.features,
            progress=status.update,
        )
        registry = ModelRegistry(settings.model.registry_dir)
        path = registry.register(comparison.bundle)
    console.print(f"[bold]2. model[/bold] {comparison.bundle.version} trained on {train_start} .. {train_end} "
                  f"(history from {first_day}), registered in {path}")
    (settings.work_dir / "demo" / "baselines.json").write_text(json.dumps(comparison.report, indent=2))
    return comparison.bundle, comparison.report


def _validate(console: Any, settings: Any, work: Path, frame: Any, data: Path, bundle: Any, test_start: date,
              test_end: date) -> None:
    from detection.bundle import file_sha256
    from detection.validation import (
        ValidationOptions,
        copy_to_registry,
        run_validation,
        write_report,
    )

    out = work / "validation"
    with console.status("validating the model") as status:
        result = run_validation(frame, bundle, test_start, test_end, data_path=data.resolve(),
                                data_sha256=file_sha256(data), options=ValidationOptions(), progress=status.update)
        write_report(result, out)
        copy_to_registry(out, settings.model.registry_dir, bundle.version)
    r = result.report
    ap, checks = r["performance"]["average_precision"], r["checks"]

    def word(value: bool | None) -> str:
        return "not run" if value is None else "pass" if value else "FAIL"

    console.print(f"[bold]3. validation[/bold] AP {ap['value']:.3f} (95% CI {ap['ci_low']:.3f}-{ap['ci_high']:.3f}); "
                  f"calibration {word(checks['calibration'])}, stability {word(checks['stability'])}, "
                  f"reproducible {word(checks['reproducible'])}; {len(r['segments']['flagged'])} segment(s) flagged "
                  f"-> {out / 'report.html'}")


def _promote(console: Any, settings: Any, store_url: str, bundle: Any) -> None:
    from detection.registry import ModelRegistry, RegistryError
    from fraudlens.commands.registry import gate_and_promote

    registry = ModelRegistry(settings.model.registry_dir)
    try:
        if registry.champion_version() == bundle.version:
            console.print(f"[bold]4. promotion[/bold] {bundle.version} is already the champion (an earlier demo run)")
            return
    except RegistryError:
        pass
    audited = settings.model_copy(update={"store": settings.store.model_copy(update={"url": store_url})})
    with console.status("running the promotion gate") as status:
        decision = gate_and_promote(audited, bundle.version, actor="demo", progress=status.update)
    verdict = "APPROVED, now the champion" if decision.approved else "REFUSED"
    console.print(f"[bold]4. promotion[/bold] {bundle.version}: {verdict}")
    for reason in decision.reasons:
        console.print(f"          - {reason}")
    if not decision.approved:
        # The demo still streams this model to show the rest of the pipeline, and says so;
        # `fraudlens stream` without --model would keep scoring with the current champion.
        console.print("          [yellow]the demo streams it anyway; in production the champion would stay[/yellow]")


def _print_quality(console: Any, report: dict[str, Any]) -> None:
    from rich.table import Table

    models = report["models"]
    table = Table(title=f"out-of-time window {report['test_window']['start']} .. {report['test_window']['end']}")
    metrics = {"average_precision": "AP", "auc_roc": "AUC", "recall_at_1pct_fpr": "recall@1%FPR",
               "card_precision_at_k": f"card prec@{report['k']}", "precision_at_threshold": "prec@thr",
               "recall_at_threshold": "recall@thr", "fraud_amount_caught_share": "fraud amount caught"}
    table.add_column("model")
    for header in metrics.values():
        table.add_column(header, justify="right")
    for name, result in models.items():
        table.add_row(name, *("n/a" if result.get(m) is None else f"{result[m]:.3f}" for m in metrics))
    console.print(table)


def _stream(console: Any, settings: Any, work: Path, frame: Any, bundle: Any, test_start: date,
            store_url: str) -> Any:
    import pandas as pd

    from features.pipeline import FeaturePipeline
    from features.schema import ValidationLimits, iter_transactions
    from features.state import MemoryStateStore
    from streaming.alerts import ExplainedCards
    from streaming.broker import EmbeddedBroker
    from streaming.replay import replay
    from streaming.scoring import ModelScorer
    from streaming.service import serve

    store_settings = settings.store.model_copy(update={"url": store_url})
    cutoff = pd.Timestamp(test_start, tz="UTC")
    ordered = frame.sort_values("timestamp", kind="stable")
    history, live = ordered[ordered["timestamp"] < cutoff], ordered[ordered["timestamp"] >= cutoff]

    with console.status(f"warming online feature state from {len(history):,} historical transactions"):
        # A new scoring process starts from the card/merchant state of all earlier
        # history, exactly as training saw it; otherwise every card looks brand new.
        pipeline = FeaturePipeline.from_settings(bundle.feature_settings)
        online = pipeline.online(MemoryStateStore())
        online.replay(history)
        scorer = ModelScorer(bundle, online, ExplainedCards.from_bundle(bundle, settings.narrative))
        # Labels that become known after the last historical transaction (chargebacks of the
        # last weeks, then those of the live month) reach the consumer on the labels topic.
        pending = _pending_labels(pipeline, ordered, history["timestamp"].max())

    topics = [settings.kafka.transactions_topic, settings.kafka.scores_topic, settings.kafka.alerts_topic,
              settings.kafka.dlq_topic, settings.kafka.labels_topic]
    broker_settings = demo_broker_settings(settings.broker)
    with EmbeddedBroker(broker_settings, topics=topics, log_path=work / "broker.log") as broker:
        kafka = settings.kafka.model_copy(update={"bootstrap": broker.bootstrap, "session_timeout_ms": 6000,
                                                  "heartbeat_interval_ms": 1000, "consume_labels": True})
        # Labels first: the consumer reads the whole labels topic before it scores; each label
        # only counts in the features from the time it became known, as in training.
        labels_sent = replay(pending, kafka.model_copy(update={"transactions_topic": kafka.labels_topic}), labels=True)
        console.print(f"[bold]5. stream[/bold] broker at {broker.bootstrap}; {labels_sent.sent:,} labels on "
                      f"{kafka.labels_topic}; replaying {len(live):,} out-of-time transactions through the consumer")
        result: dict[str, Any] = {}

        def consume() -> None:
            result["summary"] = serve(kafka, store_settings, scorer, install_signals=False, idle_exit_s=5.0,
                                      limits=ValidationLimits.from_settings(settings.features))

        consumer = threading.Thread(target=consume, name="demo-consumer")
        consumer.start()
        with console.status("producing"):
            sent = replay(iter_transactions(live), kafka)
        with console.status("waiting for the consumer to drain the topic"):
            consumer.join()
    summary = result["summary"]
    console.print(f"          sent {sent.sent:,} ({sent.rate:,.0f}/s); consumed {summary.consumed:,}, scored "
                  f"{summary.scored:,}, alerts {summary.new_alerts:,}, dead-lettered {summary.dead_lettered:,}; "
                  f"{summary.throughput:,.0f} tx/s while records flowed")
    return summary


def demo_broker_settings(broker: Any) -> Any:
    """The demo's broker: on the port the user set (FRAUDLENS_BROKER__PORT, config file), else on a free one,
    so that a demo never fails on a busy 9092 (a `fraudlens broker` already running, a local Kafka)."""
    from streaming.broker import free_port

    if "port" in broker.model_fields_set:
        return broker
    return broker.model_copy(update={"port": free_port(broker.host)})


def _pending_labels(pipeline: Any, frame: Any, warmed_until: Any) -> list[Any]:
    """Labelled transactions whose label becomes known after ``warmed_until``, with that moment
    as an explicit ``label_timestamp`` (the feed then needs no label-delay assumption)."""
    import dataclasses

    import pandas as pd

    from features.schema import iter_transactions

    labels = pipeline.label_frame(frame)
    cutoff_ms = int(pd.Timestamp(warmed_until).value // 1_000_000)
    later = labels[labels["known_at_ms"] > cutoff_ms]
    known_at = dict(zip(later["transaction_id"], later["known_at_ms"].astype(int), strict=True))
    rows = frame[frame["transaction_id"].isin(known_at)]
    return [dataclasses.replace(tx, label_timestamp_ms=known_at[tx.transaction_id]) for tx in iter_transactions(rows)]


def _narrate(console: Any, settings: Any, store_url: str, count: int) -> None:
    from streaming.narration import narrate_pending
    from streaming.store import make_store

    store = make_store(settings.store.model_copy(update={"url": store_url}))
    store.setup()
    try:
        with console.status(f"narrating the top {count} alerts with the {settings.narrative.backend} backend"):
            outcome = narrate_pending(store, settings.narrative, limit=count)
    finally:
        store.close()
    console.print(f"[bold]6. narratives[/bold] {outcome.narrated} written by {settings.narrative.backend}: "
                  f"{outcome.passed} passed every check, {outcome.fallbacks} fell back to the template")


def _print_example(console: Any, settings: Any, store_url: str, summary: Any) -> None:
    from streaming.store import make_store

    store = make_store(settings.store.model_copy(update={"url": store_url}))
    store.setup()
    try:
        alerts = store.list_alerts(limit=1000)
    finally:
        store.close()
    if not alerts:
        console.print("no alerts were raised")
        return
    best = max(alerts, key=lambda a: a["score"])
    console.print("[bold]7. example alert card[/bold] (highest score)")
    typer.echo(json.dumps(best["card"], indent=2, default=str))
    console.print(f"store: {store_url}  ({summary.scored:,} scores, {len(alerts):,} alerts)")


def _serve(console: Any, settings: Any, store_url: str, bundle: Any) -> None:
    import uvicorn

    from api import create_app
    from api.db import setup_tables
    from api.keys import KeyStore, Role
    from streaming.store import make_store

    served = settings.model_copy(update={"store": settings.store.model_copy(update={"url": store_url})})
    api = settings.api.model_copy(update={"model_path": bundle.path})
    store = make_store(served.store)
    store.setup()
    try:
        setup_tables(store.engine)
        key, _principal = KeyStore(store.engine).create(Role.INVESTIGATOR, name="demo investigator")
    finally:
        store.close()
    console.print(f"[bold]8. investigator desk[/bold] http://{api.host}:{api.port}/ui/alerts  "
                  f"(log in with the demo investigator key below; Ctrl-C stops)")
    typer.echo(f"demo investigator key: {key}", err=True)
    uvicorn.run(create_app(served, api), host=api.host, port=api.port, log_level="warning", access_log=False)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)

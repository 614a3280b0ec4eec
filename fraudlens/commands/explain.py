"""Explanation commands: the alert card of one transaction, the narrative evaluation, the narrative check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fraudlens.commands._common import load_mapping, stderr_console, user_errors

if TYPE_CHECKING:
    from explain.settings import NarrativeSettings

BACKEND_HELP = "Narrative backend: transformers (local model), openai (compatible server), template (no model)."


def _narrative_settings(backend: str | None, audit_log: Path | None) -> NarrativeSettings:
    from fraudlens.cli import get_settings

    settings = get_settings().narrative
    update: dict[str, Any] = {}
    if backend is not None:
        if backend not in ("transformers", "openai", "template"):
            raise ValueError(f"--backend must be transformers, openai or template, got {backend!r}")
        update["backend"] = backend
    if audit_log is not None:
        update["audit_log"] = audit_log
    return settings.model_copy(update=update) if update else settings


def _read(data: Path, columns: Path | None) -> Any:
    from features.io import read_transactions

    return read_transactions(data, columns=load_mapping(columns)).frame


def explain(
    model: Annotated[Path, typer.Option("--model", help="Model bundle directory (DIR/<version>/).")],
    data: Annotated[Path, typer.Option("--data", help="Transaction file holding the transaction and its history.")],
    transaction_id: Annotated[str, typer.Option("--transaction-id", help="Transaction to explain.")],
    columns: Annotated[Path | None, typer.Option("--columns", help="YAML mapping canonical name -> file column.")] = None,
    backend: Annotated[str | None, typer.Option("--backend", help=BACKEND_HELP)] = None,
    audit_log: Annotated[Path | None, typer.Option("--audit-log", help="Audit trail file (default from settings).")] = None,
) -> None:
    """Print the alert card (JSON) of one transaction: score, reasons, what-if, narrative and provenance."""
    import pandas as pd

    from detection.bundle import ModelBundle
    from explain.evaluate import load_scored
    from explain.explainer import AlertExplainer
    from explain.narrator import Narrator

    console = stderr_console()
    with user_errors():
        settings = _narrative_settings(backend, audit_log)
        bundle = ModelBundle.from_path(model)
        frame = _read(data, columns)
        match = frame.loc[frame["transaction_id"] == transaction_id, "timestamp"]
        if match.empty:
            raise ValueError(f"transaction id {transaction_id!r} is not in {data}")
        with console.status("computing features and scores"):
            scored = load_scored(frame, bundle, until=pd.Timestamp(match.iloc[0]))
        row = scored.row_of(transaction_id)
        explainer = AlertExplainer.from_settings(bundle, settings, family_of=scored.family_of).setup()
        card = explainer.cards(scored.transactions([row]), scored.X[[row]], scores=scored.scores[[row]])[0]
        if settings.backend != "template":
            with console.status(f"writing the narrative with the {settings.backend} backend"):
                narrator = Narrator.from_settings(settings).setup()
                try:
                    card = narrator.narrate([card])[0]
                finally:
                    narrator.close()
    typer.echo(card.model_dump_json(indent=2))


def explain_eval(
    model: Annotated[Path, typer.Option("--model", help="Model bundle directory (DIR/<version>/).")],
    data: Annotated[Path, typer.Option("--data", help="Transaction file to draw alerts from.")],
    n: Annotated[int, typer.Option("--n", min=1, help="Number of alerts to narrate and score.")] = 50,
    backend: Annotated[str | None, typer.Option("--backend", help=BACKEND_HELP)] = None,
    columns: Annotated[Path | None, typer.Option("--columns", help="YAML mapping canonical name -> file column.")] = None,
    audit_log: Annotated[Path | None, typer.Option("--audit-log", help="Audit trail file (default from settings).")] = None,
) -> None:
    """Narrate N alerts and print faithfulness, check pass rates, fallback rate and latency as JSON."""
    from rich.progress import Progress

    from detection.bundle import ModelBundle
    from explain.evaluate import load_scored, narrate_in_batches, pick_alerts, summarize, timed
    from explain.explainer import AlertExplainer
    from explain.narrator import Narrator

    console = stderr_console()
    with user_errors():
        settings = _narrative_settings(backend, audit_log)
        bundle = ModelBundle.from_path(model)
        frame = _read(data, columns)
        with console.status("computing features and scores"):
            scored = load_scored(frame, bundle)
        rows = pick_alerts(scored.scores, float(bundle.threshold.threshold), n)
        explainer = AlertExplainer.from_settings(bundle, settings, family_of=scored.family_of).setup()
        cards = explainer.cards(scored.transactions(rows), scored.X[rows], scores=scored.scores[rows])
        with console.status(f"loading the {settings.backend} backend"):
            narrator = Narrator.from_settings(settings).setup()
        try:
            with Progress(console=console, transient=True) as progress:
                task = progress.add_task(f"narrating {len(cards)} alerts", total=len(cards))
                results, wall = timed(lambda: narrate_in_batches(
                    narrator, cards, settings.batch_size, lambda done: progress.update(task, completed=done)))
        finally:
            narrator.close()
    report = {
        "backend": narrator.backend.name,
        "model_id": narrator.backend.model_id,
        "model_version": bundle.version,
        "n_alerts_in_data": int((scored.scores >= float(bundle.threshold.threshold)).sum()),
        "top_k": settings.eval_top_k,
        **summarize(results, wall_s=wall),
        "audit_log": str(settings.audit_log),
    }
    typer.echo(json.dumps(report, indent=2))


def _read_card(path: Path) -> Any:
    from pydantic import ValidationError

    from explain.card import AlertCard

    try:
        return AlertCard.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the document"
        raise ValueError(f"--card {path} is not an alert card: {where}: {first['msg']} "
                         f"({exc.error_count()} problem(s))") from None


def _read_text(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"--text-file {path} is not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    if not text.strip():
        raise ValueError(f"--text-file {path} is empty: give the narrative to check")
    return text.strip()


def narrative_check(
    card: Annotated[Path, typer.Option("--card", help="Alert card JSON (as `fraudlens explain` prints it).")],
    text_file: Annotated[Path, typer.Option("--text-file", help="UTF-8 file holding the narrative to check.")],
) -> None:
    """Check a narrative against an alert card with the closed-world verifier; print the verdict as JSON.

    Exit 0 when the narrative passes every check, 1 when it is refused, 2 on bad input.
    """
    from explain.checks import VERIFIER_VERSION, GroundingChecker

    with user_errors():
        alert = _read_card(card)
        text = _read_text(text_file)
        settings = _narrative_settings(None, None)
        checker = GroundingChecker(min_words=settings.min_words, max_words=settings.max_words)
        report = checker.check(text, alert.facts(narrative_top_k=settings.eval_top_k))
    typer.echo(json.dumps({
        "passed": report.passed,
        "verifier": VERIFIER_VERSION,
        "failed": report.failures(),
        "checks": report.as_dict(),
    }, indent=2, ensure_ascii=False))
    if not report.passed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("explain")(explain)
    app.command("explain-eval")(explain_eval)
    app.command("narrative-check")(narrative_check)

"""Model commands: ``fraudlens train | score | evaluate | baselines``.

Heavy libraries load inside the command bodies so ``fraudlens --help`` stays
instant. Every failure a user can fix (missing file, bad column mapping, invalid
rows, unusable window, damaged bundle) prints one ``error: ...`` line on stderr
and exits with code 2; ``--verbose`` adds the traceback to the log.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fraudlens.commands._common import user_errors

if TYPE_CHECKING:
    import pandas as pd

    from fraudlens.settings import FeatureSettings, ModelSettings

log = logging.getLogger(__name__)

DataOpt = Annotated[Path, typer.Option("--data", help="Transactions file (.parquet, .csv, .jsonl).")]
ColumnsOpt = Annotated[
    Path | None, typer.Option("--columns", help="YAML column mapping 'canonical_name: source_column'.")
]
ModelOpt = Annotated[Path, typer.Option("--model", help="Model bundle directory DIR/<version>/.")]


LabelsOpt = Annotated[
    Path | None,
    typer.Option("--labels", help="Labels to overlay (transaction_id,is_fraud[,label_timestamp]), e.g. from "
                                  "'fraudlens labels export': investigator decisions become training labels."),
]


def _read(data: Path, columns: Path | None, labels: Path | None = None) -> pd.DataFrame:
    from features.io import ColumnMapping, apply_labels, read_transactions
    from fraudlens.commands.data import validation_limits

    mapping = ColumnMapping.from_yaml(columns) if columns is not None else None
    limits = validation_limits()
    frame = read_transactions(data, columns=mapping, limits=limits).frame
    if labels is None:
        return frame
    merged = apply_labels(frame, labels, limits=limits)
    log.info("applied %d labels from %s (%d changed a row's label)", merged.n_labels, labels, merged.n_changed)
    return merged.frame


def _data_hash(data: Path, labels: Path | None) -> str:
    """The manifest's data hash: the file's, or both files' when labels are overlaid (versions differ)."""
    import hashlib

    from detection.bundle import file_sha256

    if labels is None:
        return file_sha256(data)
    return hashlib.sha256(f"{file_sha256(data)}+labels:{file_sha256(labels)}".encode()).hexdigest()


def _source(data: Path, labels: Path | None) -> str:
    return str(data) if labels is None else f"{data} + labels {labels}"


def _mapping(columns: Path | None) -> dict[str, str] | None:
    from features.io import ColumnMapping

    return dict(ColumnMapping.from_yaml(columns).source_for) if columns is not None else None


def _window(start: str, end: str, *, names: tuple[str, str]) -> tuple[Any, Any]:
    from detection.frames import parse_day

    first, last = parse_day(start, name=names[0]), parse_day(end, name=names[1])
    if last < first:
        raise ValueError(f"{names[1]} {last} is before {names[0]} {first}")
    return first, last


def _settings(seed: int | None, label_delay_days: float | None) -> tuple[ModelSettings, FeatureSettings]:
    from fraudlens.cli import get_settings
    from fraudlens.settings import FeatureSettings, ModelSettings

    settings = get_settings()
    model = settings.model
    features = settings.features
    if seed is not None:
        model = ModelSettings.model_validate({**model.model_dump(), "seed": seed})
    if label_delay_days is not None:
        features = FeatureSettings.model_validate({**features.model_dump(), "label_delay_days": label_delay_days})
    return model, features


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def train_command(
    data: DataOpt,
    train_start: Annotated[str, typer.Option("--train-start", help="First training day, YYYY-MM-DD (UTC).")],
    train_end: Annotated[str, typer.Option("--train-end", help="Last training day, YYYY-MM-DD (inclusive).")],
    out: Annotated[Path, typer.Option("--out", help="Directory that receives the bundle DIR/<version>/.")],
    columns: ColumnsOpt = None,
    label_delay_days: Annotated[
        float | None, typer.Option("--label-delay-days", help="Override features.label_delay_days.")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Override model.seed.")] = None,
    labels: LabelsOpt = None,
) -> None:
    """Train a model bundle on a time window; prints the bundle directory last on stdout."""
    console = _console()
    with user_errors():
        start, end = _window(train_start, train_end, names=("--train-start", "--train-end"))
        model_settings, feature_settings = _settings(seed, label_delay_days)
        with console.status("reading data") as status:
            from detection.training import train
            from features.pipeline import FeaturePipeline

            frame = _read(data, columns, labels)

            def progress(message: str) -> None:
                status.update(message)
                console.print(f"[dim]· {message}[/dim]")

            bundle = train(
                frame, train_start=start, train_end=end, pipeline=FeaturePipeline.from_settings(feature_settings),
                settings=model_settings, data_hash=_data_hash(data, labels), source=_source(data, labels), columns=_mapping(columns),
                feature_settings=feature_settings, progress=progress,
            )
            status.update("writing the bundle")
            path = bundle.save(out)
        cal = bundle.metrics["calibration"]
        console.print(
            f"model {bundle.version}: {bundle.manifest['n_trees']} trees, "
            f"{bundle.manifest['data']['n_train_rows']:,} training rows "
            f"({bundle.manifest['data']['n_train_frauds']:,} frauds); calibration slice: "
            f"AP {_fmt(cal['average_precision'])}, AUC {_fmt(cal['auc_roc'])}, "
            f"threshold {bundle.threshold.threshold:.4g} alerts {bundle.threshold.achieved['alert_rate']:.3%}"
        )
    typer.echo(str(path))


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _load_and_score(model: Path, data: Path, columns: Path | None, start: str, end: str) -> tuple[Any, pd.DataFrame]:
    from detection.bundle import ModelBundle
    from detection.scoring import score_window
    from features.pipeline import FeaturePipeline

    first, last = _window(start, end, names=("--start", "--end"))
    bundle = ModelBundle.from_path(model)
    # The bundle's own feature settings, not today's: features must be computed as in training.
    pipeline = FeaturePipeline.from_settings(bundle.feature_settings)
    frame = _read(data, columns)
    n_threads = _settings(None, None)[0].n_threads
    return bundle, score_window(frame, bundle, pipeline, first, last, n_threads=n_threads)


def score_command(
    model: ModelOpt,
    data: DataOpt,
    start: Annotated[str, typer.Option("--start", help="First day to score, YYYY-MM-DD (UTC).")],
    end: Annotated[str, typer.Option("--end", help="Last day to score, YYYY-MM-DD (inclusive).")],
    out: Annotated[Path, typer.Option("--out", help="CSV to write: transaction_id,score.")],
    columns: ColumnsOpt = None,
) -> None:
    """Score every transaction in a date window (features from all earlier history)."""
    console = _console()
    with user_errors():
        with console.status("scoring"):
            bundle, scores = _load_and_score(model, data, columns, start, end)
        out.parent.mkdir(parents=True, exist_ok=True)
        scores[["transaction_id", "score"]].to_csv(out, index=False)
        console.print(f"scored {len(scores):,} transactions with {bundle.version}; "
                      f"{int(scores['alert'].sum()):,} above the threshold -> {out}")


def evaluate_command(
    model: ModelOpt,
    data: DataOpt,
    start: Annotated[str, typer.Option("--start", help="First day, YYYY-MM-DD (UTC).")],
    end: Annotated[str, typer.Option("--end", help="Last day, YYYY-MM-DD (inclusive).")],
    columns: ColumnsOpt = None,
    k: Annotated[int, typer.Option("--k", min=1, help="Cards investigated per day for card precision@k.")] = 100,
) -> None:
    """Metrics of a model on a labelled date window, as JSON on stdout."""
    with user_errors():
        from detection.metrics import evaluate

        with _console().status("scoring"):
            bundle, scores = _load_and_score(model, data, columns, start, end)
        result = evaluate(scores, bundle.threshold.threshold, k=k)
    typer.echo(json.dumps(result, indent=2))


def baselines_command(
    data: DataOpt,
    train_start: Annotated[str, typer.Option("--train-start", help="First training day, YYYY-MM-DD.")],
    train_end: Annotated[str, typer.Option("--train-end", help="Last training day (inclusive).")],
    test_start: Annotated[str, typer.Option("--test-start", help="First out-of-time test day.")],
    test_end: Annotated[str, typer.Option("--test-end", help="Last test day (inclusive).")],
    columns: ColumnsOpt = None,
    label_delay_days: Annotated[
        float | None, typer.Option("--label-delay-days", help="Override features.label_delay_days.")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Override model.seed.")] = None,
    k: Annotated[int, typer.Option("--k", min=1, help="Cards investigated per day for card precision@k.")] = 100,
) -> None:
    """Engineered model vs logistic regression vs raw-field XGBoost, out of time, as JSON."""
    console = _console()
    with user_errors():
        first, last = _window(train_start, train_end, names=("--train-start", "--train-end"))
        test_first, test_last = _window(test_start, test_end, names=("--test-start", "--test-end"))
        model_settings, feature_settings = _settings(seed, label_delay_days)
        with console.status("reading data") as status:
            from detection.baselines import run_comparison
            from detection.bundle import file_sha256
            from features.pipeline import FeaturePipeline

            frame = _read(data, columns)
            report = run_comparison(
                frame, train_start=first, train_end=last, test_start=test_first, test_end=test_last,
                pipeline=FeaturePipeline.from_settings(feature_settings), settings=model_settings,
                data_hash=file_sha256(data), source=str(data), feature_settings=feature_settings, k=k,
                progress=status.update,
            ).report
    typer.echo(json.dumps(report, indent=2))


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
    app.command("score")(score_command)
    app.command("evaluate")(evaluate_command)
    app.command("baselines")(baselines_command)

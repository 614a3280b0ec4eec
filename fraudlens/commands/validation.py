"""``fraudlens validate``: the model-risk validation report of one model version.

Writes ``report.json`` + a self-contained ``report.html`` to ``--out`` and, when the
version is registered in ``model.registry_dir``, copies both to
``<registry_dir>/validation/<version>/`` where the promotion gate reads them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fraudlens.commands._common import load_mapping, stderr_console, user_errors

if TYPE_CHECKING:
    from detection.bundle import ModelBundle


def _resolve_model(model: str, registry_dir: Path) -> ModelBundle:
    """A bundle directory, or a version id registered in ``registry_dir``."""
    from detection.bundle import ModelBundle
    from detection.registry import ModelRegistry

    path = Path(model)
    if path.is_dir():
        return ModelBundle.from_path(path)
    registry = ModelRegistry(registry_dir)
    if model in registry.list_versions():
        return registry.load(model)
    known = registry.list_versions()
    raise ValueError(f"--model {model!r} is neither a bundle directory nor a version in registry {registry_dir} "
                     f"(registered: {', '.join(known) if known else 'none'}); pass DIR/<version>/ or a registered id")


def validate(
    model: Annotated[str, typer.Option("--model", help="Bundle directory DIR/<version>/ or a registered version id.")],
    data: Annotated[Path, typer.Option("--data", help="Labelled transactions (.parquet, .csv, .jsonl) covering the window "
                                                      "and, for challengers and reproduction, the training window.")],
    start: Annotated[str, typer.Option("--start", help="First day of the out-of-time window, YYYY-MM-DD (UTC).")],
    end: Annotated[str, typer.Option("--end", help="Last day of the window (inclusive).")],
    out: Annotated[Path, typer.Option("--out", help="Directory that receives report.json and report.html.")],
    columns: Annotated[Path | None, typer.Option("--columns", help="YAML mapping canonical name -> file column.")] = None,
    resamples: Annotated[int, typer.Option("--resamples", min=10, help="Day-bootstrap resamples for the 95% intervals.")] = 500,
    reproduce: Annotated[bool, typer.Option("--reproduce/--no-reproduce",
                                            help="Retrain from the manifest and compare the bundle byte for byte.")] = True,
    train_data: Annotated[Path | None, typer.Option("--train-data", help="Data file to retrain from when it is not "
                                                                         "--data (its SHA-256 must match the manifest).")] = None,
    ece_limit: Annotated[float, typer.Option("--ece-limit", min=0.0, help="Largest expected calibration error that passes.")] = 0.02,
    k: Annotated[int, typer.Option("--k", min=1, help="Cards investigated per day for card precision@k.")] = 100,
    min_segment_frauds: Annotated[int, typer.Option("--min-segment-frauds", min=1,
                                                    help="Frauds a segment needs before it can be flagged.")] = 20,
    alerts: Annotated[int, typer.Option("--alerts", min=0, help="Alerts narrated in the faithfulness audit.")] = 20,
) -> None:
    """Validate a model version out of time; prints the report directory last on stdout."""
    from fraudlens.cli import get_settings

    console = stderr_console()
    with user_errors():
        settings = get_settings()
        if not data.is_file():
            raise FileNotFoundError(f"--data {data} does not exist")
        with console.status("loading the model and the data") as status:
            from detection.bundle import file_sha256
            from detection.validation import (
                ValidationOptions,
                copy_to_registry,
                run_validation,
                write_report,
            )
            from features.io import read_transactions

            bundle = _resolve_model(model, settings.model.registry_dir)
            mapping = load_mapping(columns)
            frame = read_transactions(data, columns=mapping).frame

            def progress(message: str) -> None:
                status.update(message)
                console.print(f"[dim]· {message}[/dim]")

            options = ValidationOptions(k=k, n_resamples=resamples, ece_limit=ece_limit, reproduce=reproduce,
                                        train_data=train_data, min_segment_frauds=min_segment_frauds, n_alerts=alerts)
            # Absolute: the promotion gate re-reads this file from wherever it runs.
            result = run_validation(frame, bundle, start, end, data_path=data.resolve(), data_sha256=file_sha256(data),
                                    columns=dict(mapping.source_for) if mapping else None, options=options,
                                    progress=progress)
            write_report(result, out)
            copied = copy_to_registry(out, settings.model.registry_dir, bundle.version)
        r = result.report
        perf, checks = r["performance"], r["checks"]
        console.print(
            f"{bundle.version} on {r['window']['start']}..{r['window']['end']}: AP {perf['average_precision']['value']:.3f} "
            f"[{perf['average_precision']['ci_low']:.3f}, {perf['average_precision']['ci_high']:.3f}], "
            f"AUC {perf['auc_roc']['value']:.3f}; calibration {_word(checks['calibration'])}, stability "
            f"{_word(checks['stability'])}, reproducible {_word(checks['reproducible'])}; "
            f"{len(r['segments']['flagged'])} segment(s) flagged"
        )
        if copied is not None:
            console.print(f"copied to the registry: {copied}")
    typer.echo(str(out))


def _word(value: bool | None) -> str:
    return "not run" if value is None else "PASS" if value else "FAIL"


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)

"""Data commands: simulate card traffic, check a file against the transaction contract."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fraudlens.commands._common import load_mapping, stderr_console, user_errors

if TYPE_CHECKING:
    from features.schema import ValidationLimits


def validation_limits() -> ValidationLimits:
    """The transaction contract's limits from this invocation's settings (``features.*``)."""
    from features.schema import ValidationLimits
    from fraudlens.cli import get_settings

    return ValidationLimits.from_settings(get_settings().features)


def simulate(
    out: Annotated[Path, typer.Option("--out", help="Output file (.parquet, .csv or .jsonl).")],
    cards: Annotated[int, typer.Option("--cards", min=1, help="Number of cards.")] = 2000,
    days: Annotated[int, typer.Option("--days", min=1, help="Number of days of traffic.")] = 120,
    seed: Annotated[int, typer.Option("--seed", help="Random seed; same seed, same data.")] = 7,
    start: Annotated[str, typer.Option("--start", help="First day, YYYY-MM-DD.")] = "2026-01-01",
) -> None:
    """Simulate realistic labelled card traffic with five fraud scenarios."""
    from features.io import write_transactions
    from features.simulator import simulate as run_simulation

    console = stderr_console()
    with user_errors(), console.status(f"simulating {cards} cards over {days} days"):
        frame = run_simulation(cards, days, seed, start=start)
        write_transactions(frame, out)
    n_fraud = int(frame["is_fraud"].sum())
    console.print(f"{len(frame):,} transactions, {n_fraud:,} fraudulent ({n_fraud / max(len(frame), 1):.2%}) -> {out}")
    typer.echo(str(out))


def check_data(
    data: Annotated[Path, typer.Option("--data", help="Transaction file to check.")],
    columns: Annotated[Path | None, typer.Option("--columns", help="YAML mapping canonical name -> file column.")] = None,
    rejects: Annotated[Path | None, typer.Option("--rejects", help="Where bad rows go (default FILE.rejects.jsonl).")] = None,
) -> None:
    """Validate a file against the transaction contract; bad rows go to a rejects file, counted."""
    from features.io import read_transactions

    with user_errors():
        result = read_transactions(data, columns=load_mapping(columns), on_error="skip", rejects_path=rejects,
                                   limits=validation_limits())
    typer.echo(f"{result.n_read} rows read, {len(result.frame)} valid, {result.n_rejected} rejected")
    if result.n_rejected:
        counts = result.rejects.frame.groupby(["field", "reason"]).size().sort_values(ascending=False)
        for (field, reason), n in counts.items():
            typer.echo(f"  {n:>8}  {field}: {reason}")
        typer.echo(f"rejected rows: {result.rejects_path}")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)
    app.command("check-data")(check_data)

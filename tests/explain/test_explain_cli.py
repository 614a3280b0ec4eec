"""``fraudlens explain`` and ``fraudlens explain-eval`` through the real CLI app, on a real bundle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from explain.card import AlertCard
from fraudlens.cli import app

ENV = {"FRAUDLENS_CONFIG": ""}


def invoke(*args: object) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args], env=ENV)


def _ok(result: Any) -> str:
    assert result.exit_code == 0, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return str(result.stdout)


@pytest.fixture(scope="module")
def alert_id(real_bundle: Any, sim_file: Path) -> str:
    from explain.evaluate import load_scored
    from features.io import read_transactions

    scored = load_scored(read_transactions(sim_file).frame, real_bundle)
    return str(scored.frame["transaction_id"].iloc[int(np.argmax(scored.scores))])


def test_explain_prints_the_card_of_one_transaction(real_bundle, sim_file, alert_id, tmp_path) -> None:
    out = _ok(invoke("explain", "--model", real_bundle.path, "--data", sim_file, "--transaction-id", alert_id,
                     "--backend", "template", "--audit-log", tmp_path / "audit.jsonl"))
    card = AlertCard.model_validate_json(out)
    assert card.transaction.transaction_id == alert_id and card.model_version == real_bundle.version
    assert card.decision == "alert" and card.threshold == pytest.approx(real_bundle.threshold.threshold)
    assert card.reasons and card.narrative.status == "template" and card.transaction.card.startswith("****")
    assert card.provenance.margin == pytest.approx(card.provenance.base_value + sum(card.family_contributions.values()))


def test_explain_reads_through_a_column_mapping(real_bundle, sim_file, alert_id, tmp_path) -> None:
    import pandas as pd

    frame = pd.read_parquet(sim_file).rename(columns={"transaction_id": "txn", "amount": "amt_eur"})
    renamed = tmp_path / "bank.parquet"
    frame.to_parquet(renamed)
    mapping = tmp_path / "map.yaml"
    mapping.write_text("transaction_id: txn\namount: amt_eur\n")
    out = _ok(invoke("explain", "--model", real_bundle.path, "--data", renamed, "--columns", mapping,
                     "--transaction-id", alert_id, "--backend", "template"))
    assert json.loads(out)["transaction"]["transaction_id"] == alert_id


def test_unknown_transaction_is_one_clear_line(real_bundle, sim_file) -> None:
    result = invoke("explain", "--model", real_bundle.path, "--data", sim_file, "--transaction-id", "nope",
                    "--backend", "template")
    assert result.exit_code == 2 and "nope" in result.stderr and "Traceback" not in result.stderr


def test_explain_eval_prints_metrics(real_bundle, sim_file, tmp_path) -> None:
    audit = tmp_path / "audit.jsonl"
    out = _ok(invoke("explain-eval", "--model", real_bundle.path, "--data", sim_file, "--n", 5,
                     "--backend", "template", "--audit-log", audit))
    report = json.loads(out)
    assert report["n"] == 5 and report["backend"] == "template"
    assert report["mean_accuracy"] == 4.0 and report["mean_completeness"] == 4.0
    assert report["pass_rate"] == 1.0 and report["fallback_rate"] == 0.0
    assert set(report["latency_ms"]) >= {"p50", "p95"} and report["narratives_per_s"] > 0
    assert len(audit.read_text().splitlines()) == 5


DATA = Path(__file__).resolve().parent / "data"
CARD = DATA / "cards" / "card_00.json"
HONEST = ("Suspected fraud: an online payment of 682.21 EUR scored 0.94 against an alert threshold of 0.50. "
          "The amount is 12.2× the card's 7-day average of 56.03 EUR, which raises risk.")


def test_narrative_check_passes_an_honest_narrative(tmp_path) -> None:
    text = tmp_path / "n.txt"
    text.write_text(HONEST, encoding="utf-8")
    report = json.loads(_ok(invoke("narrative-check", "--card", CARD, "--text-file", text)))
    assert report["passed"] is True and report["failed"] == [] and all(report["checks"].values())


def test_narrative_check_refuses_with_the_failed_checks_and_spans(tmp_path) -> None:
    text = tmp_path / "n.txt"
    invention = " It is safe to approve this payment; see https://example.com."
    text.write_text(HONEST + invention, encoding="utf-8")
    result = invoke("narrative-check", "--card", CARD, "--text-file", text)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    failed = {f["check"]: f for f in report["failed"]}
    assert report["passed"] is False and {"verdict", "url"} <= set(failed)
    assert any(span["text"] == "https://example.com" for span in failed["url"]["spans"])
    assert all((HONEST + invention)[s["start"]:s["end"]] == s["text"] for f in failed.values() for s in f["spans"])


@pytest.mark.parametrize("card_text,narrative,message", [
    ("{}", HONEST, "is not an alert card"),
    ("not json", HONEST, "is not an alert card"),
    (None, "   \n", "is empty"),
    (None, None, "No such file"),
])
def test_narrative_check_bad_input_is_one_error_line(tmp_path, card_text, narrative, message) -> None:
    card = CARD
    if card_text is not None:
        card = tmp_path / "card.json"
        card.write_text(card_text)
    text = tmp_path / "n.txt"
    if narrative is not None:
        text.write_text(narrative)
    result = invoke("narrative-check", "--card", card, "--text-file", text)
    assert result.exit_code == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], result.stderr

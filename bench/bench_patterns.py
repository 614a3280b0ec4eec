"""Pattern hypotheses against the simulator's labelled scenarios -> bench/results/patterns.json.

    .venv/bin/python bench/bench_patterns.py                  # 2,000 cards x 120 days, report window
    .venv/bin/python bench/bench_patterns.py --window tune    # the window the rules were tuned on
    .venv/bin/python bench/bench_patterns.py --quick          # 300 cards x 60 days, a smoke test

Simulates traffic (``features.simulator``), trains a bundle on the early window with the
training code (``detection.train_on_features``), scores the later days, builds the alert
cards of every alert (``explain.AlertExplainer``, SHAP and what-ifs included) and compares
each card's pattern hypothesis (``card.plan.pattern.pattern``) with the scenario label the
simulator gave the transaction (``fraud_scenario``; empty for legit traffic).

Windows (days from the start): training 0-69, tuning 70-94 (the rules' thresholds in
``explain/patterns.py`` were chosen looking at this window only), report 95-119 (out of time,
never looked at while tuning). ``--quick`` scales the windows down with the days.

Per pattern: precision = share of the alerts given that hypothesis whose scenario is the
pattern's scenario (impossible travel <-> skimmed_card, out-of-pattern amount <-> high_amount,
none <-> no scenario); recall = share of the alerts of that scenario given the pattern. Both
are reported over all alerts and over the alerts with a scenario label (fraud alerts), the
latter being the target (precision >= 0.8 for every pattern).

Result (bench/results/patterns.json; 2,000 cards x 120 days, 2 threads, about 1 minute):
the rules were tuned on days 70-94 of seed 2026 and are reported on days 95-119 of seed 2027,
data they were never looked at on. 475 alerts, 318 of them with a scenario label.

====================== ============ ========= ====== ====================== ======
pattern                scenario     said      right  precision (fraud/all)  recall
====================== ============ ========= ====== ====================== ======
card testing           card_testing 95        95     1.00 / 0.98            0.71
account takeover       account_tko  25        25     1.00 / 1.00            0.53
impossible travel      skimmed_card 41        40     0.98 / 0.98            0.56
compromised merchant   compromised  27        26     0.96 / 0.25            0.96
out-of-pattern amount  high_amount  35        34     0.97 / 0.58            0.85
none                   (no label)   149 (all) 54     - / 0.36               0.34
====================== ============ ========= ====== ====================== ======

"said"/"right" count fraud alerts; precision is given over fraud alerts and over all alerts (a
false-positive alert at a merchant with a high fraud rate also resembles a compromised merchant,
which is what the hypothesis says). Recall is bounded by what the features see: the first probe of
a card-testing burst, a takeover's later payments (device and country no longer new) and a cloned
card's later payments in the far city carry no trace a rule over this payment's features can read.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from host import describe  # noqa: E402  (bench/ is the script's directory)

from detection import compute_features, train_on_features  # noqa: E402
from detection.training import library_versions, pipeline_settings  # noqa: E402
from explain.explainer import AlertExplainer  # noqa: E402
from explain.patterns import RULES, SCENARIO_OF_PATTERN  # noqa: E402
from features.pipeline import FeaturePipeline  # noqa: E402
from features.schema import iter_transactions  # noqa: E402
from features.simulator import simulate  # noqa: E402
from fraudlens.settings import FeatureSettings, ModelSettings  # noqa: E402

START = date(2026, 1, 1)
RESULTS = ROOT / "bench" / "results" / "patterns.json"
PATTERNS = tuple(SCENARIO_OF_PATTERN)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def windows(days: int) -> dict[str, tuple[int, int]]:
    train_end = round(days * 70 / 120) - 1
    tune_end = round(days * 95 / 120) - 1
    return {"train": (0, train_end), "tune": (train_end + 1, tune_end), "report": (tune_end + 1, days - 1)}


def score_table(predicted: list[str], scenario: list[str]) -> dict[str, Any]:
    """Precision and recall per pattern, over every alert and over the fraud alerts alone."""
    out: dict[str, Any] = {}
    for subset in ("all_alerts", "fraud_alerts"):
        keep = [i for i in range(len(predicted)) if subset == "all_alerts" or scenario[i]]
        rows = {}
        for pattern in PATTERNS:
            if subset == "fraud_alerts" and pattern == "none":
                continue
            wanted = SCENARIO_OF_PATTERN[pattern]
            said = [i for i in keep if predicted[i] == pattern]
            truth = [i for i in keep if scenario[i] == wanted]
            hit = sum(scenario[i] == wanted for i in said)
            rows[pattern] = {
                "scenario": wanted or "(none)", "n_predicted": len(said), "n_scenario": len(truth), "n_correct": hit,
                "precision": round(hit / len(said), 4) if said else None,
                "recall": round(hit / len(truth), 4) if truth else None,
            }
        out[subset] = rows
    out["confusion"] = {f"{p}|{s or '(none)'}": n for (p, s), n in sorted(Counter(zip(predicted, scenario,
                                                                                        strict=True)).items())}
    return out


def run(n_cards: int, days: int, seed: int, window: str, n_threads: int, dump: Path | None = None) -> dict[str, Any]:
    log(f"simulating {n_cards} cards x {days} days (seed {seed})")
    frame = simulate(n_cards=n_cards, days=days, seed=seed, start=str(START))
    pipeline = FeaturePipeline.from_settings(FeatureSettings())
    started = time.perf_counter()
    fm = compute_features(frame, pipeline)
    log(f"{len(frame):,} rows; features in {time.perf_counter() - started:.0f}s; training")
    spans = windows(days)
    day = {name: (START + timedelta(days=a), START + timedelta(days=b)) for name, (a, b) in spans.items()}
    settings = ModelSettings(seed=seed, n_threads=n_threads)
    bundle = train_on_features(
        fm, train_start=day["train"][0], train_end=day["train"][1], families=dict(pipeline.family_of),
        feature_settings=pipeline_settings(pipeline), settings=settings, data_hash=f"simulate:{seed}",
        source="simulated",
    )
    first, last = day[window]
    inside = np.flatnonzero(fm.frame["timestamp"].dt.date.between(first, last).to_numpy())
    scores = np.asarray(bundle.score(fm.X[inside]), dtype=np.float64)
    alerts = inside[scores >= bundle.threshold.threshold]
    log(f"{window} window {first}..{last}: {len(inside):,} rows, {len(alerts):,} alerts; building cards")
    explainer = AlertExplainer(bundle, family_of=dict(pipeline.family_of)).setup()
    started = time.perf_counter()
    predicted: list[str] = []
    for start in range(0, len(alerts), 500):
        rows = alerts[start:start + 500]
        cards = explainer.cards(list(iter_transactions(fm.frame.iloc[rows])), fm.X[rows],
                                scores=np.asarray(bundle.score(fm.X[rows]), dtype=np.float64))
        predicted += [card.plan.pattern.pattern if card.plan is not None else "none" for card in cards]
    cards_s = time.perf_counter() - started
    scenario = [str(s or "") for s in fm.frame["fraud_scenario"].to_numpy()[alerts]]
    table = score_table(predicted, scenario)
    if dump is not None:  # the alerts' feature values with label and hypothesis, for reading the rules against
        import pandas as pd

        rows = pd.DataFrame(fm.X[alerts], columns=fm.feature_names)
        rows.assign(scenario=scenario, pattern=predicted).to_parquet(dump)
    return {
        "data": {"n_cards": n_cards, "days": days, "seed": seed, "n_rows": len(frame),
                 "windows_days": {k: list(v) for k, v in spans.items()}, "reported_window": window,
                 "reported_dates": [str(first), str(last)]},
        "model": {"version": bundle.version, "threshold": float(bundle.threshold.threshold)},
        "n_alerts": len(alerts),
        "n_fraud_alerts": sum(bool(s) for s in scenario),
        "alerts_by_scenario": dict(Counter(s or "(none)" for s in scenario)),
        "cards_seconds": round(cards_s, 1),
        "rules": {rule.pattern: rule.rule for rule in RULES},
        **table,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="300 cards x 60 days (smoke test)")
    parser.add_argument("--window", choices=("tune", "report"), default="report")
    parser.add_argument("--cards", type=int, default=2000)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--dump", type=Path, default=None, help="write the alerts' features, labels and patterns")
    args = parser.parse_args()
    cards, days = (300, 60) if args.quick else (args.cards, args.days)
    started = time.perf_counter()
    result = run(cards, days, args.seed, args.window, args.threads, args.dump)
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["machine"] = describe(libraries=library_versions())
    fraud = result["fraud_alerts"]
    for pattern, row in fraud.items():
        log(f"{pattern:24s} precision {row['precision']}  recall {row['recall']}  "
            f"({row['n_correct']}/{row['n_predicted']} said, {row['n_scenario']} of the scenario)")
    none = result["all_alerts"]["none"]
    log(f"{'none (all alerts)':24s} precision {none['precision']}  recall {none['recall']}")
    if args.window == "report" and not args.quick:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        log(f"wrote {args.out}")
    else:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

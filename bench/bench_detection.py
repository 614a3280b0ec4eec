"""Detection benchmarks -> bench/results/detection.json.

    .venv/bin/python bench/bench_detection.py            # full run (~1M-row training)
    .venv/bin/python bench/bench_detection.py --quick    # small sizes, a smoke test

Measures, in one run:

* quality: engineered XGBoost vs logistic regression (same features) vs XGBoost on
  raw fields, average precision etc. on an out-of-time window of simulated data
  (2,000 cards x 120 days: train on days 1-90, test on days 91-120), plus an
  ablation of the class-imbalance rule (scale_pos_weight none / sqrt / full);
* training time on ~1M simulated rows (features, boosting, calibration, anomaly);
* batch scoring throughput (batches of 1,000) and single-row latency of
  ``ModelBundle.score``, against ``Booster.predict(DMatrix)`` and scikit-learn
  ``LogisticRegression.predict_proba`` measured in the same run.

Numbers depend on the machine; ``machine`` records it. Never assert timings in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from host import describe  # noqa: E402  (bench/ is the script's directory)

from detection import ModelBundle, compute_features, evaluate, run_comparison, train_on_features  # noqa: E402
from detection.training import library_versions, pipeline_settings  # noqa: E402
from features.pipeline import FeaturePipeline  # noqa: E402
from features.simulator import simulate  # noqa: E402
from fraudlens.settings import FeatureSettings, ModelSettings  # noqa: E402

START = date(2026, 1, 1)
RESULTS = ROOT / "bench" / "results" / "detection.json"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    return describe(libraries=library_versions())


def day(offset: int) -> date:
    return START + timedelta(days=offset)


def quality(n_cards: int, days: int, train_days: int, settings: ModelSettings, seed: int) -> dict[str, Any]:
    log(f"quality: simulating {n_cards} cards x {days} days")
    frame = simulate(n_cards=n_cards, days=days, seed=seed, start=str(START))
    pipeline = FeaturePipeline.from_settings(FeatureSettings())
    windows = {"train_start": day(0), "train_end": day(train_days - 1), "test_start": day(train_days),
               "test_end": day(days - 1)}
    started = time.perf_counter()
    comparison = run_comparison(
        frame, train_start=windows["train_start"], train_end=windows["train_end"],
        test_start=windows["test_start"], test_end=windows["test_end"], pipeline=pipeline, settings=settings,
        data_hash=f"simulate:{seed}", source="simulated", progress=log,
    )
    report = comparison.report
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["data"] = {"n_cards": n_cards, "days": days, "seed": seed, "n_rows": len(frame),
                      "fraud_rate": round(float(frame["is_fraud"].mean()), 5)}

    log("quality: imbalance ablation (scale_pos_weight none / sqrt / full)")
    fm = compute_features(frame, pipeline)
    test = fm.frame["timestamp"].dt.date.between(windows["test_start"], windows["test_end"]).to_numpy()
    context = fm.frame.loc[test, ["card_id", "timestamp", "amount", "is_fraud"]]
    ablation = {}
    for rule in ("none", "sqrt", "full"):
        bundle = train_on_features(
            fm, train_start=windows["train_start"], train_end=windows["train_end"],
            families=dict(pipeline.family_of), feature_settings=pipeline_settings(pipeline), settings=settings,
            data_hash="ablation", source="simulated", imbalance=rule,
        )
        metrics = evaluate(context.assign(score=bundle.score(fm.X[test])), bundle.threshold.threshold, k=100)
        ablation[rule] = {"scale_pos_weight": bundle.manifest["params"]["scale_pos_weight"],
                          "n_trees": bundle.manifest["n_trees"],
                          **{k: metrics[k] for k in ("average_precision", "auc_roc", "recall_at_1pct_fpr",
                                                     "card_precision_at_k")}}
        log(f"  {rule}: AP {metrics['average_precision']:.4f}")
    report["imbalance_ablation"] = ablation
    return report


def training_time(n_cards: int, days: int, settings: ModelSettings, seed: int) -> tuple[dict[str, Any], Any, Any]:
    log(f"training: simulating {n_cards} cards x {days} days")
    started = time.perf_counter()
    frame = simulate(n_cards=n_cards, days=days, seed=seed, start=str(START))
    simulate_s = time.perf_counter() - started
    pipeline = FeaturePipeline.from_settings(FeatureSettings())
    log(f"training: {len(frame):,} rows simulated in {simulate_s:.0f}s; computing features")
    started = time.perf_counter()
    fm = compute_features(frame, pipeline)
    features_s = time.perf_counter() - started
    stages: dict[str, float] = {}
    last = [time.perf_counter()]

    def progress(message: str) -> None:
        now = time.perf_counter()
        stages[message.split(" ")[0]] = now - last[0]
        last[0] = now
        log(f"training: {message}")

    started = time.perf_counter()
    bundle = train_on_features(
        fm, train_start=day(0), train_end=day(days - 1), families=dict(pipeline.family_of),
        feature_settings=pipeline_settings(pipeline), settings=settings, data_hash="bench", source="simulated",
        progress=progress,
    )
    train_s = time.perf_counter() - started
    result = {
        "n_rows": len(frame),
        "n_cards": n_cards,
        "days": days,
        "n_training_rows": bundle.manifest["data"]["n_train_rows"],
        "n_features": len(fm.feature_names),
        "n_trees": bundle.manifest["n_trees"],
        "n_threads": settings.n_threads,
        "simulate_seconds": round(simulate_s, 1),
        "features_seconds": round(features_s, 1),
        "train_seconds": round(train_s, 1),
        "features_plus_train_seconds": round(features_s + train_s, 1),
        "calibration_slice": bundle.metrics["calibration"],
    }
    log(f"training: {train_s:.0f}s (+{features_s:.0f}s features) for {len(frame):,} rows")
    return result, bundle, fm


def _percentiles(samples_s: list[float]) -> dict[str, float]:
    us = np.asarray(samples_s) * 1e6
    return {"p50_us": round(float(np.percentile(us, 50)), 1), "p99_us": round(float(np.percentile(us, 99)), 1),
            "mean_us": round(float(us.mean()), 1)}


def _per_row(fn: Any, rows: np.ndarray, repeat: int) -> list[float]:
    times = []
    for i in range(repeat):
        x = rows[i % len(rows)][None, :]
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
    return times


def _throughputs(fns: dict[str, Any], X: np.ndarray, batch: int, repeats: int = 3) -> dict[str, int]:
    """Rows/s of each function over X in batches; contenders interleaved, best of ``repeats``.

    Interleaving and best-of-N keep other processes on this shared machine from
    favouring whichever contender happened to run in a quiet moment.
    """
    best = dict.fromkeys(fns, 0.0)
    for _ in range(repeats):
        for name, fn in fns.items():
            started = time.perf_counter()
            for i in range(0, len(X), batch):
                fn(X[i:i + batch])
            best[name] = max(best[name], len(X) / (time.perf_counter() - started))
    return {name: round(value) for name, value in best.items()}


def scoring(bundle: ModelBundle, fm: Any, n_rows: int, n_single: int) -> dict[str, Any]:
    import xgboost as xgb
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    idx = rng.choice(len(fm.X), size=min(n_rows, len(fm.X)), replace=False)
    X = fm.X[idx]
    booster = bundle.booster
    names = bundle.feature_names
    bundle.set_threads(1)

    def dmatrix_predict(batch: np.ndarray) -> np.ndarray:
        return booster.predict(xgb.DMatrix(batch, feature_names=names, nthread=1), output_margin=True)

    # Sanity: both paths give the same margins before we time them.
    np.testing.assert_allclose(dmatrix_predict(X[:1000]), bundle.margin(X[:1000]), rtol=1e-5, atol=1e-5)
    # A latency baseline only: a linear model on the same inputs (NaN -> 0), fitted on a sample.
    y = fm.frame["is_fraud"].to_numpy()[idx]
    with warnings.catch_warnings():  # unscaled inputs converge slowly; irrelevant to its latency
        warnings.simplefilter("ignore")
        logistic = LogisticRegression(max_iter=200, class_weight="balanced").fit(np.nan_to_num(X[:50_000]), y[:50_000])

    def inplace_margin(batch: np.ndarray) -> np.ndarray:
        return booster.inplace_predict(batch, predict_type="margin")

    log("scoring: batch throughput")
    batch: dict[str, Any] = {"batch_size": 1000, "rows": len(X), "threads": 1}
    measured = _throughputs({"bundle_score": bundle.score, "baseline_booster_predict_dmatrix": dmatrix_predict}, X, 1000)
    batch.update({f"{name}_rows_per_s": value for name, value in measured.items()})
    batch["speedup_vs_dmatrix"] = round(measured["bundle_score"] / measured["baseline_booster_predict_dmatrix"], 2)
    bundle.set_threads(2)
    batch["bundle_score_2_threads_rows_per_s"] = _throughputs({"s": bundle.score}, X, 1000)["s"]
    bundle.set_threads(1)
    # Where the compiled trees hand over to XGBoost (SMALL_BATCH): rows/s by batch size, 1 thread.
    bundle.compile()
    compiled = bundle._compiled
    crossover: dict[str, Any] = {}
    for size in (1, 16, 32, 64, 128, 1000):
        n = min(len(X), size * 500)
        contenders = {"xgboost_inplace_predict": inplace_margin}
        if compiled is not None:
            contenders["compiled_trees"] = compiled.margin
        crossover[str(size)] = {f"{k}_rows_per_s": v for k, v in _throughputs(contenders, X[:n], size).items()}
    batch["margin_rows_per_s_by_batch_size"] = crossover
    batch["compiled_trees_bit_identical"] = bool(
        compiled is not None and np.array_equal(compiled.margin(X[:5000]), inplace_margin(X[:5000]).astype(np.float64)))

    log("scoring: single-row latency")
    _per_row(bundle.score, X, 200)  # warm-up
    single: dict[str, Any] = {
        "n_calls": n_single,
        "bundle_score": _percentiles(_per_row(bundle.score, X, n_single)),
        "bundle_margin": _percentiles(_per_row(bundle.margin, X, n_single)),
        "bundle_anomaly_score": _percentiles(_per_row(bundle.anomaly_score, X, n_single)),
        "baseline_booster_inplace_predict": _percentiles(_per_row(inplace_margin, X, n_single)),
        "baseline_booster_predict_dmatrix": _percentiles(_per_row(dmatrix_predict, X, n_single)),
        "baseline_sklearn_logistic_predict_proba": _percentiles(
            _per_row(lambda x: logistic.predict_proba(np.nan_to_num(x)), X, n_single)),
    }
    for name in ("baseline_booster_inplace_predict", "baseline_booster_predict_dmatrix",
                 "baseline_sklearn_logistic_predict_proba"):
        single[f"p50_speedup_vs_{name.removeprefix('baseline_')}"] = round(
            single[name]["p50_us"] / single["bundle_score"]["p50_us"], 2)
    return {"model_trees": bundle.manifest["n_trees"], "n_features": len(bundle.feature_names), "batch": batch,
            "single_row": single}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test, numbers not meaningful)")
    parser.add_argument("--train-cards", type=int, default=5000)
    parser.add_argument("--train-days", type=int, default=123)
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    settings = ModelSettings()
    q_cards, q_days, q_train = (300, 60, 45) if args.quick else (2000, 120, 90)
    t_cards, t_days = (300, 40) if args.quick else (args.train_cards, args.train_days)

    result: dict[str, Any] = {"machine": machine(), "settings": settings.model_dump(mode="json"),
                              "quick": args.quick}
    if not args.skip_quality:
        result["quality"] = quality(q_cards, q_days, q_train, settings, seed=2026)
    result["training"], bundle, fm = training_time(t_cards, t_days, settings, seed=7)
    result["scoring"] = scoring(bundle, fm, n_rows=20_000 if args.quick else 200_000,
                                n_single=2000 if args.quick else 20_000)
    result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["machine"]["note"] = ("2 vCPUs shared with other agents' jobs during the run: timings are pessimistic "
                                 "and noisy; ratios within one run are the meaningful numbers")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()

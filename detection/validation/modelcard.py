"""The model card: intended use, limitations and known failure modes, written from the measurements.

Nothing here is boilerplate about "the model may be wrong": every limitation names a
number the report measured (a flagged segment, a drifting feature, the calibration
gap, the number of frauds behind an interval), so the card changes when the evidence
does.
"""

from __future__ import annotations

from typing import Any


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def _num(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _shifted(stab: dict[str, Any], names: list[str]) -> str:
    return ", ".join(f"{n} ({stab['features'][n]['psi']:.2f})" for n in names)


def model_card(report: dict[str, Any]) -> dict[str, Any]:
    bundle = report["bundle"]
    perf = report["performance"]
    cal = report["calibration"]
    stab = report["stability"]
    seg = report["segments"]
    data = report["data"]
    window = report["window"]
    policy = bundle["threshold_policy"]
    at = perf["at_threshold"]
    intended = (
        f"Ranks card transactions by calibrated fraud probability for real-time screening; transactions scoring at or "
        f"above {policy['threshold']:.4g} ({policy['kind'].replace('_', ' ')} target {policy['target']:g}) go to the "
        f"investigator queue. Trained on {bundle['train_window']['start']}..{bundle['train_window']['end']}; on the "
        f"out-of-time window {window['start']}..{window['end']} it alerted on "
        f"{report['thresholds']['bundle_row']['alerts_per_day']:.1f} transactions/day with recall {_pct(at['recall_at_threshold'])} "
        f"and precision {_pct(at['precision_at_threshold'])}. It supports, not replaces, investigator decisions."
    )
    limitations = []
    n_frauds = perf["n_frauds"]
    ap = perf["average_precision"]
    limitations.append(
        f"The out-of-time evidence rests on {n_frauds} frauds over {perf['n_days']} days: AP {_num(ap['value'])} "
        f"(95% CI {_num(ap['ci_low'])}-{_num(ap['ci_high'])}). "
        + ("Intervals this wide call for a longer window before relying on small differences." if n_frauds < 200
           else "The intervals are narrow enough to compare models.")
    )
    delay = data["label_delay"]
    observed = delay.get("observed")
    text = f"Label-based features assume labels arrive {delay['configured_days']:g} days after the transaction"
    if observed:
        text += (f"; in this data the median observed delay is {observed['median_days']:.1f} days and "
                 f"{_pct(observed['share_later_than_configured'])} of frauds were confirmed later than assumed, so "
                 "merchant fraud-rate features see fewer frauds live than the delay setting implies")
    limitations.append(text + ".")
    limitations.append(
        f"Calibration: ECE {_num(cal['ece'], 4)} against a limit of {cal['ece_limit']:g} "
        f"({'passed' if cal['passed'] else 'FAILED - recalibrate before using the probabilities as loss estimates'}); "
        f"mean predicted {_pct(cal['mean_predicted'])} vs observed fraud rate {_pct(cal['observed_rate'])}."
    )
    shifted = stab["shifted_features"]
    if stab["score"]["flag"] != "stable" or shifted:
        limitations.append(
            f"Population shift since training: score PSI {_num(stab['score']['psi'])} ({stab['score']['flag']}); "
            + (f"shifted features: {_shifted(stab, shifted[:6])}." if shifted else "no feature above 0.1.")
        )
    else:
        limitations.append("No population shift above PSI 0.1 in the score or any feature: the window looks like the "
                           "training population, so this validation says little about behaviour under drift.")
    if report["data"].get("columns"):
        limitations.append("The data was read through a column mapping; fields absent from the source are missing "
                           "for every row and the features built on them carry no signal.")
    failure_modes = []
    for row in seg["flagged"]:
        failure_modes.append(
            f"{row['dimension'].replace('_', ' ')} = {row['segment']}: AP {_num(row['average_precision'])} vs "
            f"{_num(seg['overall_average_precision'])} overall on {row['frauds']} frauds; recall at the threshold "
            f"{_pct(row['recall_at_threshold'])}."
        )
    for row in seg.get("fraud_types") or []:
        if row["frauds"] >= 5 and row["recall_at_threshold"] < 0.5 * (at["recall_at_threshold"] or 0):
            failure_modes.append(f"fraud type {row['type']}: recall at the threshold {_pct(row['recall_at_threshold'])} "
                                 f"on {row['frauds']} frauds, under half the overall {_pct(at['recall_at_threshold'])}.")
    major = [n for n in stab["top_features"] if stab["features"][n]["flag"] == "major shift"]
    if major:
        failure_modes.append(f"Top features with a major shift (PSI >= 0.25): {', '.join(major)}; scores built on them "
                             "may no longer rank as in training.")
    beaten = [name for name, beats in report["challengers"]["model_beats_on_average_precision"].items() if not beats]
    if beaten:
        failure_modes.append(f"The model is not significantly better than {', '.join(beaten)} on average precision "
                             "(paired interval includes 0): its added complexity is not yet justified on this window.")
    if not failure_modes:
        failure_modes.append("No segment, fraud type or top feature fell below the report's flag rules on this window.")
    return {
        "intended_use": intended,
        "out_of_scope": [
            "Credit, AML or identity decisions: trained only on card-fraud labels.",
            "Automatic declines without review, unless the threshold is re-validated for that use.",
            "Populations or channels absent from the training window.",
        ],
        "limitations": limitations,
        "known_failure_modes": failure_modes,
    }

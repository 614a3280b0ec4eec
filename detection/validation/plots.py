"""The report's figures, drawn with matplotlib's Agg canvas and embedded as base64 PNG.

Figures are built as ``matplotlib.figure.Figure`` objects on an Agg canvas - no
pyplot, no global backend, no display needed - and turned into ``data:`` URIs so the
HTML opens offline. The notebook shows the same figures with :func:`to_png`.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 100
COLORS = {"model": "#1f5fa8", "logistic_regression": "#d9822b", "anomaly_score": "#6b8e23"}


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def to_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def to_data_uri(fig: Figure) -> str:
    return "data:image/png;base64," + base64.b64encode(to_png(fig)).decode("ascii")


def roc_pr(y: np.ndarray, scores: Mapping[str, np.ndarray]) -> Figure:
    """ROC (log FPR axis, 1% FPR marked) and precision-recall curves of each named score."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    fig = _figure(10, 4)
    roc_ax, pr_ax = fig.subplots(1, 2)
    for name, s in scores.items():
        fpr, tpr, _ = roc_curve(y, s)
        precision, recall, _ = precision_recall_curve(y, s)
        color = COLORS.get(name)
        roc_ax.plot(np.maximum(fpr, 1e-5), tpr, label=name, color=color)
        pr_ax.step(recall, precision, where="post", label=name, color=color)
    roc_ax.axvline(0.01, color="grey", linestyle=":", label="1% FPR")
    roc_ax.set(xscale="log", xlim=(1e-4, 1), ylim=(0, 1.02), xlabel="false positive rate (log)",
               ylabel="true positive rate (recall)", title="ROC")
    pr_ax.axhline(float(np.mean(y)), color="grey", linestyle=":", label="fraud rate")
    pr_ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision", title="Precision-recall")
    roc_ax.legend(loc="lower right", fontsize=8)
    pr_ax.legend(loc="upper right", fontsize=8)
    return fig


def reliability(bins: list[dict[str, Any]], ece: float) -> Figure:
    fig = _figure(5, 4.2)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
    x = [b["mean_predicted"] for b in bins]
    yv = [b["observed_rate"] for b in bins]
    sizes = [20 + 180 * math.sqrt(b["rows"] / max(b2["rows"] for b2 in bins)) for b in bins]
    ax.plot(x, yv, color=COLORS["model"], marker="o", markersize=0)
    ax.scatter(x, yv, s=sizes, color=COLORS["model"], zorder=3, label="bins (area ~ rows)")
    for b in bins:
        ax.annotate(f"{b['rows']:,}", (b["mean_predicted"], b["observed_rate"]), fontsize=7,
                    xytext=(4, -10), textcoords="offset points")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="mean predicted probability", ylabel="observed fraud rate",
           title=f"Reliability (ECE {ece:.4f})")
    ax.legend(loc="upper left", fontsize=8)
    return fig


def thresholds(rows: list[dict[str, Any]], bundle_threshold: float) -> Figure:
    ordered = sorted(rows, key=lambda r: r["alerts_per_day"])
    x = np.array([max(r["alerts_per_day"], 1e-2) for r in ordered])
    fig = _figure(8, 4)
    ax = fig.subplots()
    for key, label, color in (("recall", "recall", COLORS["model"]), ("precision", "precision", "#b03a2e"),
                              ("fraud_amount_share", "fraud amount caught", "#6b8e23")):
        y = np.array([np.nan if r[key] is None else r[key] for r in ordered], dtype=np.float64)
        ax.plot(x, y, marker="o", label=label, color=color)
    mark = next((r for r in ordered if r["is_bundle"]), None)
    if mark is not None:
        ax.axvline(max(mark["alerts_per_day"], 1e-2), color="black", linestyle="--",
                   label=f"bundle threshold {bundle_threshold:.3g}")
    ax.set(xscale="log", ylim=(0, 1.02), xlabel="alerts per day (log)", ylabel="share",
           title="Threshold trade-off")
    ax.legend(fontsize=8, loc="lower right")
    return fig


def psi_bars(stability: dict[str, Any], top_n: int = 15) -> Figure:
    entries = [("score", stability["score"]["psi"])]
    names = sorted(stability["features"], key=lambda n: -(stability["features"][n]["psi"] or 0.0))[:top_n]
    entries += [(n + (" *" if n in stability["top_features"] else ""), stability["features"][n]["psi"]) for n in names]
    labels = [e[0] for e in entries][::-1]
    values = [e[1] or 0.0 for e in entries][::-1]
    colors = ["#b03a2e" if v >= stability["psi_limit"] else "#d9822b" if v >= stability["psi_warn"] else "#1f5fa8"
              for v in values]
    fig = _figure(8, 0.3 * len(labels) + 1.2)
    ax = fig.subplots()
    ax.barh(labels, values, color=colors)
    ax.axvline(stability["psi_warn"], color="#d9822b", linestyle=":", label="0.1 shift")
    ax.axvline(stability["psi_limit"], color="#b03a2e", linestyle="--", label="0.25 major shift")
    ax.set(xlabel="PSI vs training window", title="Population stability (score + most shifted features; * = top 10)")
    ax.tick_params(axis="y", labelsize=8)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def segments(section: dict[str, Any]) -> Figure:
    dims = list(section["dimensions"])
    fig = _figure(11, 3.2 * math.ceil(len(dims) / 2))
    axes = np.atleast_1d(fig.subplots(math.ceil(len(dims) / 2), 2)).ravel()
    limit = section["ap_ratio"] * section["overall_average_precision"]
    for ax, dim in zip(axes, dims, strict=False):
        rows = section["dimensions"][dim]
        labels = [f"{r['segment'][:24]} ({r['frauds']})" for r in rows]
        values = [r["average_precision"] or 0.0 for r in rows]
        colors = ["#b03a2e" if r["flagged"] else "#1f5fa8" if r["enough_frauds"] else "#a9b8c9" for r in rows]
        ax.barh(labels[::-1], values[::-1], color=colors[::-1])
        ax.axvline(section["overall_average_precision"], color="black", linestyle="--", label="overall AP")
        ax.axvline(limit, color="#b03a2e", linestyle=":", label=f"{section['ap_ratio']:g} x overall")
        ax.set(xlim=(0, 1), title=f"AP by {dim.replace('_', ' ')} (frauds)")
        ax.tick_params(axis="y", labelsize=7)
    for ax in axes[len(dims):]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7, loc="lower right")
    return fig


def shap_importance(importance: list[dict[str, Any]], top_n: int = 15) -> Figure:
    top = importance[:top_n][::-1]
    fig = _figure(8, 0.3 * len(top) + 1.2)
    ax = fig.subplots()
    ax.barh([t["feature"] for t in top], [t["mean_abs_shap"] for t in top], color=COLORS["model"])
    ax.set(xlabel="mean |SHAP| (log-odds)", title="Global importance (SHAP, window sample)")
    ax.tick_params(axis="y", labelsize=8)
    return fig


def dependence(values: np.ndarray, features: np.ndarray, feature_names: list[str], names: list[str]) -> Figure:
    """SHAP value against feature value for each of ``names`` (missing values left out)."""
    cols = 2
    fig = _figure(10, 3.2 * math.ceil(len(names) / cols))
    axes = np.atleast_1d(fig.subplots(math.ceil(len(names) / cols), cols)).ravel()
    for ax, name in zip(axes, names, strict=False):
        j = feature_names.index(name)
        x, s = features[:, j], values[:, j]
        ok = np.isfinite(x)
        ax.scatter(x[ok], s[ok], s=8, alpha=0.5, color=COLORS["model"])
        ax.axhline(0, color="grey", linewidth=0.8)
        if ok.any() and np.nanmin(x[ok]) > 0 and np.nanmax(x[ok]) / max(np.nanmin(x[ok]), 1e-12) > 1e3:
            ax.set_xscale("log")
        ax.set(xlabel=name, ylabel="SHAP (log-odds)", title=f"{name} ({int((~ok).sum())} missing not shown)")
    for ax in axes[len(names):]:
        ax.set_visible(False)
    return fig

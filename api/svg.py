"""The SHAP waterfall of an alert card, drawn server-side as inline SVG (no JS, no CDN).

Bars walk from the model's base value through each reason's SHAP value to the margin;
what the top reasons leave out is one "other features" bar, so the chart adds up exactly
like the attribution does. The steps are computed in log-odds (the attribution's space) and
drawn in score points (0-100, the score an investigator reads): each bar runs between the
scores at its two ends, so the bars still add up, from the base score to this score.
Bars are labelled with the reasons' own words, never feature identifiers.
"""

from __future__ import annotations

import math
from typing import Any

from markupsafe import Markup, escape

from explain.checks import VERIFIER_VERSION

WIDTH, ROW, LABEL_W, VALUE_W = 720, 28, 230, 70
UP, DOWN, TOTAL = "#c0392b", "#2166ac", "#555"


def waterfall_steps(card: dict[str, Any]) -> list[tuple[str, float, float]] | None:
    """``(label, start, end)`` per bar, or None for a card without an attribution."""
    provenance = card.get("provenance") or {}
    reasons = card.get("reasons") or []
    if "base_value" not in provenance or "margin" not in provenance:
        return None
    base, margin = float(provenance["base_value"]), float(provenance["margin"])
    steps, level = [], base
    for reason in reasons:
        value = float(reason.get("shap_value", 0.0))
        label = str(reason.get("text") or reason.get("concept") or "reason").rsplit(" — ", 1)[0]
        steps.append((label, level, level + value))
        level += value
    rest = margin - level
    if abs(rest) > 1e-9:
        steps.append(("other features", level, margin))
    return steps


def waterfall_svg(card: dict[str, Any]) -> Markup:
    steps = waterfall_steps(card)
    if not steps:
        return Markup('<p class="muted">No attribution on this card (minimal card).</p>')
    provenance = card["provenance"]
    base, margin = _points(float(provenance["base_value"])), _points(float(provenance["margin"]))
    steps = [(label, _points(a), _points(b)) for label, a, b in steps]
    points = [base, margin] + [v for _, a, b in steps for v in (a, b)]
    low, high = min(points), max(points)
    span = (high - low) or 1.0
    plot_w = WIDTH - LABEL_W - VALUE_W

    def x(value: float) -> float:
        return LABEL_W + (value - low) / span * plot_w

    rows = [("base score (an average transaction)", base, base, TOTAL)]
    rows += [(label, a, b, UP if b >= a else DOWN) for label, a, b in steps]
    rows.append(("this transaction's score", margin, margin, TOTAL))
    height = ROW * len(rows) + 24
    # Sized by its viewBox: it scales to the column instead of overflowing a laptop screen.
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {WIDTH} {height}" '
             f'class="waterfall" aria-labelledby="wf-title">',
             '<title id="wf-title">How each reason moves the score (points out of 100) from the base score</title>']
    for i, (label, a, b, color) in enumerate(rows):
        y = 8 + i * ROW
        left, right = sorted((x(a), x(b)))
        width = max(right - left, 2.0)
        delta = b - a
        text = f"{delta:+.1f} pts" if color != TOTAL else f"{b:.1f}"
        parts.append(f'<text x="{LABEL_W - 8}" y="{y + 17}" text-anchor="end" font-size="12">'
                     f'{escape(label[:38])}</text>')
        parts.append(f'<rect x="{left:.1f}" y="{y + 4}" width="{width:.1f}" height="{ROW - 10}" fill="{color}">'
                     f'<title>{escape(label)}: {text}</title></rect>')
        parts.append(f'<text x="{WIDTH - VALUE_W + 6}" y="{y + 17}" font-size="12">{escape(text)}</text>')
    axis_y = 8 + len(rows) * ROW
    parts.append(f'<line x1="{LABEL_W}" y1="{axis_y}" x2="{LABEL_W + plot_w}" y2="{axis_y}" stroke="#999"/>')
    parts.append(f'<text x="{LABEL_W}" y="{axis_y + 14}" font-size="11" fill="#666">{low:.1f}</text>')
    parts.append(f'<text x="{LABEL_W + plot_w}" y="{axis_y + 14}" font-size="11" fill="#666" '
                 f'text-anchor="end">{high:.1f}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _points(log_odds: float) -> float:
    """A log-odds value as a score in points (0-100)."""
    return 100.0 / (1.0 + math.exp(-max(-700.0, min(700.0, log_odds))))


def narrative_badge(card: dict[str, Any]) -> tuple[str, str]:
    """``(label, css class)``: verified only when a model wrote it and the current closed-world
    verifier passed every one of its checks. A card narrated under an older, more lenient
    verifier (its provenance names none or another) keeps its text but not the green badge."""
    narrative = card.get("narrative") or {}
    status = narrative.get("status")
    provenance = narrative.get("provenance") or {}
    checks = provenance.get("checks") or {}
    if status == "generated":
        if checks and all(checks.values()) and provenance.get("verifier") == VERIFIER_VERSION:
            return "Model-written, verified against the facts", "badge-verified"
        return "Model-written, not verified by the current checks", "badge-fallback"
    if status == "fallback":
        return "Template fallback", "badge-fallback"
    if status == "template":
        return "Template", "badge-template"
    return "No narrative", "badge-none"

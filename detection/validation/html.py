"""Render the report as one self-contained HTML page (inline CSS, figures as data: URIs, no scripts).

The template is ``templates/report.html.j2`` (shipped as package data); Jinja2
autoescaping is on, so text from the data (segment names, narratives) cannot inject
markup.
"""

from __future__ import annotations

import math
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

TEMPLATE = "report.html.j2"


def _num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}f}"


def _pct(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{100 * value:.{digits}f}%"


def _ci(entry: dict[str, Any] | None, digits: int = 3) -> str:
    if not entry:
        return "n/a"
    return f"{_num(entry.get('value'), digits)} [{_num(entry.get('ci_low'), digits)}, {_num(entry.get('ci_high'), digits)}]"


def _check(value: bool | None) -> str:
    return "not run" if value is None else "PASS" if value else "FAIL"


def environment() -> Environment:
    env = Environment(loader=PackageLoader("detection.validation", "templates"),
                      autoescape=select_autoescape(["html", "j2"]), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(num=_num, pct=_pct, ci=_ci, check=_check)
    return env


def render_html(report: dict[str, Any], figures: dict[str, str]) -> str:
    """The page for ``report`` with ``figures`` (name -> ``data:image/png;base64,...``)."""
    bad = [name for name, uri in figures.items() if not uri.startswith("data:")]
    if bad:
        raise ValueError(f"figures must be embedded data: URIs, not links: {bad}")
    return environment().get_template(TEMPLATE).render(r=report, fig=figures, metrics=(
        ("auc_roc", "AUC ROC"), ("average_precision", "Average precision"),
        ("recall_at_1pct_fpr", "Recall at 1% FPR"), ("card_precision_at_k", "Card precision@k")))

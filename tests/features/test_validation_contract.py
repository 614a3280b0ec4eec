"""One validation contract for every entry point: the stream, ``POST /v1/score`` and the file readers.

Each hostile value is run through ``Transaction.from_mapping``, ``normalize_frame``, the
stream's ``decode_record`` and the API (a real app with a real model bundle): each must
refuse it, naming the field, with the same reason. Values at the limits are accepted by all
four, and configured limits bind all four.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from features.schema import (
    DEFAULT_LIMITS,
    SchemaError,
    Transaction,
    ValidationLimits,
    normalize_frame,
)
from streaming.pipeline import decode_batch, decode_record
from streaming.records import DeadLetter, SourceRecord

VALID: dict[str, Any] = {
    "transaction_id": "t-valid",
    "timestamp": "2026-02-01T10:00:00Z",
    "card_id": "4000000000001234",
    "merchant_id": "m-1",
    "amount": 42.5,
    "currency": "EUR",
    "mcc": "5411",
    "channel": "ecommerce",
    "country": "FR",
}

#: (case id, change to VALID, field that must be named, text the reason must hold).
HOSTILE: list[tuple[str, dict[str, Any], str, str]] = [
    ("timestamp 1e20", {"timestamp": 1e20}, "timestamp", "after the latest allowed time"),
    ("timestamp -1", {"timestamp": -1}, "timestamp", "before the earliest allowed time 2000-01-01T00:00:00Z"),
    ("timestamp 1e11 (ms-looking)", {"timestamp": 1e11}, "timestamp", "(now + 1 day)"),
    ("timestamp in ms", {"timestamp": 1_770_000_000_000}, "timestamp", "looks like epoch milliseconds"),
    ("timestamp year 9999", {"timestamp": "9999-12-31T23:59:59Z"}, "timestamp", "after the latest allowed time"),
    ("timestamp 1999-12-31", {"timestamp": "1999-12-31T23:59:59Z"}, "timestamp", "before the earliest"),
    ("timestamp true", {"timestamp": True}, "timestamp", "unparseable time"),
    ("label_timestamp 1e20", {"label_timestamp": 1e20}, "label_timestamp", "after the latest allowed time"),
    ("amount 1e308", {"amount": 1e308}, "amount", "above the maximum amount 1,000,000,000"),
    ("amount inf", {"amount": float("inf")}, "amount", "not a finite number"),
    ("amount nan", {"amount": float("nan")}, "amount", "missing required field"),
    ("amount -1", {"amount": -1}, "amount", "negative amount"),
    ("amount true", {"amount": True}, "amount", "not a number"),
    ("amount 12abc", {"amount": "12abc"}, "amount", "not a number"),
    ("transaction_id NUL", {"transaction_id": "t\x001"}, "transaction_id", "contains control characters"),
    ("card_id ESC", {"card_id": "4000\x1b[31m1234"}, "card_id", "contains control characters"),
    ("merchant_id DEL", {"merchant_id": "m\x7f1"}, "merchant_id", "contains control characters"),
    ("device_id bidi override", {"device_id": "d\u202e1"}, "device_id", "contains control characters"),
    ("merchant_id lone surrogate", {"merchant_id": "m\ud8001"}, "merchant_id", "is not valid Unicode text (an unpaired surrogate)"),
    ("merchant_id 129 chars", {"merchant_id": "m" * 129}, "merchant_id", "longer than 128 characters"),
    ("customer_id 129 chars", {"customer_id": "c" * 129}, "customer_id", "longer than 128 characters"),
    ("mcc 10,000 chars", {"mcc": "5" * 10_000}, "mcc", "longer than 8 characters"),
    ("channel 33 chars", {"channel": "e" * 33}, "channel", "longer than 32 characters"),
    ("card_id true", {"card_id": True}, "card_id", "expected a string"),
    ("latitude 91", {"latitude": 91}, "latitude", "out of range [-90, 90]"),
    ("latitude true", {"latitude": True}, "latitude", "not a number"),
]

#: Values exactly at the limits: every entry point accepts them.
AT_THE_LIMITS: list[tuple[str, dict[str, Any]]] = [
    ("earliest time", {"timestamp": "2000-01-01T00:00:00Z"}),
    ("epoch seconds", {"timestamp": 1_770_000_000}),
    ("amount 0", {"amount": 0}),
    ("amount at the maximum", {"amount": 1e9}),
    ("amount as text", {"amount": "12.50"}),
    ("ids of 128 characters", {"transaction_id": "t" * 128, "card_id": "c" * 128, "merchant_id": "m" * 128}),
    ("numeric ids and mcc", {"card_id": 4000000000005678, "mcc": 5411}),
    ("codes of 8 characters", {"mcc": "5" * 8, "country": "F" * 8, "currency": "E" * 8}),
    ("latitude 90", {"latitude": 90.0, "longitude": -180.0}),
    ("non-ASCII text", {"merchant_id": "café zürich", "device_id": "dév\u00a01"}),
]


def _normalised(reason: str) -> str:
    """The reason with the moving 'now' bound blanked (two calls may straddle a second)."""
    return re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(now", "<latest> (now", reason)


def _contract(record: dict[str, Any], limits: ValidationLimits = DEFAULT_LIMITS) -> SchemaError:
    with pytest.raises(SchemaError) as caught:
        Transaction.from_mapping(record, limits)
    return caught.value


def _frame_reject(record: dict[str, Any], limits: ValidationLimits = DEFAULT_LIMITS, *,
                  as_text: bool = False) -> tuple[str, str]:
    """normalize_frame on a frame of the valid record and this one: (field, reason) of the reject."""
    raw = pd.DataFrame([{**VALID, "transaction_id": "t-neighbour"}, record])
    good, rejects = normalize_frame(raw.astype(object) if as_text else raw, limits=limits)
    assert good["transaction_id"].tolist() == ["t-neighbour"], rejects.frame
    assert len(rejects) == 1 and int(rejects.frame["row"].iloc[0]) == 2
    return str(rejects.frame["field"].iloc[0]), str(rejects.frame["reason"].iloc[0])


def _source(record: dict[str, Any], offset: int = 0) -> SourceRecord:
    # json.dumps writes NaN and Infinity as the stdlib parser reads them (producers do send them).
    return SourceRecord("transactions", 0, offset, b"k", json.dumps(record).encode(), 1_770_000_000_000)


@pytest.mark.parametrize(("change", "field", "reason"), [case[1:] for case in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_the_contract_refuses_naming_field_and_limit(change: dict[str, Any], field: str, reason: str) -> None:
    error = _contract({**VALID, **change})
    assert error.field == field
    assert reason in error.reason, error.reason


@pytest.mark.parametrize(("change", "field", "reason"), [case[1:] for case in HOSTILE], ids=[c[0] for c in HOSTILE])
@pytest.mark.parametrize("as_text", [False, True], ids=["typed columns", "object columns"])
def test_files_reject_the_row_with_the_same_field_and_reason(
    change: dict[str, Any], field: str, reason: str, as_text: bool
) -> None:
    expected = _contract({**VALID, **change})
    got_field, got_reason = _frame_reject({**VALID, **change}, as_text=as_text)
    assert got_field == field
    assert reason in got_reason, got_reason
    if not (field == "amount" and change["amount"] is True and not as_text):
        # A whole-boolean column is "not a number" too; everything else words it as the contract does.
        assert _normalised(got_reason) == _normalised(expected.reason)


@pytest.mark.parametrize(("change", "field", "reason"), [case[1:] for case in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_the_stream_dead_letters_with_the_contracts_reason(change: dict[str, Any], field: str, reason: str) -> None:
    expected = _contract({**VALID, **change})
    result = decode_record(_source({**VALID, **change}), max_bytes=65536)
    assert isinstance(result, DeadLetter), result
    assert result.field == field
    assert _normalised(result.reason) == _normalised(f"invalid field '{field}': {expected.reason}")
    assert reason in result.reason


@pytest.mark.parametrize("change", [case[1] for case in AT_THE_LIMITS], ids=[c[0] for c in AT_THE_LIMITS])
def test_values_at_the_limits_pass_the_contract_files_and_stream(change: dict[str, Any]) -> None:
    record = {**VALID, **change}
    tx = Transaction.from_mapping(record)
    good, rejects = normalize_frame(pd.DataFrame([record]))
    assert len(rejects) == 0, rejects.frame.to_dict("records")
    assert good["transaction_id"].tolist() == [tx.transaction_id]
    assert decode_record(_source(record), max_bytes=65536) == tx


def test_configured_limits_bind_the_contract_files_and_stream() -> None:
    limits = ValidationLimits(earliest_time=pd.Timestamp("2026-01-15", tz="UTC").to_pydatetime(), max_amount=100.0)
    early = {**VALID, "timestamp": "2026-01-10T00:00:00Z"}
    dear = {**VALID, "amount": 150.0}
    assert _contract(early, limits).reason == "before the earliest allowed time 2026-01-15T00:00:00Z"
    assert _contract(dear, limits).reason == "above the maximum amount 100"
    assert _frame_reject(dear, limits) == ("amount", "above the maximum amount 100")
    early, dear = {**early, "transaction_id": "t-early"}, {**dear, "transaction_id": "t-dear"}
    decoded = decode_batch([_source(early, 0), _source(dear, 1), _source(VALID, 2)], max_bytes=65536, limits=limits)
    assert [d.reason for d in decoded.dead] == [
        "invalid field 'timestamp': before the earliest allowed time 2026-01-15T00:00:00Z",
        "invalid field 'amount': above the maximum amount 100",
    ]
    assert [tx.transaction_id for tx in decoded.transactions] == ["t-valid"]
    # The defaults accept both.
    assert len(decode_batch([_source(early), _source(dear)], max_bytes=65536).transactions) == 2


def test_the_latest_allowed_time_follows_the_clock() -> None:
    limits = ValidationLimits(max_future_s=0)
    now = time.time()
    assert Transaction.from_mapping({**VALID, "timestamp": now - 60}, limits).timestamp_ms > 0
    error = _contract({**VALID, "timestamp": now + 3600}, limits)
    assert error.reason.startswith("after the latest allowed time") and error.reason.endswith("(now + 0 s)")


def test_limits_that_make_no_sense_are_refused() -> None:
    with pytest.raises(ValueError, match="max_amount"):
        ValidationLimits(max_amount=float("inf"))
    with pytest.raises(ValueError, match="max_future_s"):
        ValidationLimits(max_future_s=-1)


# ---------------------------------------------------------------------------
# POST /v1/score: a real app with a real model bundle
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from detection import train
    from detection.registry import ModelRegistry
    from features.pipeline import FeaturePipeline
    from features.simulator import simulate
    from fraudlens.settings import ModelSettings

    frame = simulate(n_cards=120, days=21, seed=4, start="2026-01-01", fraud_rate_scale=3.0)
    bundle = train(
        frame, train_start=date(2026, 1, 1), train_end=date(2026, 1, 21), pipeline=FeaturePipeline.from_settings(),
        settings=ModelSettings(seed=5, n_threads=2, max_rounds=30, early_stopping_rounds=10),
        data_hash="0" * 64, source="simulated",
    )
    root = tmp_path_factory.mktemp("contract-models")
    ModelRegistry(root).register(bundle, promote=True)
    return root


class Api:
    def __init__(self, client: TestClient, key: str) -> None:
        self.client, self.key = client, key

    def score(self, body: Any) -> Any:
        # Sent as text: the test client's encoder refuses NaN and Infinity, which a client may send.
        return self.client.post("/v1/score", content=json.dumps(body).encode(),
                                headers={"Authorization": f"Bearer {self.key}", "content-type": "application/json"})


def _api(tmp_path: Path, registry: Path, **features: Any) -> Iterator[Api]:
    from api import ApiSettings, create_app
    from api.keys import Role
    from fraudlens.settings import Settings

    settings = Settings(work_dir=tmp_path, model={"registry_dir": registry}, store={"url": f"sqlite:///{tmp_path / 's.db'}"},
                        narrative={"backend": "template"}, features=features)
    app = create_app(settings, ApiSettings(session_secret="test-secret"))
    with TestClient(app) as client:
        key = app.state.ctx.keys.create(Role.SCORER, name="contract-tester")[0]
        yield Api(client, key)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, registry: Path) -> Iterator[Api]:
    yield from _api(tmp_path_factory.mktemp("contract-api"), registry)


#: The API's body has no label fields (scoring never reads them): it refuses them as unknown fields.
API_HOSTILE = [case for case in HOSTILE if case[2] != "label_timestamp"]


@pytest.mark.parametrize(("change", "field", "reason"), [case[1:] for case in API_HOSTILE],
                         ids=[c[0] for c in API_HOSTILE])
def test_the_api_refuses_with_the_contracts_field_and_reason(
    api: Api, change: dict[str, Any], field: str, reason: str
) -> None:
    expected = _contract({**VALID, **change})
    response = api.score({**VALID, **change})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == [field]
    assert _normalised(errors[0]["reason"]) == _normalised(expected.reason)
    assert reason in errors[0]["reason"]


@pytest.mark.parametrize(("change", "field", "reason"), [case[1:] for case in API_HOSTILE[::4]],
                         ids=[c[0] for c in API_HOSTILE[::4]])
def test_the_api_names_the_item_of_a_batch(api: Api, change: dict[str, Any], field: str, reason: str) -> None:
    batch = [{**VALID, "transaction_id": "t-first"}, {**VALID, **change, "transaction_id": "t-second"}]
    if field == "transaction_id":
        batch[1] = {**VALID, **change}
    response = api.score(batch)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [f"[1].{field}"]


def test_the_api_refuses_label_fields_as_unknown(api: Api) -> None:
    response = api.score({**VALID, "label_timestamp": 1e20})
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["label_timestamp"]


def test_the_api_accepts_values_at_the_limits(api: Api) -> None:
    batch = [{**VALID, **change, **({"transaction_id": f"t-limit-{i}"} if "transaction_id" not in change else {})}
             for i, (_name, change) in enumerate(AT_THE_LIMITS)]
    response = api.score(batch)
    assert response.status_code == 200, response.text
    assert [r["transaction_id"] for r in response.json()["results"]] == [
        Transaction.from_mapping(record).transaction_id for record in batch
    ]


def test_the_api_applies_the_configured_limits(tmp_path: Path, registry: Path) -> None:
    for api in _api(tmp_path, registry, max_amount=100.0):
        refused = api.score({**VALID, "amount": 150.0})
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"] == [{"field": "amount", "reason": "above the maximum amount 100"}]
        assert api.score({**VALID, "amount": 99.0}).status_code == 200


def test_the_openapi_document_still_describes_the_body(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()["components"]["schemas"]["TransactionIn"]
    assert schema["required"] == ["transaction_id", "timestamp", "card_id", "merchant_id", "amount"]
    assert schema["properties"]["mcc"]["maxLength"] == 8
    assert schema["properties"]["amount"]["maximum"] == DEFAULT_LIMITS.max_amount
    assert schema["additionalProperties"] is False


# ---------------------------------------------------------------------------
# fraudlens check-data: Parquet times that used to end in a traceback
# ---------------------------------------------------------------------------


def test_check_data_on_hostile_parquet_rejects_the_rows_and_names_the_problem(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from typer.testing import CliRunner

    from fraudlens.cli import app

    n = 4
    base = {"transaction_id": [f"p{i}" for i in range(n)], "card_id": ["c"] * n, "merchant_id": ["m"] * n,
            "amount": [1.0, 2.0, 3.0, 1e308]}
    files = {
        "ns.parquet": pa.array([1_767_225_600 * 10**9 + i for i in range(n)], pa.int64()),
        "e20.parquet": pa.array([1e20, 1_767_225_600.0, 1_767_225_601.0, 1_767_225_602.0], pa.float64()),
        "y9999.parquet": pa.array([datetime(9999, 1, 1)] + [datetime(2026, 1, 1)] * 3, pa.timestamp("us")),
    }
    runner = CliRunner()
    outputs = {}
    for name, stamps in files.items():
        pq.write_table(pa.table({**base, "timestamp": stamps}), tmp_path / name)
        rejects = tmp_path / f"{name}.rejects.jsonl"
        result = runner.invoke(app, ["check-data", "--data", str(tmp_path / name), "--rejects", str(rejects)])
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        assert isinstance(result.exception, SystemExit), result.exception  # typer.Exit(1), not a crash
        outputs[name] = result.output
        assert all(json.loads(line)["field"] in ("timestamp", "amount") for line in rejects.read_text().splitlines())
    assert "4 rows read, 0 valid, 4 rejected" in outputs["ns.parquet"]
    assert "timestamp: after the latest allowed time" in outputs["ns.parquet"]
    assert "looks like epoch nanoseconds" in outputs["ns.parquet"]
    for name in ("e20.parquet", "y9999.parquet"):
        assert "4 rows read, 2 valid, 2 rejected" in outputs[name]
        assert "timestamp: after the latest allowed time" in outputs[name]
        assert "amount: above the maximum amount 1,000,000,000" in outputs[name]


def test_check_data_reads_the_limits_from_the_settings(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from fraudlens.cli import app

    data = tmp_path / "tx.csv"
    data.write_text("transaction_id,timestamp,card_id,merchant_id,amount\n"
                    "a,2026-01-01T00:00:00Z,c,m,50\nb,2026-01-01T00:00:00Z,c,m,500\n")
    runner = CliRunner()
    default = runner.invoke(app, ["check-data", "--data", str(data)])
    assert default.exit_code == 0 and "2 rows read, 2 valid, 0 rejected" in default.output
    strict = runner.invoke(app, ["check-data", "--data", str(data), "--rejects", str(tmp_path / "r.jsonl")],
                           env={"FRAUDLENS_FEATURES__MAX_AMOUNT": "100"})
    assert strict.exit_code == 1
    assert "amount: above the maximum amount 100" in strict.output
    nonsense = runner.invoke(app, ["check-data", "--data", str(data)], env={"FRAUDLENS_FEATURES__MAX_AMOUNT": "1e20"})
    assert nonsense.exit_code == 2 and "max_amount" in nonsense.output.replace("MAX_AMOUNT", "max_amount")

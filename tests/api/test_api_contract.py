"""A schemathesis run against the OpenAPI document: no server error, whatever the input."""

from __future__ import annotations

from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="pip install schemathesis to run the contract tests")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from api.keys import Role  # noqa: E402


@pytest.fixture(scope="module")
def api_schema(shared_desk: Any, sample_records: list[dict[str, Any]]) -> Any:
    shared_desk.seed(sample_records, 5)
    return schemathesis.openapi.from_asgi("/openapi.json", shared_desk.client.app)


@pytest.fixture(scope="module")
def admin_headers(shared_desk: Any) -> dict[str, str]:
    return shared_desk.headers(Role.ADMIN)


@pytest.mark.slow
def test_no_server_errors(api_schema: Any, admin_headers: dict[str, str]) -> None:
    # Operations are walked here rather than with schemathesis' pytest plugin, which does not
    # support this pytest; each operation gets its own hypothesis run.
    calls: list[str] = []
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=60, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: Any) -> None:
            case.call_and_validate(headers=admin_headers, checks=[not_a_server_error])
            calls.append(case.operation.label)

        check()
    assert len(set(calls)) >= 11, sorted(set(calls))  # every API operation was exercised

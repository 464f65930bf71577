"""The JSON API fuzzed from its own OpenAPI schema with a valid admin token: never a 5xx.

Bounded (few examples per operation) so the whole run stays well under a minute.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error


@pytest.fixture
def admin_token_headers(api_client_as: Any) -> dict[str, str]:
    api = api_client_as("admin", "fuzzer")
    return {"Authorization": api.headers["Authorization"]}


def test_openapi_schema_needs_sign_in(anon_client: Any, admin_token_headers: dict[str, str]) -> None:
    assert anon_client.get("/api/openapi.json").status_code == 401
    schema = anon_client.get("/api/openapi.json", headers=admin_token_headers).json()
    assert "/api/v1/audit" in schema["paths"]


def test_api_has_no_server_errors(app: FastAPI, admin_token_headers: dict[str, str]) -> None:
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app, headers=admin_token_headers)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert any(op.path == "/api/v1/audit" for op in operations)
    # DELETE last: revoking the fuzzer's own token would leave later operations unauthenticated.
    operations.sort(key=lambda op: op.method.upper() == "DELETE")
    failures: list[str] = []
    for operation in operations:

        @settings(
            max_examples=15,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            response = case.call(headers=admin_token_headers)
            assert case.method.upper() == "DELETE" or response.status_code != 401, case.path
            case.validate_response(response, checks=[not_a_server_error])

        try:
            check()
        except AssertionError as exc:
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
        except Exception as exc:  # schemathesis raises its own failure types
            failures.append(f"{operation.method.upper()} {operation.path}: {type(exc).__name__}: {exc}")
    assert failures == []

"""The HTTP API fuzzed from its own OpenAPI document (schemathesis).

Every operation gets generated requests, valid and invalid; each response must not be
a server error, must have a status code the document lists, and must match the
documented schema. A real server on loopback answers, with a real database behind it.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

# Not checked: that every schema-valid request is accepted. Some valid-looking values are
# rightly refused with a documented 400/422: cursors and continuation tokens are opaque
# (a forged one is refused), orchestrator names must be registered, and the Durable
# Functions routes take loosely typed strings ("True", dates) that they parse themselves.
# Every other check runs: no server error, documented status codes, content types,
# headers and response bodies that match the document, invalid requests refused.
from schemathesis.checks import positive_data_acceptance

import tenuto

app = tenuto.App()


@app.activity
def echo(x: object) -> object:
    return x


@app.orchestrator
def waits(ctx, _):
    yield ctx.call_activity(echo, 1)
    return (yield ctx.wait_for_event("go"))


@pytest.mark.slow
def test_api_conforms_to_its_openapi_document(http_server):
    server = http_server(app)
    for i in range(3):
        server.client.start(waits, i, instance_id=f"fuzz-{i}")
    api = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    failures: dict[str, str] = {}
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) > 20

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def check(case: schemathesis.Case) -> None:
            if case.path == "/api/events" and case.query and _long(case.query.get("wait")):
                # A long poll waits out ``wait`` when no record comes (none does here):
                # fuzz every other value, and waits short of the client's timeout.
                case.query["wait"] = 1
            case.call_and_validate(
                base_url=server.url, timeout=30, excluded_checks=[positive_data_acceptance]
            )

        try:
            check()
        except BaseException as exc:
            failures[operation.label] = str(exc)[:2000]
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())


def _long(wait: object) -> bool:
    """Whether ``wait`` (as fuzzed: a number, or any text) is a wait of over a second."""
    try:
        return float(wait) > 1  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False

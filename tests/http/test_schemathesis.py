"""Schemathesis over the served /openapi.json, against the live server, with an admin key:
a bounded number of generated requests per operation, schema-conforming and not, and
none may get a server error.

Schemathesis's own pytest integration (`schemathesis.pytest.from_fixture`) needs a node
attribute pytest 9 no longer has, so each operation's strategy runs under Hypothesis's
`@given` here. Run with `-s` to see how many requests were made.
"""

from __future__ import annotations

import time

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup

from helpers.server import LiveServer
from helpers.tenants import Tenants, bearer

# Examples per operation and generation mode: about 500 requests, some 20 s a backend on
# two cores.
EXAMPLES = 10
# Longer than any limit of the server's own (a query stops at 10 s): no answer by then is
# a hang.
TIMEOUT = 15.0


def test_no_server_errors(server: LiveServer, tenants: Tenants, database_url: str) -> None:
    admin = bearer(tenants.key("acme"))
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    failures: list[str] = []
    sent = 0
    unsatisfiable: list[str] = []
    started = time.perf_counter()

    def sweep(operation: schemathesis.APIOperation, mode: schemathesis.GenerationMode) -> None:
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,  # nothing written under .hypothesis/ in the working tree
            phases=[Phase.explicit, Phase.generate],  # a failure is listed, not shrunk
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def call(case: schemathesis.Case) -> None:
            nonlocal sent
            sent += 1
            try:
                response = case.call(
                    base_url=server.url, session=session, headers=admin, timeout=TIMEOUT
                )
            except requests.RequestException as error:
                failures.append(f"{operation.label} ({mode}): no answer: {error!r}")
                return
            try:
                case.validate_response(response, checks=[not_a_server_error], headers=admin)
            except FailureGroup as error:
                failures.append(f"{operation.label} ({mode}): {error}")

        try:
            call()
        except Unsatisfiable:
            # Negative mode on an operation whose every parameter takes any string (a path
            # id, an optional header): there is nothing schema-breaking to send.
            unsatisfiable.append(f"{operation.label} ({mode})")

    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            sweep(operation, schemathesis.GenerationMode.POSITIVE)
            raw = operation.definition.raw
            # Negative cases need something typed: a body or a query parameter (our path
            # ids and headers take any string); trying without costs hundreds of draws.
            if raw.get("requestBody") or any(p["in"] == "query" for p in raw.get("parameters", [])):
                sweep(operation, schemathesis.GenerationMode.NEGATIVE)

    backend = database_url.split(":", 1)[0]
    seconds = time.perf_counter() - started
    print(
        f"schemathesis [{backend}]: {sent} requests in {seconds:.1f} s; "
        f"{len(unsatisfiable)} operations had nothing to send in a mode"
    )
    assert not failures, "\n".join(failures)

"""/openapi.json describes what every route answers, and the answers are what it says.

Every success of every route names its body: a JSON schema that is not empty (a response
model), or the media type of what it sends instead (an event stream, CSV, metrics). Then
the answers of a tenant's usual calls on each surface are checked against the schema
their route declares, so a model that no longer matches its answer is caught.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from helpers.tenants import Tenants, bearer
from openenrich.config import Settings
from verify.conftest import DILIGENCE, QUICKSTART

# Each must have routes in the description (a description that lost its paths would pass
# the first test without them).
PREFIXES = (
    "/api/v1/runs",
    "/api/v1/workflows",
    "/api/v1/webhooks",
    "/streams",
    "/api/auth",
    "/v1/settings/api-keys",
    "/api/schema/saved",
)
METHODS = frozenset({"get", "post", "put", "patch", "delete"})


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    # A webhook endpoint on loopback: there is no DNS in CI.
    return Settings(data_dir=tmp_path / "data", database_url=database_url, allow_private_urls=True)


@pytest.fixture
def spec(client: httpx.Client) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def undescribed(spec: dict[str, Any]) -> list[str]:
    """`METHOD path status [media type]` of each success whose body is not described."""
    missing = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            where = f"{method.upper()} {path}"
            successes = {
                status: answer
                for status, answer in operation["responses"].items()
                if status.startswith("2")
            }
            if not successes:
                missing.append(f"{where}: no success")
            for status, answer in successes.items():
                if status == "204":
                    continue  # no body to describe
                content = answer.get("content") or {}
                if not content:
                    missing.append(f"{where} {status}: no content")
                missing += [
                    f"{where} {status} {media_type}: empty schema"
                    for media_type, described in content.items()
                    if not described.get("schema")
                ]
    return missing


def test_every_route_describes_the_body_of_its_success(spec: dict[str, Any]) -> None:
    paths = spec["paths"]
    for prefix in PREFIXES:
        assert any(path.startswith(prefix) for path in paths), f"no route under {prefix}"
    assert undescribed(spec) == []


def test_a_route_without_a_response_model_is_found() -> None:
    spec = {
        "paths": {
            "/a": {
                "get": {"responses": {"200": {"content": {"application/json": {"schema": {}}}}}}
            },
            "/b": {"post": {"responses": {"201": {"description": "Created"}}}},
            "/c": {"delete": {"responses": {"204": {"description": "Gone"}}}},
            "/d": {
                "get": {
                    "responses": {"200": {"content": {"text/csv": {"schema": {"type": "string"}}}}}
                }
            },
        }
    }
    assert undescribed(spec) == [
        "GET /a 200 application/json: empty schema",
        "POST /b 201: no content",
    ]


# -- the answers match their description ---------------------------------------------------


class Checked:
    """Calls made with one key, each answer validated against its route's schema."""

    def __init__(self, client: httpx.Client, key: str, spec: dict[str, Any]) -> None:
        self.client = client
        self.headers = bearer(key)
        self.spec = spec
        self.seen: set[tuple[str, str, int]] = set()

    def __call__(self, method: str, path: str, route: str | None = None, **kwargs: Any) -> Any:
        """Send the request; `route` is `path` as /openapi.json writes it (with {params})."""
        headers = {**self.headers, **kwargs.pop("headers", {})}
        response = self.client.request(method, path, headers=headers, **kwargs)
        assert 200 <= response.status_code < 300, f"{method} {path}: {response.text}"
        route = route or path
        answer = self.spec["paths"][route][method.lower()]["responses"][str(response.status_code)]
        schema = answer["content"]["application/json"]["schema"]
        body = response.json()
        # "#/components/schemas/…" resolves against this document.
        validator = jsonschema.Draft202012Validator(
            {**schema, "components": self.spec["components"]}
        )
        errors = [
            f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
            for error in validator.iter_errors(body)
        ]
        assert errors == [], f"{method} {route} {response.status_code}: {errors}"
        self.seen.add((method, route, response.status_code))
        return body


def until(call: Checked, run_id: str, *statuses: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        run = call("GET", f"/api/v1/runs/{run_id}?wait=5", "/api/v1/runs/{run_id}")
        if run["status"] in statuses:
            return run
        if run["status"] in ("completed", "failed", "cancelled", "interrupted"):
            break  # it will not change again
    raise AssertionError(f"run {run_id} never reached {statuses}")


def test_verification_runs_and_webhooks_answer_as_described(
    client: httpx.Client, tenants: Tenants, spec: dict[str, Any]
) -> None:
    call = Checked(client, tenants.key("acme"), spec)
    hook = call("POST", "/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"})
    call("GET", "/api/v1/webhooks")
    call("GET", f"/api/v1/webhooks/{hook['id']}", "/api/v1/webhooks/{endpoint_id}")
    call(
        "PATCH",
        f"/api/v1/webhooks/{hook['id']}",
        "/api/v1/webhooks/{endpoint_id}",
        json={"event_types": ["run.completed"]},
    )

    created = call("POST", "/api/v1/runs", json=QUICKSTART, headers={"Idempotency-Key": "k"})
    call("POST", "/api/v1/runs", json=QUICKSTART, headers={"Idempotency-Key": "k"})  # 200
    done = until(call, created["id"], "completed")
    assert done["steps"]
    assert done["tool_calls"]
    assert done["report"]
    parked = call("POST", "/api/v1/runs", json={**DILIGENCE, "thread_id": created["thread_id"]})
    assert until(call, parked["id"], "requires_approval")["plan"]
    call(
        "POST",
        f"/api/v1/runs/{parked['id']}/approval",
        "/api/v1/runs/{run_id}/approval",
        json={"decision": "approved"},
    )
    until(call, parked["id"], "completed")
    declined = call("POST", "/api/v1/runs", json=DILIGENCE)
    until(call, declined["id"], "requires_approval")
    call("POST", f"/api/v1/runs/{declined['id']}/cancel", "/api/v1/runs/{run_id}/cancel")
    call(
        "GET",
        f"/api/v1/threads/{created['thread_id']}/runs",
        "/api/v1/threads/{thread_id}/runs",
    )
    call(
        "GET",
        f"/api/v1/webhooks/{hook['id']}/deliveries",
        "/api/v1/webhooks/{endpoint_id}/deliveries",
    )

    call("GET", "/api/v1/workflows")
    workflow = {"slug": "mine", "content": "Run `pan_verification`."}
    call("POST", "/api/v1/workflows", json=workflow)
    call("PATCH", "/api/v1/workflows/mine", "/api/v1/workflows/{slug}", json={"name": "Mine"})
    call("DELETE", "/api/v1/workflows/mine", "/api/v1/workflows/{slug}")
    call("GET", "/api/v1/usage")
    call("DELETE", f"/api/v1/webhooks/{hook['id']}", "/api/v1/webhooks/{endpoint_id}")
    assert ("POST", "/api/v1/runs", 200) in call.seen  # the replay
    assert ("POST", "/api/v1/runs", 202) in call.seen


def test_streams_answer_as_described(
    client: httpx.Client, tenants: Tenants, spec: dict[str, Any]
) -> None:
    call = Checked(client, tenants.key("acme"), spec)
    fields = {"user_id": "int64", "plan": {"type": "string", "required": False}}
    call(
        "POST", "/streams", json={"stream_id": "orders", "schema_mode": "strict", "fields": fields}
    )
    call("POST", "/streams", json={"stream_id": "events", "schema_mode": "evolve"})
    call("PUT", "/streams/orders", "/streams/{stream_id}", json={"schema_mode": "strict"})
    call("GET", "/streams")
    rejected = call(
        "POST",
        "/ingest",
        json={"stream_id": "orders", "data": [{"user_id": 1}, {"user_id": "one"}]},
    )
    assert rejected == {"accepted": 1, "buffered": 1, "rejected": 1}
    call(
        "POST",
        "/v1/streams/ingest",
        headers={"X-Stream-Id": "events"},
        json={"timestamp": "2026-01-01T00:00:00Z", "source": "web", "event": {"a": 1}},
    )
    call("GET", "/streams/orders/dlq", "/streams/{stream_id}/dlq")  # from the log
    call("POST", "/streams/orders/flush", "/streams/{stream_id}/flush")
    call("GET", "/streams/orders/dlq", "/streams/{stream_id}/dlq")  # from the lake
    call("POST", "/streams/events/flush", "/streams/{stream_id}/flush")
    call("POST", "/ingest", json={"stream_id": "events", "data": [{"a": "text", "b": 2.5}]})
    call("POST", "/streams/events/flush", "/streams/{stream_id}/flush")
    changes = call("GET", "/streams/events/schema-events", "/streams/{stream_id}/schema-events")
    assert changes["schema_events"]
    call("GET", "/usage")
    call("GET", "/stats")
    call("GET", "/errors")
    call("GET", "/connect")
    call("POST", "/query", json={"sql": "SELECT * FROM events ORDER BY a"})
    call("DELETE", "/streams/events", "/streams/{stream_id}")


def test_keys_and_identity_answer_as_described(
    client: httpx.Client, tenants: Tenants, spec: dict[str, Any]
) -> None:
    call = Checked(client, tenants.key("acme"), spec)
    call("GET", "/health")
    call("GET", "/api/auth/me")
    made = call("POST", "/api/auth/api-keys", json={"name": "ci"})
    call("GET", "/api/auth/api-keys")
    call("DELETE", f"/api/auth/api-keys/{made['prefix']}", "/api/auth/api-keys/{prefix}")
    for prefix in ("/v1/settings/api-keys", "/api/settings/api-keys"):
        put = f"{prefix}/{{provider}}"
        call("PUT", f"{prefix}/openai", put, json={"api_key": "sk-test-1234567890"})
        call("GET", prefix)
        call("DELETE", f"{prefix}/openai", put)
    call("GET", "/api/enrichment/options")


def test_entity_schemas_answer_as_described(
    client: httpx.Client, tenants: Tenants, spec: dict[str, Any]
) -> None:
    call = Checked(client, tenants.key("acme"), spec)
    json_schema = {"type": "object", "properties": {"name": {"type": "string"}}}
    body = {"name": "Companies", "entity_type": "company", "json_schema": json_schema}
    made = call("POST", "/api/schema/saved", json=body)
    one = "/api/schema/saved/{schema_id}"
    path = f"/api/schema/saved/{made['id']}"
    call("GET", "/api/schema/saved")
    call("GET", path, one)
    call("PUT", path, one, json={"description": None, "name": "Renamed"})
    call("GET", f"{path}/versions", f"{one}/versions")
    call("GET", f"{path}/versions/1", f"{one}/versions/{{version}}")
    call("DELETE", path, one)

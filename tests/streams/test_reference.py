"""The reference's curl examples for the streams API, as written (apart from host and key),
and every row of its error table."""

from __future__ import annotations

import re

import httpx
import pytest

from helpers.tenants import Tenants, bearer
from streams.conftest import Lake

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def test_ingest_example(lake: Lake) -> None:
    assert lake.create("events").status_code == 201
    response = lake.client.post(
        "/ingest",
        headers={**lake.headers, "Content-Type": "application/json"},
        content=b"""{
"stream_id": "events",
"data": [
{ "event": "click", "url": "/buy", "ts": 1738776000 },
{ "event": "purchase", "amount": 99.99, "ts": 1738776001 }
]
}""",
    )
    assert response.status_code == 200
    assert response.json() == {"accepted": 2, "buffered": 2}


@pytest.mark.parametrize("number", [b"1e400", b"-1e400", b"99999999999999999999999"])
def test_a_number_where_a_string_belongs_is_a_400(lake: Lake, number: bytes) -> None:
    """Fields that must be strings are not decoded as anything else: 1e400, out of a float's
    range, was a 500."""
    assert lake.create("events").status_code == 201
    headers = {**lake.headers, "Content-Type": "application/json"}
    batch = b'{"stream_id": %s, "data": [{"a": 1}]}' % number
    response = lake.client.post("/ingest", headers=headers, content=batch)
    assert (response.status_code, response.json()) == (400, {"error": "stream_id is required"})
    headers["X-Stream-Id"] = "events"
    good = {"timestamp": b'"2025-02-05T12:00:00Z"', "source": b'"web"'}
    for field, detail in [
        ("timestamp", "The 'timestamp' field must be a valid ISO 8601 string."),
        ("source", "The 'source' field is required and must be a non-empty string."),
    ]:
        sent = {**good, field: number}
        envelope = b'{"timestamp": %s, "source": %s, "event": {"a": 1}}' % (
            sent["timestamp"],
            sent["source"],
        )
        response = lake.client.post("/v1/streams/ingest", headers=headers, content=envelope)
        assert response.status_code == 400, response.text
        assert response.json() == {"error": "invalid_format", "detail": detail}


def test_ingest_bodies_are_documented_and_their_examples_are_accepted(lake: Lake) -> None:
    """The ingest routes read their bodies themselves; /openapi.json still describes them,
    and what it shows is accepted as it is."""
    assert lake.create("events").status_code == 201
    spec = lake.client.get("/openapi.json").json()

    def schema(path: str) -> dict[str, object]:
        body = spec["paths"][path]["post"]["requestBody"]
        assert body["required"] is True
        found: dict[str, object] = body["content"]["application/json"]["schema"]
        return found

    batch = schema("/ingest")
    assert batch["required"] == ["stream_id", "data"]
    event = batch["properties"]["data"]["items"]["examples"][0]  # type: ignore[index]
    assert lake.ingest("events", [event]).json() == {"accepted": 1, "buffered": 1}
    envelope = schema("/v1/streams/ingest")["oneOf"][0]  # type: ignore[index]
    assert envelope["required"] == ["timestamp", "source", "event"]
    sent = {"timestamp": "2025-02-05T12:00:00Z", "source": "web", "event": event}
    headers = {**lake.headers, "X-Stream-Id": "events"}
    response = lake.client.post("/v1/streams/ingest", headers=headers, json=sent)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"data": [{"a": 1}]}, 400, "stream_id is required"),
        ({"stream_id": "", "data": [{"a": 1}]}, 400, "stream_id is required"),
        ({"stream_id": "events", "data": {"a": 1}}, 400, "data must be an array"),
        ({"stream_id": "events"}, 400, "data must be an array"),
        ({"stream_id": "events", "data": []}, 400, "data array is empty"),
        ({"stream_id": "nope", "data": [{"a": 1}]}, 404, "Stream 'nope' not found"),
    ],
)
def test_ingest_error_table(lake: Lake, body: dict[str, object], status: int, message: str) -> None:
    lake.create("events")
    response = lake.client.post("/ingest", headers=lake.headers, json=body)
    assert response.status_code == status
    assert response.json() == {"error": message}


def test_payload_over_one_megabyte_is_413(lake: Lake) -> None:
    lake.create("events")
    data = [{"blob": "x" * 1000} for _ in range(1100)]
    response = lake.ingest("events", data)
    assert response.status_code == 413
    assert response.json() == {"error": "Payload too large"}


def test_invalid_json_and_non_objects_are_400(lake: Lake) -> None:
    lake.create("events")
    broken = lake.client.post(
        "/ingest", headers={**lake.headers, "Content-Type": "application/json"}, content=b'{"stream'
    )
    assert broken.status_code == 400
    assert broken.json() == {"error": "Invalid JSON"}
    scalar = lake.ingest("events", [{"ok": 1}, 42])
    assert scalar.status_code == 400
    assert scalar.json() == {"error": "data[1] must be an object"}


def test_monthly_event_limit(client: httpx.Client, tenants: Tenants) -> None:
    tenants.plan("tiny", events_per_month=5)
    tenants.set_plan("acme", "tiny")
    live = Lake(client, tenants.key("acme"))
    live.create("events")
    assert live.ingest("events", [{"n": i} for i in range(3)]).status_code == 200
    refused = live.ingest("events", [{"n": i} for i in range(3)])
    assert refused.status_code == 429
    assert refused.json() == {"error": "Monthly event limit exceeded"}
    assert live.ingest("events", [{"n": 9}, {"n": 10}]).status_code == 200  # exactly 5
    # The test environment has no quotas.
    sandbox = Lake(client, tenants.key("acme", environment="test"))
    sandbox.create("events")
    assert sandbox.ingest("events", [{"n": i} for i in range(10)]).status_code == 200


def test_stream_examples(lake: Lake) -> None:
    created = lake.client.post(
        "/streams",
        headers=lake.headers,
        json={
            "stream_id": "purchases",
            "schema_mode": "strict",
            "fields": {
                "order_id": {"type": "string"},
                "amount": {"type": "float64"},
                "currency": {"type": "string"},
            },
        },
    )
    assert created.status_code == 201
    body = created.json()
    assert (body["stream_id"], body["schema_mode"], body["template"]) == (
        "purchases",
        "strict",
        None,
    )
    assert ISO.fullmatch(body["created_at"])

    lake.create("clicks")
    listed = lake.client.get("/streams", headers=lake.headers).json()["streams"]
    assert [(s["stream_id"], s["schema_mode"]) for s in listed] == [
        ("purchases", "strict"),
        ("clicks", "flex"),
    ]
    assert set(listed[0]) >= {"stream_id", "schema_mode", "template", "created_at"}

    duplicate = lake.create("clicks")
    assert duplicate.status_code == 409
    assert duplicate.json() == {"error": "Stream 'clicks' already exists"}

    updated = lake.client.put(
        "/streams/clicks", headers=lake.headers, json={"schema_mode": "evolve"}
    )
    assert updated.status_code == 200
    assert updated.json()["schema_mode"] == "evolve"

    assert lake.client.put("/streams/nope", headers=lake.headers, json={}).status_code == 404
    assert lake.client.delete("/streams/nope", headers=lake.headers).status_code == 404


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"stream_id": "has space"},
            "stream_id may contain only letters, digits, '_' and '-' (at most 128)",
        ),
        (
            {"stream_id": "x" * 129},
            "stream_id may contain only letters, digits, '_' and '-' (at most 128)",
        ),
        ({}, "stream_id is required"),
        (
            {"stream_id": "s", "schema_mode": "loose"},
            "schema_mode must be one of strict, evolve, flex",
        ),
        (
            {"stream_id": "s", "schema_mode": "strict"},
            "a strict stream needs fields to validate against",
        ),
        (
            {"stream_id": "s", "fields": {"a": {"type": "uuid"}}},
            "fields.a.type must be one of string, int64, float64, boolean, timestamp, json",
        ),
        (
            {"stream_id": "s", "fields": {"_event_id": "string"}},
            "field name '_event_id' is reserved",
        ),
        ({"stream_id": "s", "template": "clicks"}, "Template 'clicks' not found"),
    ],
)
def test_stream_validation(lake: Lake, body: dict[str, object], message: str) -> None:
    response = lake.client.post("/streams", headers=lake.headers, json=body)
    assert response.status_code == 400
    assert response.json() == {"error": message}


def test_delete_keeps_the_data(lake: Lake) -> None:
    lake.create("events")
    lake.ingest("events", [{"n": 1}, {"n": 2}])
    files = lake.flush("events")["files"]
    assert lake.client.delete("/streams/events", headers=lake.headers).json() == {
        "stream_id": "events",
        "deleted": True,
    }
    assert lake.ingest("events", [{"n": 3}]).status_code == 404
    assert lake.rows("SELECT count(*) FROM events") == [[2]]
    import os

    assert all(os.path.exists(f["path"]) for f in files)


def test_streaming_ingest_example(lake: Lake) -> None:
    lake.create("a0c3b4de-1923-4ff1-8dba-f92ad912d20f")
    event = b"""{
  "timestamp": "2025-02-12T14:32:15Z",
  "source": "payments-app",
  "event": {
    "transactionId": "txn_30921",
    "status": "approved",
    "latency_ms": 182,
    "amount": 499,
    "currency": "USD"
  },
  "metadata": {
    "env": "prod",
    "team": "payments"
  }
}"""
    response = lake.client.post(
        "/v1/streams/ingest",
        headers={
            **lake.headers,
            "Content-Type": "application/json",
            "X-Stream-Id": "a0c3b4de-1923-4ff1-8dba-f92ad912d20f",
        },
        content=event,
    )
    assert response.status_code == 200
    assert response.json() == {
        "status": "accepted",
        "ingested_bytes": len(event),
        "stream_id": "a0c3b4de-1923-4ff1-8dba-f92ad912d20f",
    }
    lake.flush("a0c3b4de-1923-4ff1-8dba-f92ad912d20f")
    rows = lake.rows(
        "SELECT \"timestamp\", source, event->>'$.transactionId', metadata->>'$.team' "
        'FROM "a0c3b4de-1923-4ff1-8dba-f92ad912d20f"'
    )
    assert rows == [["2025-02-12T14:32:15Z", "payments-app", "txn_30921", "payments"]]


def test_streaming_ingest_takes_an_array_of_envelopes(lake: Lake) -> None:
    lake.create("logs")
    envelopes = [
        {"timestamp": f"2025-02-12T14:32:1{i}Z", "source": "svc", "event": {"n": i}}
        for i in range(3)
    ]
    response = lake.client.post(
        "/v1/streams/ingest", headers={**lake.headers, "X-Stream-Id": "logs"}, json=envelopes
    )
    assert response.status_code == 200
    lake.flush("logs")
    assert lake.rows("SELECT count(*) FROM logs") == [[3]]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (
            b'{"timestamp": "12/02/2025", "source": "a", "event": {}}',
            "The 'timestamp' field must be a valid ISO 8601 string.",
        ),
        (b'{"source": "a", "event": {}}', "The 'timestamp' field is required."),
        (
            b'{"timestamp": "2025-02-12T14:32:15Z", "event": {}}',
            "The 'source' field is required and must be a non-empty string.",
        ),
        (b'{"timestamp": "2025-02-12T14:32:15Z", "source": "a"}', "The 'event' field is required."),
        (
            b'{"timestamp": "2025-02-12T14:32:15Z", "source": "a", "event": [1]}',
            "The 'event' field must be an object of key-value pairs.",
        ),
        (b'{"timestamp": ', "The request body is not valid JSON."),
        (b"42", "The request body must be a JSON object (or an array of objects)."),
    ],
)
def test_streaming_ingest_errors(lake: Lake, body: bytes, detail: str) -> None:
    lake.create("logs")
    response = lake.client.post(
        "/v1/streams/ingest",
        headers={**lake.headers, "X-Stream-Id": "logs", "Content-Type": "application/json"},
        content=body,
    )
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_format", "detail": detail}


def test_streaming_ingest_unknown_stream_and_missing_header(lake: Lake) -> None:
    envelope = {"timestamp": "2025-02-12T14:32:15Z", "source": "a", "event": {"x": 1}}
    unknown = lake.client.post(
        "/v1/streams/ingest", headers={**lake.headers, "X-Stream-Id": "nope"}, json=envelope
    )
    assert unknown.status_code == 404
    assert unknown.json() == {"error": "not_found", "detail": "Stream 'nope' not found"}
    missing = lake.client.post("/v1/streams/ingest", headers=lake.headers, json=envelope)
    assert missing.status_code == 400
    assert missing.json() == {
        "error": "invalid_format",
        "detail": "The X-Stream-Id header is required.",
    }
    unauthorized = lake.client.post(
        "/v1/streams/ingest", headers={"X-Stream-Id": "x"}, json=envelope
    )
    assert unauthorized.status_code == 401
    assert unauthorized.json() == {
        "error": "invalid_api_key",
        "detail": "Invalid, revoked, or expired API key",
    }


def test_usage_example(lake: Lake) -> None:
    lake.create("events")
    lake.ingest("events", [{"n": i} for i in range(5)])
    flushed = lake.flush("events")["files"]
    today = flushed[0]["date"]
    response = lake.client.get(
        f"/usage?start_date={today}&end_date={today}", headers=lake.headers
    ).json()
    assert response == {
        "usage": [
            {
                "date": today,
                "stream_id": "events",
                "event_count": 5,
                "bytes_stored": flushed[0]["bytes"],
                "file_count": 1,
            }
        ],
        "totals": {"event_count": 5, "bytes_stored": flushed[0]["bytes"], "file_count": 1},
    }
    assert lake.client.get(
        "/usage?start_date=2026-02-01&end_date=2026-02-05", headers=lake.headers
    ).json() == {
        "usage": [],
        "totals": {"event_count": 0, "bytes_stored": 0, "file_count": 0},
    }
    bad = lake.client.get("/usage?start_date=yesterday", headers=lake.headers)
    assert bad.status_code == 400
    assert bad.json() == {"error": "start_date must be a date, YYYY-MM-DD"}


def test_stats_errors_and_health_examples(lake: Lake, tenants: Tenants) -> None:
    lake.create("events")
    lake.ingest("events", [{"n": 1}, {"n": 2}])
    lake.client.post("/ingest", headers=lake.headers, json={"data": [{}]})  # validation error
    stats = lake.client.get("/stats", headers=lake.headers).json()
    assert stats["status"] == "ok"
    assert (stats["requests"], stats["events"], stats["errors"]) == (2, 2, 1)
    assert len(stats["histogram"]) == 60
    assert len(stats["hourly"]) == 24
    assert stats["histogram"][-1]["events"] == 2
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d", stats["hour"])

    errors = lake.client.get("/errors", headers=lake.headers).json()
    assert errors["errors_24h"] == 1
    assert errors["by_type"] == {
        "validation": 1,
        "schema_rejection": 0,
        "rate_limit": 0,
        "processing": 0,
    }
    (recent,) = errors["recent"]
    assert (recent["type"], recent["message"], recent["endpoint"]) == (
        "validation",
        "stream_id is required",
        "/ingest",
    )
    assert recent["request_body"] == '{"data":[{}]}'
    assert ISO.fullmatch(recent["created_at"])

    health = lake.client.get("/health").json()
    assert health["status"] == "ok"

    other = lake.client.get("/stats", headers=bearer(tenants.key("globex"))).json()
    assert (other["requests"], other["status"]) == (0, "idle")


def test_connect_on_a_local_lake(lake: Lake) -> None:
    body = lake.client.get("/connect", headers=lake.headers).json()
    assert body["storage"] == "local"
    assert body["example_path"].endswith("/*/date=*/*.parquet")
    assert "read_parquet(" in body["sql"]["duckdb"]

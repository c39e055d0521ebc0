"""NUL (U+0000) in a request: PostgreSQL text cannot hold it, SQLite can. The same request
gets the same answer on both: a 400 in the surface's body, before any query."""

from __future__ import annotations

import httpx
import pytest

from helpers.tenants import Tenants, bearer


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/auth/api-keys", {"name": "a\x00b"}),
        ("/api/auth/api-keys", {"name": "ok", "\x00": 1}),
        ("/api/v1/runs", {"message": "PAN ABCDE1234F \x00"}),
        ("/api/v1/runs", {"message": "PAN ABCDE1234F", "workflow": "\x00"}),
        ("/api/v1/runs", {"message": "PAN ABCDE1234F", "thread_id": "th_\x00"}),
        ("/api/v1/runs", {"message": "x", "metadata": {"deep": ["\x00"]}}),
        ("/streams", {"stream_id": "s", "schema_mode": "evolve", "fields": {"a\x00": {}}}),
    ],
)
def test_nul_in_a_json_body_is_refused(
    client: httpx.Client, tenants: Tenants, path: str, body: dict[str, object]
) -> None:
    response = client.post(path, headers=bearer(tenants.key()), json=body)
    assert response.status_code in (400, 422), response.text
    assert "NUL" in response.text


def test_a_backslash_before_u0000_is_text_not_nul(client: httpx.Client, tenants: Tenants) -> None:
    headers = {**bearer(tenants.key()), "Content-Type": "application/json"}
    response = client.post("/api/auth/api-keys", headers=headers, content=rb'{"name": "a\\u0000"}')
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "a\\u0000"


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("GET", "/streams/%00/dlq", {"error": "The URL must not contain NUL (%00)"}),
        ("PUT", "/streams/a%00b", {"error": "The URL must not contain NUL (%00)"}),
        ("GET", "/usage?stream_id=%00", {"error": "The URL must not contain NUL (%00)"}),
        ("GET", "/errors?stream_id=x%00", {"error": "The URL must not contain NUL (%00)"}),
        (
            "GET",
            "/api/v1/runs/run_%00/events",
            {"error": {"code": "invalid_request", "message": "The URL must not contain NUL (%00)"}},
        ),
        ("DELETE", "/api/auth/api-keys/%00", {"detail": "The URL must not contain NUL (%00)"}),
        ("DELETE", "/v1/settings/api-keys/%00", {"error": "The URL must not contain NUL (%00)"}),
    ],
)
def test_nul_in_a_url_is_refused_in_the_surface_body(
    client: httpx.Client, tenants: Tenants, method: str, url: str, body: dict[str, object]
) -> None:
    response = client.request(method, url, headers=bearer(tenants.key()))
    assert response.status_code == 400, response.text
    assert response.json() == body

"""Every JSON request body, on every route, is read by the same rules (json_input)."""

from __future__ import annotations

import httpx
import pytest
from fastapi.routing import APIRoute

from helpers.tenants import Tenants, bearer
from openenrich.app import create_app
from openenrich.http.routing import JSONRoute


def test_every_route_reads_json_bodies_by_our_rules() -> None:
    # A router made without route_class=JSONRoute would parse with the standard library.
    routes: list[APIRoute] = []
    pending = list(create_app().routes)
    while pending:
        route = pending.pop()
        if isinstance(route, APIRoute):
            routes.append(route)
        pending.extend(getattr(getattr(route, "original_router", None), "routes", []))
    assert len(routes) > 30
    assert [route.path for route in routes if not isinstance(route, JSONRoute)] == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/streams", b'{"stream_id": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        ("/api/v1/runs", b'{"message": "x", "metadata": ' + b'{"a":' * 5000 + b"1" + b"}" * 5001),
        ("/streams", b'{"stream_id": "\xff"}'),
        ("/api/v1/runs", b'{"message": "\\ud800"}'),
        ("/query", b'{"sql": "SELECT 1", "x": 1e400}'),
    ],
)
def test_every_json_body_is_held_to_the_same_rules(
    path: str, body: bytes, client: httpx.Client, tenants: Tenants
) -> None:
    response = client.post(
        path,
        headers={**bearer(tenants.key("acme")), "content-type": "application/json"},
        content=body,
    )
    expected = 422 if path.startswith("/api/v1/") else 400
    assert response.status_code == expected, response.text


def test_a_json_body_is_read_whatever_content_type_is_declared(
    client: httpx.Client, tenants: Tenants
) -> None:
    # curl -d sends application/x-www-form-urlencoded: the README's examples use it.
    key = tenants.key("acme")
    for content_type in ("application/x-www-form-urlencoded", "text/plain", None):
        headers = bearer(key) | ({"content-type": content_type} if content_type else {})
        stream = f"s{len(content_type or '')}"
        created = client.post(
            "/streams", headers=headers, content=b'{"stream_id": "%s"}' % stream.encode()
        )
        assert created.status_code == 201, (content_type, created.text)

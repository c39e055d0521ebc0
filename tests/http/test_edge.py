"""What every surface shares: health, docs, metrics, error bodies, body caps."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterable

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import OperationalError

from helpers.server import LiveServer
from helpers.tenants import Tenants, bearer
from openenrich import __version__
from openenrich.app import create_app
from openenrich.config import MIB, Settings
from openenrich.http.middleware import body_limit_for


def test_health_needs_no_key(client: httpx.Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["version"] == __version__
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["timestamp"])


def test_openapi_and_docs_are_served(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["info"]["title"] == "OpenEnrich"
    assert "/api/auth/api-keys" in spec["paths"]
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "swagger-ui" in docs.text.lower()


def test_metrics_count_requests_by_route_and_status(client: httpx.Client) -> None:
    client.get("/health")
    client.get("/api/auth/me")
    client.get("/no/such/route")
    text = client.get("/metrics").text
    assert 'openenrich_http_requests_total{method="GET",route="/health",status="200"} 1.0' in text
    assert (
        'openenrich_http_requests_total{method="GET",route="/api/auth/me",status="401"} 1.0' in text
    )
    assert 'route="unmatched",status="404"' in text
    assert (
        'openenrich_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/health"}'
        in text
    )


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/no-such-thing", {"error": "Not found"}),
        ("/v1/no-such-thing", {"error": "Not found"}),
        ("/api/no-such-thing", {"detail": "Not found"}),
        ("/api/v1/no-such-thing", {"error": {"code": "not_found", "message": "Not found"}}),
    ],
)
def test_unknown_routes_answer_in_their_surface_body(
    client: httpx.Client, path: str, body: dict[str, object]
) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.json() == body


def test_wrong_method_is_405_in_the_surface_body(client: httpx.Client) -> None:
    response = client.post("/health")
    assert response.status_code == 405
    assert response.json() == {"error": "Method not allowed"}


def test_invalid_json_and_wrong_types_are_400_never_500(
    client: httpx.Client, tenants: Tenants
) -> None:
    headers = {**bearer(tenants.key()), "Content-Type": "application/json"}
    broken = client.post("/api/auth/api-keys", headers=headers, content=b'{"name": ')
    assert broken.status_code == 400
    assert broken.json() == {"detail": "Request body is not valid JSON"}

    not_an_object = client.post("/api/auth/api-keys", headers=headers, content=b"[1, 2]")
    assert not_an_object.status_code == 400
    assert not_an_object.json() == {"detail": "Request body must be a JSON object"}

    wrong_type = client.post("/api/auth/api-keys", headers=headers, json={"role": 7})
    assert wrong_type.status_code == 400
    assert wrong_type.json()["detail"].startswith("role: ")

    unknown_field = client.post("/api/auth/api-keys", headers=headers, json={"colour": "red"})
    assert unknown_field.status_code == 400
    assert "colour" in unknown_field.json()["detail"]


def raw_request(port: int, head: bytes, body_chunks: Iterable[bytes] = ()) -> bytes:
    """Send `head` (and then chunks, for as long as the server reads), return the response."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        for chunk in body_chunks:
            sock.sendall(chunk)
        received = b""
        deadline = time.monotonic() + 10
        while b"\r\n\r\n" not in received and time.monotonic() < deadline:
            data = sock.recv(65536)
            if not data:
                break
            received += data
        header_end = received.index(b"\r\n\r\n") + 4
        match = re.search(rb"content-length: (\d+)", received[:header_end], re.IGNORECASE)
        length = int(match.group(1)) if match else 0
        while len(received) < header_end + length:
            data = sock.recv(65536)
            if not data:
                break
            received += data
        return received


def test_declared_oversize_body_is_refused_before_it_is_sent(server: LiveServer) -> None:
    # Only the headers go out: the 2 MB body never does, and the answer comes anyway.
    head = (
        b"POST /ingest HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2097152\r\n\r\n"
    )
    response = raw_request(server.port, head)
    assert response.startswith(b"HTTP/1.1 413 ")
    assert response.endswith(b'{"error":"Payload too large"}')


def test_oversize_chunked_body_is_refused_while_it_is_read(server: LiveServer) -> None:
    # No Content-Length: the cap is enforced as the route reads. The answer comes after
    # ~1 MiB, while the client has not even finished the body (no terminating chunk).
    head = (
        b"POST /api/auth/api-keys HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b" " * 65536
    chunks = (b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(18))
    response = raw_request(server.port, head, chunks)
    assert response.startswith(b"HTTP/1.1 413 ")
    assert response.endswith(b'{"detail":"Payload too large"}')


@pytest.mark.parametrize(
    ("path", "size", "refused"),
    [
        ("/ingest", MIB + 1, True),
        ("/v1/streams/ingest", MIB + 1, True),
        ("/v1/pipelines/p1/leads", 3 * MIB, False),  # lead uploads may be up to 4 MB
        ("/v1/pipelines/p1/leads", 4 * MIB + 1, True),
        ("/api/v1/runs", MIB + 1, True),
    ],
)
def test_each_route_has_its_cap(client: httpx.Client, path: str, size: int, refused: bool) -> None:
    response = client.post(path, content=b"x" * size, headers={"Content-Type": "application/json"})
    assert (response.status_code == 413) is refused


def test_body_caps_follow_the_settings(settings: Settings) -> None:
    limit = body_limit_for(settings.model_copy(update={"max_lead_upload_bytes": 123}))
    assert limit("POST", "/v1/pipelines/abc/leads") == 123
    assert limit("GET", "/v1/pipelines/abc/leads") == settings.max_body_bytes
    assert limit("POST", "/ingest") == settings.max_ingest_body_bytes


@pytest.fixture
def failing_app(settings: Settings) -> FastAPI:
    app = create_app(settings)

    async def broken() -> None:
        raise RuntimeError("a bug")

    async def database_gone() -> None:
        raise OperationalError("SELECT 1", {}, ConnectionError("server closed the connection"))

    app.add_api_route("/api/v1/broken", broken)
    app.add_api_route("/broken", broken)
    app.add_api_route("/v1/database-gone", database_gone)
    return app


def test_an_unexpected_error_is_a_500_in_the_surface_body(failing_app: FastAPI) -> None:
    with LiveServer(failing_app) as live:
        verify = httpx.get(f"{live.url}/api/v1/broken")
        streams = httpx.get(f"{live.url}/broken")
    assert verify.status_code == 500
    assert verify.json() == {
        "error": {"code": "internal_error", "message": "Internal server error"}
    }
    assert streams.json() == {"error": "Internal server error"}


def test_a_lost_database_is_a_503_with_retry_after(failing_app: FastAPI) -> None:
    with LiveServer(failing_app) as live:
        response = httpx.get(f"{live.url}/v1/database-gone")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.json() == {"error": "Database unavailable, retry shortly"}

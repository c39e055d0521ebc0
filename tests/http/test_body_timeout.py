"""A request body that stops coming: a 408 after a few seconds of silence, never a connection
held for ever; a client that goes away mid-body is not an error."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from helpers.server import LiveServer
from helpers.tenants import Tenants
from openenrich.app import create_app
from openenrich.config import Settings

TIMEOUT = 0.5
GUARD = 60.0  # seconds: only so that a test cannot hang; nothing here should take it
MESSAGE = "Request body not received: no data for 0.5 s"


@pytest.fixture
def live(settings: Settings) -> Iterator[LiveServer]:
    quick = settings.model_copy(update={"body_read_timeout_seconds": TIMEOUT})
    with LiveServer(create_app(quick)) as server:
        yield server


def head(path: str, key: str, length: int, method: str = "POST") -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {key}\r\n"
        f"X-Stream-Id: s\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """The status, headers and body of one response; then the rest until the server closes."""
    received = b""
    while b"\r\n\r\n" not in received:
        data = sock.recv(65536)
        assert data, f"the server closed without an answer: {received!r}"
        received += data
    top, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = top.decode("latin-1").split("\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines)
    }
    while len(body) < int(headers.get("content-length", "0")):
        data = sock.recv(65536)
        if not data:
            break
        body += data
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/ingest", {"error": MESSAGE}),
        ("/v1/streams/ingest", {"error": "request_timeout", "detail": MESSAGE}),
        ("/v1/settings/api-keys/OPENAI", {"error": MESSAGE}),
        ("/api/auth/api-keys", {"detail": MESSAGE}),
        ("/api/v1/runs", {"error": {"code": "request_timeout", "message": MESSAGE}}),
    ],
)
def test_a_body_that_stops_coming_is_a_408_and_the_connection_closes(
    live: LiveServer, tenants: Tenants, path: str, error: dict[str, object]
) -> None:
    key = tenants.key("acme")
    method = "PUT" if "api-keys/" in path else "POST"
    with socket.create_connection(("127.0.0.1", live.port), timeout=GUARD) as sock:
        started = time.monotonic()
        sock.sendall(head(path, key, 100, method))
        sock.sendall(b'{"data": [')  # 10 of the 100 bytes promised, then nothing
        status, headers, body = read_response(sock)
        elapsed = time.monotonic() - started
        assert sock.recv(1) == b""  # the server closed the connection
    # The answer is the read timeout's own (its 408 and message), given once the silence
    # had lasted the timeout: not some other limit's, and not before.
    assert status == 408
    assert headers["connection"] == "close"
    assert orjson.loads(body) == error
    assert elapsed >= TIMEOUT


def test_a_body_that_never_starts_is_a_408(live: LiveServer, tenants: Tenants) -> None:
    with socket.create_connection(("127.0.0.1", live.port), timeout=GUARD) as sock:
        sock.sendall(head("/ingest", tenants.key("acme"), 100))
        status, _, body = read_response(sock)
    assert status == 408
    assert orjson.loads(body) == {"error": MESSAGE}


def test_a_slow_body_that_keeps_coming_is_read(settings: Settings, tenants: Tenants) -> None:
    # Silence is what times out, not a slow total: four pauses shorter than the timeout add
    # up to more than it. The timeout is longer here than in the other tests so that a busy
    # machine cannot stretch a pause past it (0.3 s of 0.5 s once did, in CI).
    patient = 2.0
    pause = patient * 0.3
    payload = orjson.dumps({"name": "uploaded over a slow link", "role": "read"})
    step = len(payload) // 4 + 1
    pieces = [payload[i : i + step] for i in range(0, len(payload), step)]
    assert len(pieces) * pause > patient
    slow = settings.model_copy(update={"body_read_timeout_seconds": patient})
    with (
        LiveServer(create_app(slow)) as live,
        socket.create_connection(("127.0.0.1", live.port), timeout=GUARD) as sock,
    ):
        sock.sendall(head("/api/auth/api-keys", tenants.key("acme"), len(payload)))
        for piece in pieces:
            time.sleep(pause)
            sock.sendall(piece)
        status, _, body = read_response(sock)
    assert status == 201, body
    assert orjson.loads(body)["name"] == "uploaded over a slow link"


@pytest.mark.parametrize("path", ["/ingest", "/v1/streams/ingest", "/api/auth/api-keys"])
def test_a_client_that_goes_away_mid_body_is_not_an_error(
    live: LiveServer, tenants: Tenants, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    key = tenants.key("acme")
    with caplog.at_level(logging.INFO):
        with socket.create_connection(("127.0.0.1", live.port), timeout=GUARD) as sock:
            sock.sendall(head(path, key, 100) + b'{"data": [')
            time.sleep(TIMEOUT / 5)  # the route is reading the body when the client leaves
        # The request is over once /metrics counts it, whatever status it was given.
        deadline = time.monotonic() + GUARD
        while time.monotonic() < deadline:
            metrics = httpx.get(f"{live.url}/metrics").text
            if f'method="POST",route="{path}"' in metrics:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the abandoned request never finished")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    assert f'method="POST",route="{path}",status="499"}} 1.0' in metrics

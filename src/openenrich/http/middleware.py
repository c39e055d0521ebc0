"""Pure ASGI middleware (no BaseHTTPMiddleware: it costs a task and a copy per request)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openenrich.config import Settings
from openenrich.errors import (
    OpenEnrichError,
    PayloadTooLarge,
    RequestTimeout,
    render,
    surface_for_path,
)
from openenrich.http.access_log import log_request
from openenrich.http.metrics import HttpMetrics

_LEAD_UPLOAD = re.compile(r"/v1/pipelines/[^/]+/leads/?")
_INGEST = frozenset({"/ingest", "/v1/streams/ingest"})


def body_limit_for(settings: Settings) -> Callable[[str, str], int]:
    """The byte cap for a request body, by method and path."""

    def limit(method: str, path: str) -> int:
        if path in _INGEST:
            return settings.max_ingest_body_bytes
        if method == "POST" and _LEAD_UPLOAD.fullmatch(path):
            return settings.max_lead_upload_bytes
        return settings.max_body_bytes

    return limit


async def send_error(scope: Scope, send: Send, error: OpenEnrichError) -> None:
    status, body = render(surface_for_path(scope["path"]), error)
    payload = orjson.dumps(body)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def too_large() -> PayloadTooLarge:
    # The client may still be sending the rest; closing is cheaper than draining it.
    return PayloadTooLarge("Payload too large", headers={"Connection": "close"})


def timed_out(seconds: float) -> RequestTimeout:
    # The client may send the rest later; nothing it sends on this connection is wanted now.
    return RequestTimeout(
        f"Request body not received: no data for {seconds:g} s", headers={"Connection": "close"}
    )


class BodyLimitMiddleware:
    """Caps request bodies while they are read, before anything parses them.

    A declared Content-Length over the cap is refused before a byte of the body is read;
    a body without one (chunked) is counted as it arrives and refused the moment it passes
    the cap, whatever the route was doing with it. A body that stops arriving (no data for
    `read_timeout` seconds) is answered with a 408: the server has no other limit on how
    long a request may hold its connection while the route waits for the body.
    """

    def __init__(
        self, app: ASGIApp, limit_for: Callable[[str, str], int], read_timeout: float
    ) -> None:
        self.app = app
        self.limit_for = limit_for
        self.read_timeout = read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["method"], scope["path"])
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > limit:
                    await send_error(scope, send, too_large())
                    return
                break

        received = 0
        refused: OpenEnrichError | None = None
        body_complete = False
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received, refused, body_complete
            if body_complete:
                # Only a disconnect can come now (a streaming response listens for it for
                # as long as it streams): no timeout.
                return await receive()
            try:
                async with asyncio.timeout(self.read_timeout):
                    message = await receive()
            except TimeoutError:
                refused = timed_out(self.read_timeout)
                raise refused from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_complete = not message.get("more_body", False)
                if received > limit:
                    refused = too_large()
                    raise refused
            else:
                body_complete = True
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if refused is not None and not response_started:
                return  # whatever the app answers to a truncated body, the answer is ours
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except OpenEnrichError as error:
            if error is not refused or response_started:
                raise
        if refused is not None and not response_started:
            await send_error(scope, send, refused)


# The request-state attribute where authentication leaves the caller's X-RateLimit-* headers.
RATE_LIMIT_HEADERS = "rate_limit_headers"


def rate_limit_headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = scope.get("state", {}).get(RATE_LIMIT_HEADERS) or {}
    return headers


class RateLimitHeadersMiddleware:
    """Puts the caller's X-RateLimit-* headers on every answer to an authenticated request.

    A route that returns its own Response, an error handler and the body limits above all
    build their answers without the headers a dependency set; this adds them at the one
    point every answer passes. Headers an answer already has win (a 429 from one of the
    verification-runs limits describes that limit).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start" and (extra := rate_limit_headers(scope)):
                present = {name.lower() for name, _ in message.get("headers", ())}
                added = [
                    (name.lower().encode(), value.encode())
                    for name, value in extra.items()
                    if name.lower().encode() not in present
                ]
                message = {**message, "headers": [*message.get("headers", ()), *added]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class MetricsMiddleware:
    """Counts and times every request for /metrics; with `access_log`, also writes its
    line (http/access_log.py): one wrapper sees each request's status and duration."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics, access_log: bool = False) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            elapsed = time.perf_counter() - started
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(elapsed)
            if self.access_log:
                log_request(scope, status, elapsed)

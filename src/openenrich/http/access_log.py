"""One line per request: method, path, status, duration and the key's public prefix.

The path is logged without its query string (a report link's signature is in it), and the
key only by the prefix the key list shows (`sk_live_ab12…`), never whole."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("openenrich.access")


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

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
            principal = scope.get("state", {}).get("principal")
            prefix = getattr(principal, "key_prefix", None)
            duration_ms = round((time.perf_counter() - started) * 1000, 1)
            method, path = scope["method"], scope["path"]
            logger.info(
                "%s %s %d %.1fms %s",
                method,
                path,
                status,
                duration_ms,
                prefix or "-",
                extra={
                    "method": method,
                    "path": path,
                    "status": status,
                    "duration_ms": duration_ms,
                    "key_prefix": prefix,
                },
            )

"""What every URL is held to before routing."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from openenrich.errors import BadRequest
from openenrich.http.middleware import send_error


class NulInURLMiddleware:
    """Refuses a path or query that holds NUL (`%00`), with a 400 in the surface's body.

    Every id and parameter in a URL ends up compared with, or stored in, a text column, and
    PostgreSQL text cannot hold NUL (SQLite can): `GET /streams/%00/dlq` was a 500 on one
    backend and a 404 on the other. No id or parameter of ours has a use for one.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            "\x00" in scope["path"] or b"%00" in scope.get("query_string", b"")
        ):
            await send_error(scope, send, BadRequest("The URL must not contain NUL (%00)"))
            return
        await self.app(scope, receive, send)

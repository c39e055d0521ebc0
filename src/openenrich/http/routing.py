"""Every JSON request body read the same way, on every route of every surface.

FastAPI parses bodies with the standard library's `json`, which accepts lone surrogates,
recurses until RecursionError, and reads nothing unless the request declares a JSON
content type (curl's `-d` declares a form). Routers made with `route_class=JSONRoute`
read their bodies with `json_input.loads` instead (UTF-8, the one nesting limit, orjson),
whatever content type is declared: every body a route of ours takes is JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute

from openenrich import json_input
from openenrich.http.state import app_state


class JSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            # json.JSONDecodeError is FastAPI's own path for a body that is not JSON: a
            # validation error in the surface's body, whose message names a broken rule.
            try:
                json_input.check(body, app_state(self).settings.json_max_depth)
            except json_input.InvalidJSON as error:
                raise json.JSONDecodeError(error.message, "", 0) from None
            try:
                self._json = orjson.loads(body)
            except orjson.JSONDecodeError:
                raise json.JSONDecodeError("", "", 0) from None
            # A NUL can only be written as the escape \u0000 (the raw byte is not JSON):
            # the walk is for bodies that have one, or a backslash-u0000 that is text.
            if b"\\u0000" in body and json_input.holds_nul(self._json):
                raise json.JSONDecodeError("strings must not contain NUL (\\u0000)", "", 0)
        return self._json


def _declares_json(content_type: bytes) -> bool:
    media_type = content_type.split(b";", 1)[0].strip().lower()
    return media_type == b"application/json" or media_type.endswith(b"+json")


class JSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        takes_body = self.body_field is not None

        async def read_json(request: Request) -> Response:
            if takes_body:
                headers = request.scope["headers"]
                declared = next((v for k, v in headers if k == b"content-type"), b"")
                if not _declares_json(declared):
                    request.scope["headers"] = [
                        *(item for item in headers if item[0] != b"content-type"),
                        (b"content-type", b"application/json"),
                    ]
            return await handler(JSONRequest(request.scope, request.receive))

        return read_json

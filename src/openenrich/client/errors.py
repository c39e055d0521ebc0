"""What the client raises: one tree for every surface's error body.

    OpenEnrichError
     ├── ConnectionFailed       the server could not be reached, or did not answer in time
     └── APIError               the server answered with an error status
          ├── InvalidRequest    400, 413, 422: the request itself is wrong
          ├── Unauthorized      401: no key, or a key the server does not know
          ├── PaymentRequired   402: out of credits or over the plan's quota
          ├── Forbidden         403: the key's role may not do this
          ├── NotFound          404 (another tenant's resources are not found either)
          ├── Conflict          409
          ├── RateLimited       429
          └── ServerError       5xx

Each surface words its errors its own way (`{"error": "…"}`, `{"error": code, "detail":
…}`, `{"detail": …}`, `{"error": {"code", "message", "run_id"}}`); `error_from` reads them
all into `code` and `message`, keeps the parsed body as `body`, and `Retry-After` (in
seconds) as `retry_after`.
"""

from __future__ import annotations

from typing import Any

import httpx


class OpenEnrichError(Exception):
    """Anything the client raises."""


class ConnectionFailed(OpenEnrichError):
    """The server could not be reached, or did not answer in time."""


class APIError(OpenEnrichError):
    """The server answered with an error status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        body: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.code = code
        self.body = body
        self.retry_after = retry_after  # seconds, when the server said when to try again


class InvalidRequest(APIError):
    pass


class Unauthorized(APIError):
    pass


class PaymentRequired(APIError):
    pass


class Forbidden(APIError):
    pass


class NotFound(APIError):
    pass


class Conflict(APIError):
    pass


class RateLimited(APIError):
    pass


class ServerError(APIError):
    pass


_BY_STATUS: dict[int, type[APIError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    402: PaymentRequired,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: InvalidRequest,
    422: InvalidRequest,
    429: RateLimited,
}


def retry_after(response: httpx.Response) -> float | None:
    """The `Retry-After` header in seconds (only the delay form: our server sends no date)."""
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def error_from(response: httpx.Response) -> APIError:
    """The error an error answer stands for, in the words of its body."""
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    code, message = _read(body)
    message = message or response.reason_phrase or "error"
    kind = _BY_STATUS.get(response.status_code)
    if kind is None:
        kind = ServerError if response.status_code >= 500 else APIError
    return kind(
        response.status_code, message, code=code, body=body, retry_after=retry_after(response)
    )


def _read(body: Any) -> tuple[str | None, str | None]:
    if not isinstance(body, dict):
        return None, str(body).strip()[:500] or None
    error, detail = body.get("error"), body.get("detail")
    if isinstance(error, dict):  # runs: {"error": {"code", "message"}}
        return _text(error.get("code")), _text(error.get("message"))
    if isinstance(error, str) and isinstance(detail, str):  # {"error": code, "detail": …}
        return error, detail
    if isinstance(error, str):
        return None, error
    if isinstance(detail, str):
        return None, detail
    if isinstance(detail, list):  # validation errors: [{"loc", "msg"}, …]
        said = [
            f"{'.'.join(str(part) for part in item.get('loc', []))}: {item.get('msg')}"
            for item in detail
            if isinstance(item, dict)
        ]
        return None, "; ".join(said) or None
    return None, None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None

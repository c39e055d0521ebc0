"""The errors services raise, and how each API surface renders them.

Services raise one of these and never build HTTP responses themselves; the app turns the
error into the error body of the surface the request came in on (see `render`).

    OpenEnrichError                  status  default code
    ├── BadRequest                   400     invalid_request
    ├── Unauthorized                 401     invalid_api_key
    ├── PaymentRequired              402     payment_required
    ├── Forbidden                    403     forbidden
    ├── NotFound                     404     not_found
    ├── MethodNotAllowed             405     method_not_allowed
    ├── RequestTimeout               408     request_timeout
    ├── Conflict                     409     conflict
    ├── PayloadTooLarge              413     payload_too_large
    ├── InvalidRequest               422*    invalid_request
    ├── RateLimited                  429     rate_limited
    ├── InternalError                500     internal_error
    └── ServiceUnavailable           503     unavailable

    * InvalidRequest is a malformed body or a wrong field type. Its status is the
      surface's: 422 on the verification-runs API (its reference says so), 400 elsewhere.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any


class OpenEnrichError(Exception):
    status_code: int = 500
    code: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status_code: int | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
        run_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})
        self.run_id = run_id


class BadRequest(OpenEnrichError):
    status_code = 400
    code = "invalid_request"


class Unauthorized(OpenEnrichError):
    status_code = 401
    code = "invalid_api_key"

    def __init__(self) -> None:
        # One opaque message for missing, malformed, unknown, revoked and expired keys.
        super().__init__("Invalid, revoked, or expired API key")


class PaymentRequired(OpenEnrichError):
    status_code = 402
    code = "payment_required"


class Forbidden(OpenEnrichError):
    status_code = 403
    code = "forbidden"


class NotFound(OpenEnrichError):
    status_code = 404
    code = "not_found"


class MethodNotAllowed(OpenEnrichError):
    status_code = 405
    code = "method_not_allowed"


class RequestTimeout(OpenEnrichError):
    status_code = 408
    code = "request_timeout"


class Conflict(OpenEnrichError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(OpenEnrichError):
    status_code = 413
    code = "payload_too_large"


class InvalidRequest(OpenEnrichError):
    status_code = 422
    code = "invalid_request"


class RateLimited(OpenEnrichError):
    status_code = 429
    code = "rate_limited"


class InternalError(OpenEnrichError):
    status_code = 500
    code = "internal_error"


class ServiceUnavailable(OpenEnrichError):
    status_code = 503
    code = "unavailable"


class Surface(enum.Enum):
    """The five API references we serve, each with its own error body."""

    STREAMS = "streams"  # /ingest, /streams, /usage, … : {"error": message}
    STREAM_INGEST = "stream_ingest"  # /v1/streams/ingest: {"error": code, "detail": message}
    LEADS = "leads"  # /v1/…: {"error": message, …extra}
    ENTITIES = "entities"  # /api/…: {"detail": message}
    VERIFY = "verify"  # /api/v1/…: {"error": {"code", "message", "run_id"?}}


# Longest prefix first: the first match wins.
_SURFACE_PREFIXES: tuple[tuple[str, Surface], ...] = (
    ("/api/v1/", Surface.VERIFY),
    ("/api/", Surface.ENTITIES),
    ("/v1/streams/ingest", Surface.STREAM_INGEST),
    ("/v1/", Surface.LEADS),
)


def surface_for_path(path: str) -> Surface:
    for prefix, surface in _SURFACE_PREFIXES:
        if path.startswith(prefix):
            return surface
    return Surface.STREAMS


def render(surface: Surface, error: OpenEnrichError) -> tuple[int, dict[str, Any]]:
    """The status and JSON body `error` gets on `surface`."""
    status = error.status_code
    if isinstance(error, InvalidRequest) and surface is not Surface.VERIFY:
        status = 400
    body: dict[str, Any]
    if surface is Surface.STREAMS:
        body = {"error": error.message, **error.extra}
    elif surface is Surface.STREAM_INGEST:
        # This reference names its one 400 code `invalid_format`.
        code = "invalid_format" if error.code == "invalid_request" else error.code
        body = {"error": code, "detail": error.message, **error.extra}
    elif surface is Surface.LEADS:
        body = {"error": error.message, **error.extra}
    elif surface is Surface.ENTITIES:
        body = {"detail": error.message, **error.extra}
    else:
        inner: dict[str, Any] = {"code": error.code, "message": error.message}
        if error.run_id is not None:
            inner["run_id"] = error.run_id
        inner.update(error.extra)
        body = {"error": inner}
    return status, body


def describe_validation_errors(errors: Sequence[Mapping[str, Any]]) -> str:
    """One readable sentence naming the offending fields of a pydantic error list."""
    parts = []
    for error in errors[:3]:
        if error.get("type") == "json_invalid":
            reason = (error.get("ctx") or {}).get("error")
            return "Request body is not valid JSON" + (f": {reason}" if reason else "")
        location = [str(item) for item in error.get("loc", ()) if item != "body"]
        if not location and error.get("type") in ("model_attributes_type", "dict_type"):
            return "Request body must be a JSON object"
        field = ".".join(location)
        message = str(error.get("msg", "is invalid"))
        if error.get("type") == "missing":
            message = "is required"
        parts.append(f"{field}: {message}" if field else message)
    if len(errors) > 3:
        parts.append(f"and {len(errors) - 3} more")
    return "; ".join(parts) or "Invalid request"

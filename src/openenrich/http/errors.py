"""Turns every error into the error body of the surface the request came in on."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from openenrich.errors import (
    BadRequest,
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    OpenEnrichError,
    ServiceUnavailable,
    describe_validation_errors,
    render,
    surface_for_path,
)
from openenrich.http.middleware import rate_limit_headers
from openenrich.http.responses import JSONBody

logger = logging.getLogger("openenrich.http")


def error_response(request: Request, error: OpenEnrichError) -> JSONBody:
    status, body = render(surface_for_path(request.url.path), error)
    return JSONBody(body, status_code=status, headers=error.headers or None)


async def handle_openenrich_error(request: Request, exc: Exception) -> JSONBody:
    assert isinstance(exc, OpenEnrichError)
    return error_response(request, exc)


async def handle_validation_error(request: Request, exc: Exception) -> JSONBody:
    assert isinstance(exc, RequestValidationError)
    return error_response(request, InvalidRequest(describe_validation_errors(exc.errors())))


# nginx's code for a client that closed the connection before the answer: only /metrics
# ever sees it, as nobody is left to send it to.
CLIENT_CLOSED_REQUEST = 499


async def handle_client_disconnect(request: Request, exc: Exception) -> Response:
    # The client went away while its body was being read: nothing went wrong on our side,
    # so no error is logged and nothing is counted as a 500.
    return Response(status_code=CLIENT_CLOSED_REQUEST)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if isinstance(exc.__cause__, ClientDisconnect):
        # FastAPI turns any failure to read a body parameter into a 400, a client gone too.
        return await handle_client_disconnect(request, exc.__cause__)
    error: OpenEnrichError
    if exc.status_code == 404:
        error = NotFound("Not found")
    elif exc.status_code == 405:
        error = MethodNotAllowed("Method not allowed")
    elif exc.status_code < 500:
        error = BadRequest(str(exc.detail), status_code=exc.status_code)
    else:
        error = InternalError("Internal server error")
    response = error_response(request, error)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def handle_database_unavailable(request: Request, exc: Exception) -> JSONBody:
    # The database went away (restart, failover) or stayed locked past the busy timeout:
    # the client may retry; the pool replaces broken connections.
    logger.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
    error = ServiceUnavailable("Database unavailable, retry shortly", headers={"Retry-After": "1"})
    return error_response(request, error)


async def handle_unexpected(request: Request, exc: Exception) -> JSONBody:
    # Every 500 is a bug: log it with its traceback (never the request's headers).
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    # Starlette sends this answer outside every middleware, RateLimitHeaders included.
    headers = rate_limit_headers(request.scope)
    return error_response(request, InternalError("Internal server error", headers=headers))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(OpenEnrichError, handle_openenrich_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(HTTPException, handle_http_exception)
    app.add_exception_handler(OperationalError, handle_database_unavailable)
    app.add_exception_handler(ClientDisconnect, handle_client_disconnect)
    app.add_exception_handler(Exception, handle_unexpected)

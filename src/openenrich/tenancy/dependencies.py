"""Authentication for every surface: `Authorization: Bearer <key>` or `X-API-Key: <key>`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from openenrich.errors import Forbidden, RateLimited
from openenrich.http.middleware import RATE_LIMIT_HEADERS
from openenrich.http.session import database
from openenrich.http.state import app_state
from openenrich.tenancy import service
from openenrich.tenancy.ratelimit import RateLimiter
from openenrich.tenancy.roles import SAFE_METHODS, Role
from openenrich.tenancy.tenant import Principal


def presented_key(request: Request) -> str | None:
    authorization = request.headers.get("authorization")
    if authorization is not None:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
        return None
    return request.headers.get("x-api-key")


async def _authenticate(request: Request, *, reads_only: bool) -> Principal:
    # Each step below takes a pooled connection and gives it back before the next one:
    # holding one while waiting for another is how a busy pool deadlocks.
    db = database(request)
    principal = await service.authenticate(
        db, presented_key(request), app_state(request).get(service.KeyCache)
    )
    request.state.principal = principal  # so a refusal below can still be told apart by tenant
    rate = principal.plan.requests_per_second
    if rate is not None:
        limiter = app_state(request).get(RateLimiter)
        decision = await limiter.take(f"key:{principal.key_id}", rate)
        # Every answer to this request carries them, errors included (RateLimitHeaders).
        setattr(request.state, RATE_LIMIT_HEADERS, decision.limit_headers())
        if not decision.allowed:
            raise RateLimited("Rate limit exceeded", headers=decision.headers())
    if principal.role is Role.READ and request.method not in SAFE_METHODS and not reads_only:
        raise Forbidden("This API key is read-only")
    tracker = app_state(request).get(service.KeyUseTracker)
    if tracker.due(principal):
        async with db.session() as session:
            await service.record_key_use(session, principal.key_id)
            await session.commit()
    return principal


async def authenticated(request: Request) -> Principal:
    """Any valid key; `read` keys only for GET."""
    return await _authenticate(request, reads_only=False)


async def authenticated_reader(request: Request) -> Principal:
    """Any valid key, `read` keys included, for routes that only read whatever their method
    (POST /query)."""
    return await _authenticate(request, reads_only=True)


async def admin_only(principal: Annotated[Principal, Depends(authenticated)]) -> Principal:
    if principal.role is not Role.ADMIN:
        raise Forbidden("This action needs an admin API key")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(authenticated)]
ReaderPrincipal = Annotated[Principal, Depends(authenticated_reader)]
AdminPrincipal = Annotated[Principal, Depends(admin_only)]

"""The reference's "Requests / token: 600 / minute … Returns 429", on every route of the
surface: a bucket per key of `leads_requests_per_minute` requests, refilled evenly over
the minute, in the tenancy layer's rate limiter (so every `serve` process on one
PostgreSQL draws from the same bucket).

It is a dependency of each router (`dependencies=REQUEST_LIMIT`), so it runs once per
request, before the route's own dependencies (an upload is refused before it takes an
upload slot). It asks for the caller through `authenticated`, as the routes do, and
FastAPI solves that once per request: the key is looked up, and the plan's own bucket
drawn from, once.
"""

from __future__ import annotations

from fastapi import Depends, Request

from openenrich.errors import RateLimited
from openenrich.http.state import app_state
from openenrich.tenancy.dependencies import CurrentPrincipal
from openenrich.tenancy.ratelimit import RateLimiter


async def request_limit(request: Request, principal: CurrentPrincipal) -> None:
    state = app_state(request)
    per_minute = state.settings.leads_requests_per_minute
    decision = await state.get(RateLimiter).take(
        f"leads:{principal.key_id}", per_minute / 60, capacity=per_minute
    )
    if not decision.allowed:
        raise RateLimited(
            f"Rate limit exceeded: {per_minute} requests per minute per API key",
            headers=decision.headers(),
        )


REQUEST_LIMIT = [Depends(request_limit)]

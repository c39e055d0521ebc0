"""Every part of the server, in one list: add a package's `Component` here and the app,
the workers and Alembic all know it (see component.py).

Core and early platform packages cannot import `Component` (it sits above them), so theirs
are written here; later packages declare their own in their `component.py`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import MetaData

from openenrich.billing import models as billing_models
from openenrich.component import Component
from openenrich.console.component import COMPONENT as CONSOLE
from openenrich.db.base import Base
from openenrich.email.pool import SmtpPool
from openenrich.enrichers.component import COMPONENT as ENRICHERS
from openenrich.entities.component import COMPONENT as ENTITIES
from openenrich.http import system
from openenrich.http.state import AppState
from openenrich.jobs import idempotency, retention
from openenrich.jobs import models as jobs_models
from openenrich.lake import models as lake_models
from openenrich.leads.component import COMPONENT as LEADS
from openenrich.llm.component import COMPONENT as LLM
from openenrich.streams.component import COMPONENT as STREAMS
from openenrich.streams.destinations.component import COMPONENT as DESTINATIONS
from openenrich.tenancy import models as tenancy_models
from openenrich.tenancy import routes as tenancy_routes
from openenrich.tenancy.ratelimit import RateLimiter, make_rate_limiter
from openenrich.tenancy.service import KeyCache, KeyUseTracker
from openenrich.verify.component import COMPONENT as VERIFY
from openenrich.web.fetch import Fetcher
from openenrich.webhooks.component import COMPONENT as WEBHOOKS


@asynccontextmanager
async def keys_and_limits(state: AppState) -> AsyncIterator[None]:
    state.add(make_rate_limiter(state.settings, state.database), RateLimiter)
    state.add(KeyUseTracker(state.settings.last_used_resolution_seconds))
    state.add(KeyCache())
    yield


@asynccontextmanager
async def fetcher(state: AppState) -> AsyncIterator[None]:
    fetcher = state.add(Fetcher(state.settings))
    try:
        yield
    finally:
        await fetcher.close()


@asynccontextmanager
async def smtp_pool(state: AppState) -> AsyncIterator[None]:
    # One per process: every verification run in it shares the SMTP connections and limits.
    pool = state.add(SmtpPool.from_settings(state.settings))
    try:
        yield
    finally:
        await pool.close()


SYSTEM = Component(name="system", routers=[system.router])
TENANCY = Component(
    name="tenancy",
    routers=[tenancy_routes.router],
    models=tenancy_models,
    api_lifespan=keys_and_limits,
)
WEB = Component(name="web", lifespan=fetcher)
EMAIL = Component(name="email", lifespan=smtp_pool)
JOBS = Component(
    name="jobs",
    models=jobs_models,
    housekeeping=[idempotency.purge, retention.purge_events],
)
LAKE = Component(name="lake", models=lake_models)
BILLING = Component(name="billing", models=billing_models)

# Routers are included in this order, lifespans entered in it (and left in reverse).
COMPONENTS: tuple[Component, ...] = (
    SYSTEM,
    TENANCY,
    WEB,
    EMAIL,
    JOBS,
    LAKE,
    BILLING,
    ENRICHERS,
    STREAMS,
    DESTINATIONS,
    VERIFY,
    WEBHOOKS,
    LLM,
    LEADS,
    ENTITIES,
    CONSOLE,
)


def metadata() -> MetaData:
    """Every table of every component (each `models` module was imported above)."""
    return Base.metadata

"""The one ASGI app: every surface's router, the shared middleware, and the process lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from openenrich import __version__, background
from openenrich.config import Settings
from openenrich.db import Database
from openenrich.http.docs import install_docs
from openenrich.http.errors import install_error_handlers
from openenrich.http.metrics import HttpMetrics
from openenrich.http.middleware import (
    BodyLimitMiddleware,
    MetricsMiddleware,
    RateLimitHeadersMiddleware,
    body_limit_for,
)
from openenrich.http.responses import JSONBody
from openenrich.http.state import AppState
from openenrich.http.urls import NulInURLMiddleware
from openenrich.surfaces import SURFACES
from openenrich.tenancy.ratelimit import RateLimiter, make_rate_limiter
from openenrich.tenancy.service import KeyCache, KeyUseTracker
from openenrich.web.fetch import Fetcher

DESCRIPTION = """\
OpenEnrich serves five hosted-service APIs on one server: event streams (`/ingest`,
`/streams`, `/v1/streams/ingest`), lead pipelines (`/v1/pipelines`, …), entity enrichment
(`/api/…`) and verification runs (`/api/v1/…`). Authenticate with
`Authorization: Bearer <key>` or `X-API-Key: <key>`.
"""


def create_app(
    settings: Settings | None = None, *, freeze_gc_after_startup: bool = False
) -> FastAPI:
    """The app. `freeze_gc_after_startup` is for a server process (`openenrich serve`)."""
    settings = settings or Settings()
    metrics = HttpMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = state.add(Database.from_settings(settings))
        state.add(make_rate_limiter(settings, database), RateLimiter)
        state.add(KeyUseTracker(settings.last_used_resolution_seconds))
        state.add(KeyCache())
        fetcher = state.add(Fetcher(settings))
        async with AsyncExitStack() as surfaces:
            surfaces.push_async_callback(database.dispose)
            surfaces.push_async_callback(fetcher.close)
            for surface in SURFACES:
                if surface.lifespan is not None:
                    await surfaces.enter_async_context(surface.lifespan(state))
            jobs = state.add(background.jobs_runtime(settings, database))
            await jobs.start(run_workers=settings.workers_in_serve)
            surfaces.push_async_callback(jobs.stop)
            if freeze_gc_after_startup:
                background.freeze_startup_objects()
            yield

    app = FastAPI(
        title="OpenEnrich",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        default_response_class=JSONBody,
        docs_url=None,  # /docs and /redoc serve their assets themselves: install_docs
        redoc_url=None,
    )
    state = AppState(settings)
    state.add(metrics)
    app.state.openenrich = state
    install_error_handlers(app)
    install_docs(app)
    for surface in SURFACES:
        for router in surface.routers:
            app.include_router(router)
    # Added last runs first: metrics see every request, including refused bodies.
    app.add_middleware(NulInURLMiddleware)
    app.add_middleware(
        BodyLimitMiddleware,
        limit_for=body_limit_for(settings),
        read_timeout=settings.body_read_timeout_seconds,
    )
    app.add_middleware(RateLimitHeadersMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app

"""The one ASGI app: every component's routers, the shared middleware, and the process
lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from openenrich import __version__, background
from openenrich.components import COMPONENTS
from openenrich.config import Settings
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
        async with background.started(state, api=True, run_workers=settings.workers_in_serve):
            if freeze_gc_after_startup:
                await background.warm_up(state)
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
    for component in COMPONENTS:
        for router in component.routers:
            app.include_router(router)
    # Added last runs first: metrics see every request, including refused bodies.
    app.add_middleware(NulInURLMiddleware)
    app.add_middleware(
        BodyLimitMiddleware,
        limit_for=body_limit_for(settings),
        read_timeout=settings.body_read_timeout_seconds,
    )
    app.add_middleware(RateLimitHeadersMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics, access_log=settings.access_log)
    return app

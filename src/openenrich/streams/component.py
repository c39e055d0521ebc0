"""The streams surface: its routes, its tables, and its runtime (the lake engine, the
stream registry, the stats writer, the query sandbox) for the API process's life."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from openenrich.component import Component
from openenrich.enrichers.registry import EnricherEnv
from openenrich.http.state import AppState
from openenrich.jobs.runtime import JobsRuntime
from openenrich.streams import models, routes, runtime, template_routes


@asynccontextmanager
async def lifespan(state: AppState) -> AsyncIterator[None]:
    streams = state.add(
        await runtime.start(
            state.settings,
            state.database,
            lambda: state.get(JobsRuntime).hub,
            state.get(EnricherEnv),
        )
    )
    try:
        yield
    finally:
        await runtime.stop(streams)


COMPONENT = Component(
    name="streams",
    routers=[routes.router, template_routes.router],
    models=models,
    api_lifespan=lifespan,
)

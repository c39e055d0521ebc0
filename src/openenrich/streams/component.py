"""The streams surface: its routes, its tables, and its runtime (the lake engine, the
stream registry, the stats writer, the query sandbox) for the API process's life."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from openenrich.component import Component
from openenrich.enrichers.registry import EnricherEnv
from openenrich.http.state import AppState
from openenrich.jobs.notify import JobHub
from openenrich.jobs.runtime import JobsRuntime
from openenrich.streams import models, replay_routes, routes, runtime, tasks, template_routes


@asynccontextmanager
async def lifespan(state: AppState) -> AsyncIterator[None]:
    def hub() -> JobHub:
        # The jobs runtime starts after the components: a flush before it (recovery at
        # startup) wakes nobody here, and the dispatcher finds its work when it polls.
        try:
            return state.get(JobsRuntime).hub
        except LookupError:
            return JobHub()

    streams = state.add(
        await runtime.start(state.settings, state.database, hub, state.get(EnricherEnv))
    )
    try:
        yield
    finally:
        await runtime.stop(streams)


COMPONENT = Component(
    name="streams",
    routers=[routes.router, template_routes.router, replay_routes.router],
    models=models,
    api_lifespan=lifespan,
    jobs=[tasks.replay_spec()],
)

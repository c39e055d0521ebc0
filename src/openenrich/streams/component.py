"""The streams surface: its routes, its tables, and its runtime (the lake engine, the
stream registry, the stats writer, the query sandbox) for the API process's life."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from openenrich.component import Component
from openenrich.http.state import AppState
from openenrich.streams import models, routes, runtime


@asynccontextmanager
async def lifespan(state: AppState) -> AsyncIterator[None]:
    streams = state.add(await runtime.start(state.settings, state.database))
    try:
        yield
    finally:
        await runtime.stop(streams)


COMPONENT = Component(name="streams", routers=[routes.router], models=models, api_lifespan=lifespan)

"""The streams surface: its routes, its tables, and its runtime (the lake engine, the
stream registry, the stats writer, the query sandbox) for the API process's life."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from openenrich.http.state import AppState
from openenrich.streams import models, routes, runtime
from openenrich.surface import Surface


@asynccontextmanager
async def lifespan(state: AppState) -> AsyncIterator[None]:
    streams = state.add(await runtime.start(state.settings, state.database))
    try:
        yield
    finally:
        await runtime.stop(streams)


SURFACE = Surface(name="streams", routers=[routes.router], models=models, lifespan=lifespan)

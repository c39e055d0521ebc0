"""The enrichers' part of the server: the session state table and its housekeeping, and
one `EnricherEnv` per process (its shared readers opened once, closed at the end), which
the stream flusher finds with `state.get(EnricherEnv)`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from openenrich.component import Component
from openenrich.enrichers import models
from openenrich.enrichers.registry import EnricherEnv
from openenrich.enrichers.session import purge_sessions
from openenrich.http.state import AppState


@asynccontextmanager
async def lifespan(state: AppState) -> AsyncIterator[None]:
    env = state.add(EnricherEnv(state.settings))
    try:
        yield
    finally:
        env.close()


COMPONENT = Component(
    name="enrichers", models=models, lifespan=lifespan, housekeeping=[purge_sessions]
)

"""The LLM gateway: provider keys' routes, the keys' and calls' tables, and the gateway
itself for the API process's life."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from openenrich.component import Component
from openenrich.http.state import AppState
from openenrich.llm import models, routes
from openenrich.llm.gateway import Gateway
from openenrich.secretbox import load_secret_box


@asynccontextmanager
async def lifespan(state: AppState) -> AsyncIterator[None]:
    gateway = state.add(Gateway(state.settings, state.database, load_secret_box(state.settings)))
    try:
        yield
    finally:
        await gateway.close()


COMPONENT = Component(name="llm", routers=[routes.router], models=models, lifespan=lifespan)

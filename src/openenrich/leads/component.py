"""The lead-pipelines surface: its routes, its tables, its enrichment and validation jobs.

Its routes are a module per part of the reference (`*_routes.py`), each with a router.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from openenrich.component import Component
from openenrich.http.state import AppState
from openenrich.leads import (
    column_routes,
    enrichment_routes,
    marks,
    models,
    pipeline_routes,
    tasks,
    validation_routes,
)
from openenrich.leads.upload_slots import UploadSlots, make_upload_slots


@asynccontextmanager
async def api_lifespan(state: AppState) -> AsyncIterator[None]:
    state.add(make_upload_slots(state.settings, state.database), UploadSlots)
    yield


COMPONENT = Component(
    name="leads",
    routers=[
        pipeline_routes.router,
        column_routes.router,
        enrichment_routes.router,
        validation_routes.router,
    ],
    models=models,
    api_lifespan=api_lifespan,
    jobs=[tasks.enrichment_spec(), tasks.validation_spec()],
    housekeeping=[marks.purge],
)

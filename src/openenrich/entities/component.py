"""The entity-enrichment surface: its routes, its tables, its jobs."""

from __future__ import annotations

from openenrich.component import Component
from openenrich.entities import (
    enrichment,
    enrichment_routes,
    fusion_routes,
    llm_routes,
    models,
    record_routes,
    schema_jobs,
    schema_routes,
)

COMPONENT = Component(
    name="entities",
    routers=[
        schema_routes.router,
        enrichment_routes.router,
        llm_routes.router,
        record_routes.router,
        fusion_routes.router,
    ],
    models=models,
    jobs=[enrichment.spec(), schema_jobs.generation_spec(), schema_jobs.edit_spec()],
)

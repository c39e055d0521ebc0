"""The entity-enrichment surface: its routes, its tables, its jobs."""

from __future__ import annotations

from openenrich.component import Component
from openenrich.entities import enrichment, enrichment_routes, llm_routes, models, record_routes

COMPONENT = Component(
    name="entities",
    routers=[llm_routes.router, enrichment_routes.router, record_routes.router],
    models=models,
    jobs=[enrichment.spec()],
)

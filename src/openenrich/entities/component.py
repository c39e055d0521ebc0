"""The entity-enrichment surface: its routes, its tables, its jobs."""

from __future__ import annotations

from openenrich.component import Component
from openenrich.entities import llm_routes, models

COMPONENT = Component(name="entities", routers=[llm_routes.router], models=models)

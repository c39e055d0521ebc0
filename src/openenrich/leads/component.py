"""The lead-pipelines surface: its routes, its tables, its enrichment and validation jobs."""

from __future__ import annotations

from openenrich.component import Component
from openenrich.leads import models, routes

COMPONENT = Component(name="leads", routers=[routes.router], models=models)

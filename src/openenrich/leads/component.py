"""The lead-pipelines surface: its routes, its tables, its enrichment and validation jobs.

Its routes are a module per part of the reference (`*_routes.py`), each with a router.
"""

from __future__ import annotations

from openenrich.component import Component
from openenrich.leads import (
    column_routes,
    enrichment_routes,
    models,
    tasks,
    validation_routes,
)

COMPONENT = Component(
    name="leads",
    routers=[column_routes.router, enrichment_routes.router, validation_routes.router],
    models=models,
    jobs=[tasks.enrichment_spec(), tasks.validation_spec()],
)

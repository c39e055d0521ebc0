"""Destinations: their routes, their tables, the delivery loop (in every process that runs
workers), and the housekeeping that forgets delivered batches."""

from __future__ import annotations

from openenrich.component import Component
from openenrich.streams.destinations import models, routes
from openenrich.streams.destinations.delivery import DeliveryLoop, purge_delivered

COMPONENT = Component(
    name="destinations",
    routers=[routes.router],
    models=models,
    services=[DeliveryLoop.for_runtime],
    housekeeping=[purge_delivered],
)

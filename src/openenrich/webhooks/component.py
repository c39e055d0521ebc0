"""Webhooks: the endpoints' routes, the outbox's tables, and the dispatcher that delivers
from the outbox beside the workers."""

from __future__ import annotations

from openenrich.component import Component
from openenrich.webhooks import models, routes
from openenrich.webhooks.dispatcher import Dispatcher

COMPONENT = Component(
    name="webhooks",
    routers=[routes.router],
    models=models,
    services=[lambda runtime: Dispatcher(runtime.database, runtime.hub, runtime.settings)],
)

"""The verification runs surface: its routes, its tables, and the run as a job kind."""

from __future__ import annotations

from openenrich.component import Component
from openenrich.verify import models, routes, tasks

COMPONENT = Component(
    name="verify", routers=[routes.router], models=models, jobs=[tasks.run_spec()]
)

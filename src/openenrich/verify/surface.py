"""The verification runs surface: its routes, its tables, and the run as a job kind."""

from __future__ import annotations

from openenrich.surface import Surface
from openenrich.verify import models, routes, tasks

SURFACE = Surface(name="verify", routers=[routes.router], models=models, jobs=[tasks.run_spec()])

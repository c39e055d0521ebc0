from __future__ import annotations

from openenrich.component import Component
from openenrich.console import routes

COMPONENT = Component(name="console", routers=[routes.router])

"""Every part of the server, in one list: add a package's `Surface` here and the app,
the workers and Alembic all know it (see surface.py).

Core and early platform packages cannot import `Surface` (it sits above them), so theirs
are written here; later packages declare their own in their `surface.py`.
"""

from __future__ import annotations

from sqlalchemy import MetaData

from openenrich.billing import models as billing_models
from openenrich.db.base import Base
from openenrich.http import system
from openenrich.jobs import idempotency
from openenrich.jobs import models as jobs_models
from openenrich.lake import models as lake_models
from openenrich.llm.surface import SURFACE as LLM
from openenrich.streams.surface import SURFACE as STREAMS
from openenrich.surface import Surface
from openenrich.tenancy import models as tenancy_models
from openenrich.tenancy import routes as tenancy_routes
from openenrich.verify.surface import SURFACE as VERIFY
from openenrich.webhooks.surface import SURFACE as WEBHOOKS

SYSTEM = Surface(name="system", routers=[system.router])
TENANCY = Surface(name="tenancy", routers=[tenancy_routes.router], models=tenancy_models)
JOBS = Surface(name="jobs", models=jobs_models, housekeeping=[idempotency.purge])
LAKE = Surface(name="lake", models=lake_models)
BILLING = Surface(name="billing", models=billing_models)

# Routers are included in this order, lifespans entered in it (and left in reverse).
SURFACES: tuple[Surface, ...] = (
    SYSTEM,
    TENANCY,
    JOBS,
    LAKE,
    BILLING,
    STREAMS,
    VERIFY,
    WEBHOOKS,
    LLM,
)


def metadata() -> MetaData:
    """Every table of every surface (each `models` module was imported above)."""
    return Base.metadata

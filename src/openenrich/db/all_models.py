"""Imports every package's tables so `Base.metadata` is complete (for Alembic and tests)."""

from openenrich.billing import models as billing_models
from openenrich.db.base import Base
from openenrich.jobs import models as jobs_models
from openenrich.lake import models as lake_models
from openenrich.llm import models as llm_models
from openenrich.streams import models as streams_models
from openenrich.tenancy import models as tenancy_models
from openenrich.verify import models as verify_models
from openenrich.webhooks import models as webhooks_models

metadata = Base.metadata

__all__ = [
    "billing_models",
    "jobs_models",
    "lake_models",
    "llm_models",
    "metadata",
    "streams_models",
    "tenancy_models",
    "verify_models",
    "webhooks_models",
]

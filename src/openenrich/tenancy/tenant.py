"""Who acts and where: the types every package passes around, and the one tenant filter.

Every row a user owns carries `org_id` and `environment` (`db.base.TenantMixin`); a query
for a tenant's rows filters on both with `tenant.owns(Model)`, so another tenant's row is
simply not found (a 404), and no query can forget the environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ColumnElement, and_

from openenrich.db.base import TenantMixin
from openenrich.tenancy.roles import Environment, Role


@dataclass(frozen=True, slots=True)
class Tenant:
    """Where a request acts: one organisation's live or test environment."""

    org_id: str
    environment: Environment

    @property
    def is_test(self) -> bool:
        return self.environment is Environment.TEST

    def owns(self, model: type[TenantMixin]) -> ColumnElement[bool]:
        """The WHERE clause for this tenant's rows of `model`."""
        return and_(model.org_id == self.org_id, model.environment == self.environment.value)


@dataclass(frozen=True, slots=True)
class PlanLimits:
    name: str
    requests_per_second: float | None
    events_per_month: int | None
    lead_quota: int | None
    credit_policy: str
    max_credits: Decimal | None


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: a key, its role, and the tenant and plan it acts under."""

    key_id: str
    key_prefix: str
    role: Role
    tenant: Tenant
    org_name: str
    plan: PlanLimits
    last_used_at: datetime | None = None
    expires_at: datetime | None = None
    auto_approve: bool = False

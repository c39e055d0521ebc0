"""Finding one of a tenant's rows by the id in a path or a body.

Ids are UUIDs: anything else cannot name a row, and is answered like a row of another
tenant, with the resource's 404, without asking the database.
"""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.db.base import Base, TenantMixin
from openenrich.errors import NotFound
from openenrich.ids import is_uuid
from openenrich.tenancy.tenant import Tenant

M = TypeVar("M", bound=Base)


async def owned(
    session: AsyncSession, tenant: Tenant, model: type[M], row_id: str, not_found: str
) -> M:
    """The tenant's row of `model` with this id, or NotFound(`not_found`)."""
    row = await session.get(model, row_id) if is_uuid(row_id) else None
    if (
        row is None
        or not isinstance(row, TenantMixin)
        or (row.org_id, row.environment) != (tenant.org_id, tenant.environment.value)
    ):
        raise NotFound(not_found)
    return row

"""Records: every model's result and every fusion, listed, read and deleted by tenant.

Listing is newest first, with filters on the type, schema, model, creation time and the
entity's name (`q`: a case-insensitive substring of `entity_name`, which is stored
lower-cased). Deleting takes up to 100 ids; ids that are not the tenant's records are
skipped, as ids that do not exist are: the answer counts what was deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.db import table
from openenrich.entities.models import EntityRecord
from openenrich.entities.schemas import RecordList, RecordOut, RecordSummary
from openenrich.errors import BadRequest, NotFound
from openenrich.tenancy.tenant import Tenant

MAX_DELETE = 100

_records = table(EntityRecord)
_SUMMARY = [_records.c[name] for name in RecordSummary.model_fields]


@dataclass(frozen=True, slots=True)
class Filters:
    type: str | None = None
    schema_id: str | None = None
    model: str | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None
    q: str | None = None


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _conditions(tenant: Tenant, filters: Filters) -> list[ColumnElement[bool]]:
    conditions = [
        _records.c.org_id == tenant.org_id,
        _records.c.environment == tenant.environment.value,
    ]
    if filters.type is not None:
        conditions.append(_records.c.type == filters.type)
    if filters.schema_id is not None:
        conditions.append(_records.c.schema_id == filters.schema_id)
    if filters.model is not None:
        conditions.append(_records.c.model == filters.model)
    if filters.date_from is not None:
        conditions.append(_records.c.created_at >= filters.date_from)
    if filters.date_to is not None:
        conditions.append(_records.c.created_at <= filters.date_to)
    if filters.q:
        pattern = f"%{_escape_like(filters.q.strip().lower())}%"
        conditions.append(_records.c.entity_name.like(pattern, escape="\\"))
    return conditions


async def page(
    session: AsyncSession, tenant: Tenant, filters: Filters, number: int, size: int
) -> RecordList:
    where = and_(*_conditions(tenant, filters))
    total = int(await session.scalar(select(func.count()).select_from(_records).where(where)) or 0)
    rows = await session.execute(
        select(*_SUMMARY)
        .where(where)
        .order_by(_records.c.created_at.desc(), _records.c.id.desc())
        .limit(size)
        .offset((number - 1) * size)
    )
    return RecordList(
        records=[RecordSummary.model_validate(dict(row._mapping)) for row in rows],
        total=total,
        page=number,
        page_size=size,
    )


async def get(session: AsyncSession, tenant: Tenant, record_id: str) -> RecordOut:
    row = None
    if len(record_id) <= 36:
        row = (
            await session.execute(
                select(_records).where(_records.c.id == record_id, *_conditions(tenant, Filters()))
            )
        ).one_or_none()
    if row is None:
        raise NotFound("Record not found")
    return RecordOut.model_validate(dict(row._mapping))


async def delete_many(session: AsyncSession, tenant: Tenant, ids: list[str]) -> int:
    if len(ids) > MAX_DELETE:
        raise BadRequest(f"At most {MAX_DELETE} ids per request ({len(ids)} given)")
    wanted = sorted({i for i in ids if isinstance(i, str) and len(i) <= 36})
    if not wanted:
        return 0
    deleted: Any = await session.execute(
        delete(_records)
        .where(_records.c.id.in_(wanted), *_conditions(tenant, Filters()))
        .returning(_records.c.id)
    )
    return len(list(deleted))

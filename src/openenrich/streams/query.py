"""Read-only SQL over a tenant's streams, run in the lake's query sandbox."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.errors import BadRequest
from openenrich.lake import manifest
from openenrich.lake.query import Format, QueryResult
from openenrich.streams.configuration import list_streams
from openenrich.streams.runtime import Streams
from openenrich.tenancy.tenant import Tenant


async def run_query(
    streams: Streams, session: AsyncSession, tenant: Tenant, sql: str, format: Format
) -> QueryResult:
    """Run read-only SQL with one view per stream of this tenant, and `dlq.<stream>` for
    its dead letters. At most so many at once per tenant (429) and per server (503)."""
    if not sql.strip():
        raise BadRequest("sql is required")
    owner = (tenant.org_id, tenant.environment.value)
    views: dict[str, list[tuple[str, int]]] = {
        stream.stream_id: [] for stream in await list_streams(session, tenant)
    }
    for file in await manifest.files(session, *owner, kind="data"):
        views.setdefault(file.stream_id, []).append((file.path, file.bytes))
    letters: dict[str, list[tuple[str, int]]] = {stream_id: [] for stream_id in views}
    for file in await manifest.files(session, *owner, kind="dlq"):
        letters.setdefault(file.stream_id, []).append((file.path, file.bytes))
    return await asyncio.wrap_future(streams.sandbox.submit(owner, views, letters, sql, format))

"""Reading the manifest: which Parquet files an owner's streams have in the lake.

The flusher writes the rows (`engine.py`, in the transaction that records a flush);
whoever needs to know what is in the lake (queries, dead letters, usage) asks here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.lake.models import LakeFile


@dataclass(frozen=True, slots=True)
class DayTotals:
    """One stream's files of one day."""

    day: date
    stream_id: str
    rows: int
    bytes: int
    files: int


async def files(
    session: AsyncSession,
    org_id: str,
    environment: str,
    *,
    kind: str,
    stream_id: str | None = None,
    since: date | None = None,
) -> list[LakeFile]:
    """The owner's files of `kind` ("data" or "dlq"), oldest day first."""
    query = select(LakeFile).where(
        LakeFile.org_id == org_id, LakeFile.environment == environment, LakeFile.kind == kind
    )
    if stream_id is not None:
        query = query.where(LakeFile.stream_id == stream_id)
    if since is not None:
        query = query.where(LakeFile.day >= since)
    return list(await session.scalars(query.order_by(LakeFile.day, LakeFile.path)))


async def daily_totals(
    session: AsyncSession,
    org_id: str,
    environment: str,
    *,
    start: date,
    end: date,
    stream_id: str | None = None,
) -> list[DayTotals]:
    """Events, bytes and files of data stored per day and stream, newest day first."""
    query = (
        select(
            LakeFile.day,
            LakeFile.stream_id,
            func.sum(LakeFile.rows),
            func.sum(LakeFile.bytes),
            func.count(),
        )
        .where(
            LakeFile.org_id == org_id,
            LakeFile.environment == environment,
            LakeFile.kind == "data",
            LakeFile.day >= start,
            LakeFile.day <= end,
        )
        .group_by(LakeFile.day, LakeFile.stream_id)
        .order_by(LakeFile.day.desc(), LakeFile.stream_id)
    )
    if stream_id is not None:
        query = query.where(LakeFile.stream_id == stream_id)
    return [
        DayTotals(day, stream, int(rows), int(size), int(count))
        for day, stream, rows, size, count in await session.execute(query)
    ]

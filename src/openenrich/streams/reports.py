"""The reports: usage (what the lake holds per day and stream), live ingest stats, and
recent ingest errors."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.errors import BadRequest
from openenrich.ids import utcnow
from openenrich.lake import manifest
from openenrich.streams.models import IngestError, StatsMinute
from openenrich.streams.runtime import Streams
from openenrich.streams.schemas import (
    HourCounts,
    IngestErrorOut,
    IngestErrors,
    LiveStats,
    MinuteCounts,
    StreamsUsage,
    UsageDay,
    UsageTotals,
)
from openenrich.streams.stats import ERROR_TYPES
from openenrich.tenancy.tenant import Tenant


def parse_day(value: str | None, name: str, default: date) -> date:
    if value is None:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name} must be a date, YYYY-MM-DD") from None


async def usage(
    session: AsyncSession,
    tenant: Tenant,
    start_date: str | None,
    end_date: str | None,
    stream_id: str | None,
) -> StreamsUsage:
    today = utcnow().date()
    start = parse_day(start_date, "start_date", today - timedelta(days=30))
    end = parse_day(end_date, "end_date", today)
    if start > end:
        raise BadRequest("start_date must not be after end_date")
    days = await manifest.daily_totals(
        session,
        tenant.org_id,
        tenant.environment.value,
        start=start,
        end=end,
        stream_id=stream_id,
    )
    totals = UsageTotals(
        event_count=sum(day.rows for day in days),
        bytes_stored=sum(day.bytes for day in days),
        file_count=sum(day.files for day in days),
    )
    rows = [
        UsageDay(
            date=day.day,
            stream_id=day.stream_id,
            event_count=day.rows,
            bytes_stored=day.bytes,
            file_count=day.files,
        )
        for day in days
    ]
    return StreamsUsage(usage=rows, totals=totals)


async def live_stats(streams: Streams, session: AsyncSession, tenant: Tenant) -> LiveStats:
    await streams.stats.flush()  # include what this process counted since the last flush
    now = utcnow()
    this_minute = now.replace(second=0, microsecond=0)
    this_hour = this_minute.replace(minute=0)
    day_ago = this_hour - timedelta(hours=23)
    rows = await session.execute(
        select(
            StatsMinute.minute, StatsMinute.requests, StatsMinute.events, StatsMinute.errors
        ).where(
            tenant.owns(StatsMinute),
            StatsMinute.minute >= day_ago,
        )
    )
    minutes: dict[datetime, tuple[int, int, int]] = {}
    hours: dict[datetime, list[int]] = {}
    for minute, requests, events, errors in rows:
        minutes[minute] = (requests, events, errors)
        totals = hours.setdefault(minute.replace(minute=0), [0, 0, 0])
        totals[0] += requests
        totals[1] += events
        totals[2] += errors
    histogram = []
    for offset in range(59, -1, -1):
        minute = this_minute - timedelta(minutes=offset)
        requests, events, errors = minutes.get(minute, (0, 0, 0))
        histogram.append(
            MinuteCounts(
                minute=minute.strftime("%Y-%m-%dT%H:%M"),
                events=events,
                requests=requests,
                errors=errors,
            )
        )
    hourly = []
    for offset in range(23, -1, -1):
        hour = this_hour - timedelta(hours=offset)
        requests, events, errors = hours.get(hour, [0, 0, 0])
        hourly.append(
            HourCounts(
                hour=hour.strftime("%Y-%m-%dT%H"), events=events, requests=requests, errors=errors
            )
        )
    current = hours.get(this_hour, [0, 0, 0])
    recent = any(
        minutes.get(this_minute - timedelta(minutes=offset), (0, 0, 0))[0] for offset in range(5)
    )
    return LiveStats(
        status="ok" if recent else "idle",
        customer_id=tenant.org_id,
        hour=this_hour.strftime("%Y-%m-%dT%H"),
        requests=current[0],
        events=current[1],
        errors=current[2],
        histogram=histogram,
        hourly=hourly,
    )


async def recent_errors(
    streams: Streams, session: AsyncSession, tenant: Tenant, limit: int, stream_id: str | None
) -> IngestErrors:
    await streams.stats.flush()
    since = utcnow() - timedelta(hours=24)
    scope = [
        tenant.owns(IngestError),
    ]
    if stream_id is not None:
        scope.append(IngestError.stream_id == stream_id)
    counted = await session.execute(
        select(IngestError.type, func.count())
        .where(*scope, IngestError.created_at >= since)
        .group_by(IngestError.type)
    )
    counts: dict[str, int] = {kind: int(number) for kind, number in counted}
    recent = await session.scalars(
        select(IngestError)
        .where(*scope)
        .order_by(IngestError.created_at.desc(), IngestError.id.desc())
        .limit(limit)
    )
    return IngestErrors(
        customer_id=tenant.org_id,
        errors_24h=sum(counts.values()),
        by_type={kind: counts.get(kind, 0) for kind in ERROR_TYPES},
        recent=[IngestErrorOut.model_validate(error) for error in recent],
    )

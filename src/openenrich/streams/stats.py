"""Ingest counters (per tenant and minute), monthly usage, and recent errors.

Requests add to counters in memory; every `stats_flush_seconds` they are added to the
database with atomic increments, so several processes on one PostgreSQL add up, and a
restart keeps what was flushed (a crash loses at most the last interval).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from openenrich.db import Database
from openenrich.db.text import column_length, storable
from openenrich.ids import new_id, utcnow
from openenrich.looping import BackgroundLoop
from openenrich.streams.models import IngestError, IngestKey, StatsMinute, UsageMonth
from openenrich.tenancy.tenant import Tenant

logger = logging.getLogger("openenrich.streams.stats")

ERROR_TYPES = ("validation", "schema_rejection", "rate_limit", "processing")
MAX_PENDING_ERRORS = 1000
REQUEST_BODY_LIMIT = 4096
# A rejected request's stream id, message and path are the client's text: cut to what
# their columns hold on PostgreSQL, which would refuse the whole batch of rows otherwise.
STREAM_ID_LENGTH = column_length(IngestError.stream_id)
MESSAGE_LENGTH = column_length(IngestError.message)
ENDPOINT_LENGTH = column_length(IngestError.endpoint)


def minute_of(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def month_of(moment: datetime) -> str:
    return moment.strftime("%Y-%m")


def seconds_until_next_month(moment: datetime) -> int:
    """Whole seconds from `moment` (UTC) until the monthly event quota starts afresh; at
    least 1, so a Retry-After never invites an immediate retry."""
    first = (
        moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0) + timedelta(days=32)
    ).replace(day=1)
    return max(1, math.ceil((first - moment).total_seconds()))


class StreamStats:
    def __init__(self, database: Database, flush_seconds: float) -> None:
        self._database = database
        self._flush_seconds = flush_seconds
        self._minutes: defaultdict[tuple[str, str, datetime], list[int]] = defaultdict(
            lambda: [0, 0, 0]
        )
        self._months: defaultdict[tuple[str, str, str], int] = defaultdict(int)
        self._errors: list[dict[str, object]] = []
        self._dropped_errors = 0
        self._month_cache: dict[tuple[str, str, str], tuple[int, float]] = {}
        self._lock = asyncio.Lock()
        self._loop = BackgroundLoop(self._flush_every_interval, name="stream-stats")

    # -- recording (no I/O) ---------------------------------------------------------------

    def count(self, tenant: Tenant, *, events: int = 0) -> None:
        """One ingest request (failed or not) and the events it brought. Errors are
        counted by `error`, never here."""
        now = datetime.now(UTC)
        bucket = self._minutes[(tenant.org_id, tenant.environment.value, minute_of(now))]
        bucket[0] += 1
        bucket[1] += events
        if events:
            self._months[(tenant.org_id, tenant.environment.value, month_of(now))] += events

    def _add_error_count(self, tenant: Tenant) -> None:
        now = datetime.now(UTC)
        self._minutes[(tenant.org_id, tenant.environment.value, minute_of(now))][2] += 1

    def error(
        self,
        tenant: Tenant,
        *,
        kind: str,
        message: str,
        endpoint: str,
        stream_id: str | None = None,
        body: bytes | None = None,
    ) -> None:
        """Record an error: one entry on /errors and one in /stats' `errors`, together, so
        the two never disagree about what an error is (a refused request, events sent to
        the dead-letter queue, a rate limit, a flush that failed). Past
        MAX_PENDING_ERRORS waiting to be written, the entry is dropped but still counted:
        a flood of errors keeps its true number on /stats."""
        self._add_error_count(tenant)
        if len(self._errors) >= MAX_PENDING_ERRORS:
            self._dropped_errors += 1
            return
        text = None
        if body is not None:
            text = body[:REQUEST_BODY_LIMIT].decode("utf-8", "replace")
            if len(body) > REQUEST_BODY_LIMIT:
                text += f"… ({len(body)} bytes)"
        self._errors.append(
            {
                "id": new_id("err"),
                "org_id": tenant.org_id,
                "environment": tenant.environment.value,
                "stream_id": None if stream_id is None else storable(stream_id, STREAM_ID_LENGTH),
                "type": kind,
                "message": storable(message, MESSAGE_LENGTH),
                "endpoint": storable(endpoint, ENDPOINT_LENGTH),
                "request_body": None if text is None else storable(text),
                "created_at": utcnow(),
            }
        )

    # -- monthly usage -------------------------------------------------------------------

    async def month_to_date(self, tenant: Tenant) -> int:
        """Events this month: the database's count (refreshed every few seconds) plus what
        this process has not flushed yet."""
        month = month_of(datetime.now(UTC))
        key = (tenant.org_id, tenant.environment.value, month)
        cached = self._month_cache.get(key)
        if cached is None or cached[1] < time.monotonic():
            stored = await self._database.read(
                lambda connection: connection.execute(
                    select(func.coalesce(func.sum(UsageMonth.events), 0)).where(
                        UsageMonth.org_id == key[0],
                        UsageMonth.environment == key[1],
                        UsageMonth.month == month,
                    )
                ).scalar_one()
            )
            cached = (int(stored), time.monotonic() + 2)
            self._month_cache[key] = cached
        return cached[0] + self._months.get(key, 0)

    # -- flushing ------------------------------------------------------------------------

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        await self.flush()

    async def _flush_every_interval(self) -> None:
        next_prune = time.monotonic()
        while True:
            await asyncio.sleep(self._flush_seconds)
            try:
                await self.flush()
                if time.monotonic() >= next_prune:
                    await self.prune(keep_stats=timedelta(hours=48), keep_errors=timedelta(days=7))
                    next_prune = time.monotonic() + 3600
            except Exception:
                logger.exception("could not write ingest stats; keeping them for the next try")

    async def flush(self) -> None:
        async with self._lock:
            minutes, self._minutes = self._minutes, defaultdict(lambda: [0, 0, 0])
            months, self._months = self._months, defaultdict(int)
            errors, self._errors = self._errors, []
            if not (minutes or months or errors):
                return
            try:
                await self._write(minutes, months, errors)
            except BaseException:
                for key, (requests, events, failures) in minutes.items():  # try again later
                    bucket = self._minutes[key]
                    bucket[0] += requests
                    bucket[1] += events
                    bucket[2] += failures
                for month_key, events in months.items():
                    self._months[month_key] += events
                self._errors = (errors + self._errors)[:MAX_PENDING_ERRORS]
                raise
            for (org_id, environment, month), _events in months.items():
                self._month_cache.pop((org_id, environment, month), None)

    async def _write(
        self,
        minutes: dict[tuple[str, str, datetime], list[int]],
        months: dict[tuple[str, str, str], int],
        errors: list[dict[str, object]],
    ) -> None:
        insert = postgresql.insert if self._database.dialect == "postgresql" else sqlite.insert
        async with self._database.session() as session:
            if minutes:
                rows = [
                    {
                        "org_id": o,
                        "environment": e,
                        "minute": m,
                        "requests": r,
                        "events": v,
                        "errors": x,
                    }
                    for (o, e, m), (r, v, x) in minutes.items()
                ]
                statement = insert(StatsMinute).values(rows)
                statement = statement.on_conflict_do_update(
                    index_elements=["org_id", "environment", "minute"],
                    set_={
                        "requests": StatsMinute.requests + statement.excluded.requests,
                        "events": StatsMinute.events + statement.excluded.events,
                        "errors": StatsMinute.errors + statement.excluded.errors,
                    },
                )
                await session.execute(statement)
            if months:
                rows = [
                    {"org_id": o, "environment": e, "month": m, "events": v}
                    for (o, e, m), v in months.items()
                ]
                upsert = insert(UsageMonth).values(rows)
                upsert = upsert.on_conflict_do_update(
                    index_elements=["org_id", "environment", "month"],
                    set_={"events": UsageMonth.events + upsert.excluded.events},
                )
                await session.execute(upsert)
            if errors:
                await session.execute(insert(IngestError).values(errors))
            await session.commit()

    async def prune(self, keep_stats: timedelta, keep_errors: timedelta) -> None:
        now = utcnow()
        async with self._database.session() as session:
            await session.execute(delete(StatsMinute).where(StatsMinute.minute < now - keep_stats))
            await session.execute(
                delete(IngestError).where(IngestError.created_at < now - keep_errors)
            )
            await session.execute(  # an Idempotency-Key answers again for 24 hours
                delete(IngestKey).where(
                    IngestKey.created_at < now - timedelta(hours=24), IngestKey.state == "done"
                )
            )
            await session.commit()

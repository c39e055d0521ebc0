"""Event streams: configuration, ingest, dead letters, schema history, usage, stats, errors,
connect and query. Nothing here imports the web framework or commits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb
import msgspec
import orjson
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.config import Settings
from openenrich.db.text import column_length, storable
from openenrich.errors import BadRequest, Conflict, NotFound, RateLimited, ServiceUnavailable
from openenrich.ids import isoformat, new_id, utcnow
from openenrich.lake.engine import BufferFull, FlushedFile, LakeEngine, LogUnavailable
from openenrich.lake.models import LakeFile
from openenrich.lake.parquet import UnreadableBatch
from openenrich.lake.query import Format as QueryFormat
from openenrich.lake.query import QueryResult, QuerySandbox
from openenrich.lake.storage import LakeStorage
from openenrich.streams.fields import Rejection, check_fields
from openenrich.streams.models import (
    SCHEMA_EVENT_KEY,
    STREAM_ID,
    IngestError,
    SchemaEvent,
    SchemaField,
    StatsMinute,
    Stream,
)
from openenrich.streams.parsing import Events, is_object
from openenrich.streams.registry import StreamRegistry
from openenrich.streams.stats import ERROR_TYPES, StreamStats, seconds_until_next_month
from openenrich.tenancy.service import Principal, Tenant

# Field names in the schema tables: the client's keys, which may be longer or hold a NUL.
FIELD_NAME_LENGTH = column_length(SchemaField.field)
# A stream's dead letters are also the query view `<stream>_dlq` (docs/api.md named them
# so first), which a stream with such an id would take.
DLQ_SUFFIX = "_dlq"
SCHEMA_MODES = ("strict", "evolve", "flex")
_ENCODER = msgspec.json.Encoder()
# A dead letter's original event is answered as the JSON the client sent, never parsed
# again: it was refused, and may hold what a parser refuses (1e400 is out of a float's
# range).
_LETTERS = msgspec.json.Decoder(list[dict[str, msgspec.Raw]])


@dataclass(slots=True)
class Streams:
    """What the streams surface needs at run time, built once per process."""

    settings: Settings
    storage: LakeStorage
    engine: LakeEngine
    registry: StreamRegistry
    stats: StreamStats
    sandbox: QuerySandbox


# -- configuration ----------------------------------------------------------------------


async def list_streams(session: AsyncSession, tenant: Tenant) -> list[Stream]:
    return list(
        await session.scalars(
            select(Stream)
            .where(Stream.org_id == tenant.org_id, Stream.environment == tenant.environment.value)
            .order_by(Stream.created_at, Stream.stream_id)
        )
    )


async def get_stream(session: AsyncSession, tenant: Tenant, stream_id: str) -> Stream:
    stream = await session.scalar(
        select(Stream).where(
            Stream.org_id == tenant.org_id,
            Stream.environment == tenant.environment.value,
            Stream.stream_id == stream_id,
        )
    )
    if stream is None:
        raise NotFound(f"Stream '{stream_id}' not found")
    return stream


def _check_settings(
    schema_mode: Any, fields: Any, template: Any, webhook_url: Any
) -> dict[str, Any] | None:
    if schema_mode not in SCHEMA_MODES:
        raise BadRequest(f"schema_mode must be one of {', '.join(SCHEMA_MODES)}")
    normalised = check_fields(fields)
    if schema_mode == "strict" and not normalised:
        raise BadRequest("a strict stream needs fields to validate against")
    if template is not None:
        raise BadRequest(f"Template '{template}' not found")
    if webhook_url is not None:
        raise BadRequest("webhook_url: forwarding events on flush is not available in this version")
    return normalised


async def create_stream(
    session: AsyncSession,
    tenant: Tenant,
    *,
    stream_id: Any,
    schema_mode: Any = "flex",
    fields: Any = None,
    template: Any = None,
    webhook_url: Any = None,
) -> Stream:
    if not isinstance(stream_id, str) or not stream_id:
        raise BadRequest("stream_id is required")
    if not STREAM_ID.fullmatch(stream_id):
        raise BadRequest("stream_id may contain only letters, digits, '_' and '-' (at most 128)")
    if stream_id.casefold().endswith(DLQ_SUFFIX):
        raise BadRequest(
            f"stream_id may not end in '{DLQ_SUFFIX}': "
            f"that is how the dead letters of stream '{stream_id[: -len(DLQ_SUFFIX)]}' are queried"
        )
    normalised = _check_settings(schema_mode, fields, template, webhook_url)
    existing = await session.scalar(
        select(Stream.id).where(
            Stream.org_id == tenant.org_id,
            Stream.environment == tenant.environment.value,
            Stream.stream_id == stream_id,
        )
    )
    if existing is not None:
        raise Conflict(f"Stream '{stream_id}' already exists")
    stream = Stream(
        id=new_id("stm"),
        org_id=tenant.org_id,
        environment=tenant.environment.value,
        stream_id=stream_id,
        schema_mode=schema_mode,
        fields=normalised,
        template=None,
        version=1,
    )
    session.add(stream)
    await session.flush()
    return stream


async def update_stream(
    session: AsyncSession, tenant: Tenant, stream_id: str, changes: dict[str, Any]
) -> Stream:
    stream = await get_stream(session, tenant, stream_id)
    if "stream_id" in changes and changes["stream_id"] != stream_id:
        raise BadRequest("stream_id cannot be changed")
    schema_mode = changes.get("schema_mode", stream.schema_mode)
    fields = changes.get("fields", stream.fields)
    normalised = _check_settings(
        schema_mode, fields, changes.get("template"), changes.get("webhook_url")
    )
    stream.schema_mode = schema_mode
    stream.fields = normalised
    stream.version += 1
    stream.updated_at = utcnow()
    await session.flush()
    return stream


async def delete_stream(session: AsyncSession, tenant: Tenant, stream_id: str) -> None:
    """Delete the configuration; files already in the lake stay (as the reference warns)."""
    stream = await get_stream(session, tenant, stream_id)
    await session.delete(stream)
    await session.flush()


# -- ingest -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ingested:
    accepted: int
    rejected: int
    buffered: int
    rejections: list[Rejection]


def _array(rows: Sequence[msgspec.Raw]) -> bytes:
    return b"[" + b",".join(bytes(row) for row in rows) + b"]"


async def ingest(streams: Streams, principal: Principal, events: Events) -> Ingested:
    """Validate `events` against their stream and log them; returns once they are durable."""
    tenant = principal.tenant
    config = await streams.registry.get(tenant, events.stream_id)
    if config is None:
        raise NotFound(f"Stream '{events.stream_id}' not found")
    total = len(events.rows)
    limit = principal.plan.events_per_month
    if (
        limit is not None
        and not tenant.is_test
        and await streams.stats.month_to_date(tenant) + total > limit
    ):
        # The quota starts afresh with the month (UTC): that is when a retry can succeed.
        retry_after = seconds_until_next_month(datetime.now(UTC))
        raise RateLimited("Monthly event limit exceeded", headers={"Retry-After": str(retry_after)})

    rejected: list[tuple[msgspec.Raw, Rejection]] = []
    valid_array, valid = events.array, total
    if config.schema_mode == "strict":
        assert config.validator is not None
        checked = events.array if events.checked is events.rows else _array(events.checked)
        if not config.validator.all_valid(checked):
            keep: list[msgspec.Raw] = []
            for row, part in zip(events.rows, events.checked, strict=True):
                rejection = config.validator.check(part)
                if rejection is None:
                    keep.append(row)
                else:
                    rejected.append((row, rejection))
            valid_array, valid = _array(keep), len(keep)
    else:
        for index, row in enumerate(events.rows):
            if not is_object(row):
                raise BadRequest(f"data[{index}] must be an object")

    key = (tenant.org_id, tenant.environment.value, events.stream_id)
    now_us = time.time_ns() // 1000
    appends = []
    if valid:
        appends.append(
            streams.engine.append(
                *key,
                "data",
                valid_array,
                count=valid,
                event_time=events.event_time,
                schema_version=config.version,
                now_us=now_us,
            )
        )
    if rejected:
        rejected_at = isoformat(datetime.fromtimestamp(now_us / 1e6, tz=UTC))
        letters = _ENCODER.encode(
            [
                {"rejected_at": rejected_at, "reason": r.reason, "field": r.field, "original": row}
                for row, r in rejected
            ]
        )
        appends.append(
            streams.engine.append(*key, "dlq", letters, count=len(rejected), now_us=now_us)
        )
    try:
        await asyncio.gather(*appends)  # both records share one group commit
    except BufferFull as error:
        raise ServiceUnavailable(str(error), headers={"Retry-After": "1"}) from None
    except LogUnavailable as error:
        raise ServiceUnavailable(f"events cannot be stored right now: {error}") from None
    streams.stats.count(tenant, events=total)
    return Ingested(
        accepted=valid,
        rejected=len(rejected),
        buffered=streams.engine.buffered(*key),
        rejections=[r for _, r in rejected],
    )


def describe_rejections(rejections: Sequence[Rejection]) -> str:
    first = rejections[0]
    what = f"{first.reason} on '{first.field}'" if first.field else first.reason
    more = f" (and {len(rejections) - 1} more)" if len(rejections) > 1 else ""
    return f"{len(rejections)} event(s) sent to the dead-letter queue: {what}{more}"


async def flush(
    streams: Streams, session: AsyncSession, tenant: Tenant, stream_id: str
) -> list[FlushedFile]:
    await get_stream(session, tenant, stream_id)
    try:
        return await streams.engine.flush_stream(tenant.org_id, tenant.environment.value, stream_id)
    except (OSError, duckdb.Error, UnreadableBatch) as error:
        # The lake's storage failed (disk full, S3 away); the events wait in the log.
        raise ServiceUnavailable(
            f"writing to the lake failed, the events are kept and retried: {error}",
            headers={"Retry-After": "5"},
        ) from None


# -- dead letters ------------------------------------------------------------------------


async def _files(
    session: AsyncSession,
    tenant: Tenant,
    *,
    kind: str,
    stream_id: str | None = None,
    since: date | None = None,
    until: date | None = None,
) -> list[LakeFile]:
    query = select(LakeFile).where(
        LakeFile.org_id == tenant.org_id,
        LakeFile.environment == tenant.environment.value,
        LakeFile.kind == kind,
    )
    if stream_id is not None:
        query = query.where(LakeFile.stream_id == stream_id)
    if since is not None:
        query = query.where(LakeFile.day >= since)
    if until is not None:
        query = query.where(LakeFile.day <= until)
    return list(await session.scalars(query.order_by(LakeFile.day, LakeFile.path)))


def _read_letters(
    storage: LakeStorage, files: list[tuple[str, int]], limit: int
) -> list[dict[str, Any]]:
    db = duckdb.connect(config={"threads": 1})
    try:
        db.execute("SET TimeZone = 'UTC'")
        db.register("letters", storage.dataset(files))
        rows = db.execute(
            "SELECT strftime(rejected_at, '%Y-%m-%dT%H:%M:%S.%gZ') AS rejected_at, reason, field, "
            "original FROM letters ORDER BY rejected_at DESC, _event_id DESC LIMIT ?",
            [limit],
        ).fetchall()
    finally:
        db.close()
    return [
        {"rejected_at": r[0], "reason": r[1], "field": r[2], "original": orjson.Fragment(r[3])}
        for r in rows
    ]


async def dead_letters(
    streams: Streams, session: AsyncSession, tenant: Tenant, stream_id: str, days: int, limit: int
) -> dict[str, Any]:
    await get_stream(session, tenant, stream_id)
    cutoff = utcnow() - timedelta(days=days)
    pending: list[dict[str, Any]] = []
    for record in streams.engine.pending(tenant.org_id, tenant.environment.value, stream_id, "dlq"):
        if record.header.ingested_at >= cutoff.timestamp() * 1e6:
            pending.extend(
                {name: orjson.Fragment(bytes(value)) for name, value in letter.items()}
                for letter in _LETTERS.decode(record.payload)
            )
    pending.reverse()  # newest first
    files = await _files(session, tenant, kind="dlq", stream_id=stream_id, since=cutoff.date())
    stored = (
        await asyncio.to_thread(
            _read_letters, streams.storage, [(f.path, f.bytes) for f in files], limit
        )
        if files and len(pending) < limit
        else []
    )
    return {
        "stream_id": stream_id,
        "dlq_count": len(pending) + sum(f.rows for f in files),
        "events": (pending + stored)[:limit],
    }


# -- schema history (evolve mode) ---------------------------------------------------------


def _upsert(dialect: str) -> Any:
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


async def track_schema(session: AsyncSession, files: Sequence[FlushedFile]) -> None:
    """Compare each flushed batch of an evolve-mode stream with the schema seen so far.

    A field is *new* when it has a value in the batch and was never seen (or declared); its
    type *changed* when its values have another type than the last batch it had values in;
    it is *missing* when a field seen before has no value in any event of the batch. Each
    change is one row whose `event_count` keeps counting the events that show it.
    """
    assert session.bind is not None
    dialect = session.bind.dialect.name
    for file in files:
        if file.kind != "data":
            continue
        stream = await session.scalar(
            select(Stream).where(
                Stream.org_id == file.org_id,
                Stream.environment == file.environment,
                Stream.stream_id == file.stream_id,
            )
        )
        if stream is None or stream.schema_mode != "evolve":
            continue
        scope = {
            "org_id": file.org_id,
            "environment": file.environment,
            "stream_id": file.stream_id,
        }
        known = {
            row.field: row for row in await session.scalars(select(SchemaField).filter_by(**scope))
        }
        now = utcnow()
        # Names as the schema tables hold them on both backends; names that only differ past
        # the cut are one field here.
        seen = {
            storable(column.name, FIELD_NAME_LENGTH): column
            for column in file.columns
            if column.present > 0
        }
        if not known:
            baseline = {name: spec["type"] for name, spec in (stream.fields or {}).items()}
            if not baseline:  # the first batch of an undeclared stream sets the baseline
                baseline = {name: column.type for name, column in seen.items()}
            for name, kind in baseline.items():
                row = SchemaField(id=new_id("fld"), field=name, type=kind, updated_at=now, **scope)
                session.add(row)
                known[name] = row
            await session.flush()

        changes: list[tuple[str, str, str, str, int]] = []
        for name, column in seen.items():
            field = known.get(name)
            if field is None:
                changes.append(("new_field", name, column.type, "", column.present))
                row = SchemaField(
                    id=new_id("fld"), field=name, type=column.type, updated_at=now, **scope
                )
                session.add(row)
                known[name] = row
            elif field.type != column.type:
                changes.append(("type_change", name, column.type, field.type, column.present))
                field.type = column.type
                field.updated_at = now
        for name in known:
            if name not in seen:
                changes.append(("missing_field", name, "", "", file.rows))
        # Changes seen before keep counting the events that show them.
        earlier = await session.scalars(select(SchemaEvent).filter_by(**scope))
        fresh = {(kind, name, detected, previous) for kind, name, detected, previous, _ in changes}
        for event in earlier:
            if (event.type, event.field, event.detected_type, event.previous_type) in fresh:
                continue
            showing = seen.get(event.field)
            if (
                event.type in ("new_field", "type_change")
                and showing is not None
                and showing.type == event.detected_type
            ):
                changes.append(
                    (
                        event.type,
                        event.field,
                        event.detected_type,
                        event.previous_type,
                        showing.present,
                    )
                )
        await session.flush()
        if not changes:
            continue
        statement = _upsert(dialect)(SchemaEvent).values(
            [
                {
                    "id": new_id("sch"),
                    **scope,
                    "type": kind,
                    "field": name,
                    "detected_type": detected,
                    "previous_type": previous,
                    "detected_at": now,
                    "updated_at": now,
                    "event_count": count,
                }
                for kind, name, detected, previous, count in changes
            ]
        )
        statement = statement.on_conflict_do_update(
            index_elements=list(SCHEMA_EVENT_KEY),
            set_={
                "event_count": SchemaEvent.event_count + statement.excluded.event_count,
                "updated_at": statement.excluded.updated_at,
            },
        )
        await session.execute(statement)


async def schema_events(
    session: AsyncSession, tenant: Tenant, stream_id: str, days: int
) -> dict[str, Any]:
    await get_stream(session, tenant, stream_id)
    rows = await session.scalars(
        select(SchemaEvent)
        .where(
            SchemaEvent.org_id == tenant.org_id,
            SchemaEvent.environment == tenant.environment.value,
            SchemaEvent.stream_id == stream_id,
            SchemaEvent.detected_at >= utcnow() - timedelta(days=days),
        )
        .order_by(SchemaEvent.detected_at, SchemaEvent.id)
    )
    events = []
    for row in rows:
        item: dict[str, Any] = {"type": row.type, "field": row.field}
        if row.type == "type_change":
            item["previous_type"] = row.previous_type
        if row.detected_type:
            item["detected_type"] = row.detected_type
        item["detected_at"] = isoformat(row.detected_at)
        item["event_count"] = row.event_count
        events.append(item)
    return {"stream_id": stream_id, "schema_events": events}


# -- usage, stats, errors ----------------------------------------------------------------


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
) -> dict[str, Any]:
    today = utcnow().date()
    start = parse_day(start_date, "start_date", today - timedelta(days=30))
    end = parse_day(end_date, "end_date", today)
    if start > end:
        raise BadRequest("start_date must not be after end_date")
    query = (
        select(
            LakeFile.day,
            LakeFile.stream_id,
            func.sum(LakeFile.rows),
            func.sum(LakeFile.bytes),
            func.count(),
        )
        .where(
            LakeFile.org_id == tenant.org_id,
            LakeFile.environment == tenant.environment.value,
            LakeFile.kind == "data",
            LakeFile.day >= start,
            LakeFile.day <= end,
        )
        .group_by(LakeFile.day, LakeFile.stream_id)
        .order_by(LakeFile.day.desc(), LakeFile.stream_id)
    )
    if stream_id is not None:
        query = query.where(LakeFile.stream_id == stream_id)
    rows: list[dict[str, Any]] = [
        {
            "date": day.isoformat(),
            "stream_id": stream,
            "event_count": int(events),
            "bytes_stored": int(size),
            "file_count": int(count),
        }
        for day, stream, events, size, count in await session.execute(query)
    ]
    totals = {
        key: sum(int(row[key]) for row in rows)
        for key in ("event_count", "bytes_stored", "file_count")
    }
    return {"usage": rows, "totals": totals}


async def live_stats(streams: Streams, session: AsyncSession, tenant: Tenant) -> dict[str, Any]:
    await streams.stats.flush()  # include what this process counted since the last flush
    now = utcnow()
    this_minute = now.replace(second=0, microsecond=0)
    this_hour = this_minute.replace(minute=0)
    day_ago = this_hour - timedelta(hours=23)
    rows = await session.execute(
        select(
            StatsMinute.minute, StatsMinute.requests, StatsMinute.events, StatsMinute.errors
        ).where(
            StatsMinute.org_id == tenant.org_id,
            StatsMinute.environment == tenant.environment.value,
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
            {
                "minute": minute.strftime("%Y-%m-%dT%H:%M"),
                "events": events,
                "requests": requests,
                "errors": errors,
            }
        )
    hourly = []
    for offset in range(23, -1, -1):
        hour = this_hour - timedelta(hours=offset)
        requests, events, errors = hours.get(hour, [0, 0, 0])
        hourly.append(
            {
                "hour": hour.strftime("%Y-%m-%dT%H"),
                "events": events,
                "requests": requests,
                "errors": errors,
            }
        )
    current = hours.get(this_hour, [0, 0, 0])
    recent = any(
        minutes.get(this_minute - timedelta(minutes=offset), (0, 0, 0))[0] for offset in range(5)
    )
    return {
        "status": "ok" if recent else "idle",
        "customer_id": tenant.org_id,
        "hour": this_hour.strftime("%Y-%m-%dT%H"),
        "requests": current[0],
        "events": current[1],
        "errors": current[2],
        "histogram": histogram,
        "hourly": hourly,
    }


async def recent_errors(
    streams: Streams, session: AsyncSession, tenant: Tenant, limit: int, stream_id: str | None
) -> dict[str, Any]:
    await streams.stats.flush()
    since = utcnow() - timedelta(hours=24)
    scope = [
        IngestError.org_id == tenant.org_id,
        IngestError.environment == tenant.environment.value,
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
    return {
        "customer_id": tenant.org_id,
        "errors_24h": sum(counts.values()),
        "by_type": {kind: counts.get(kind, 0) for kind in ERROR_TYPES},
        "recent": [
            {
                "id": error.id,
                "type": error.type,
                "message": error.message,
                "endpoint": error.endpoint,
                "stream_id": error.stream_id,
                "request_body": error.request_body,
                "created_at": isoformat(error.created_at),
            }
            for error in recent
        ],
    }


# -- connect and query -------------------------------------------------------------------


async def query(
    streams: Streams, session: AsyncSession, tenant: Tenant, sql: str, format: QueryFormat
) -> QueryResult:
    """Run read-only SQL with one view per stream of this tenant, and `dlq.<stream>` for
    its dead letters. At most so many at once per tenant (429) and per server (503)."""
    if not sql.strip():
        raise BadRequest("sql is required")
    views: dict[str, list[tuple[str, int]]] = {
        stream.stream_id: [] for stream in await list_streams(session, tenant)
    }
    for file in await _files(session, tenant, kind="data"):
        views.setdefault(file.stream_id, []).append((file.path, file.bytes))
    letters: dict[str, list[tuple[str, int]]] = {stream_id: [] for stream_id in views}
    for file in await _files(session, tenant, kind="dlq"):
        letters.setdefault(file.stream_id, []).append((file.path, file.bytes))
    owner = (tenant.org_id, tenant.environment.value)
    return await asyncio.wrap_future(streams.sandbox.submit(owner, views, letters, sql, format))

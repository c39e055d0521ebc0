"""Events in: validated against their stream, appended to the write-ahead log (durable
before the answer), counted, and, when they fail, accounted for on /errors and /stats.
Also flushing a stream's buffered events to the lake on demand."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.errors import (
    BadRequest,
    InvalidRequest,
    NotFound,
    OpenEnrichError,
    RateLimited,
    ServiceUnavailable,
)
from openenrich.ids import isoformat
from openenrich.lake.engine import BufferFull, FlushedFile, FlushFailed, LogUnavailable
from openenrich.lake.wal import payload_lines
from openenrich.streams.configuration import get_stream
from openenrich.streams.fields import Rejection
from openenrich.streams.parsing import Events, is_object, parse_envelopes, parse_ingest
from openenrich.streams.runtime import Streams
from openenrich.streams.stats import seconds_until_next_month
from openenrich.tenancy.tenant import Principal, Tenant

_ENCODER = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Ingested:
    accepted: int
    rejected: int
    buffered: int
    rejections: list[Rejection]


async def ingest_batch(
    streams: Streams, principal: Principal, body: bytes, *, endpoint: str, tag: str | None = None
) -> Ingested:
    """`POST /ingest`: `{"stream_id": …, "data": [event, …]}`. `tag` (the request's
    Idempotency-Key) is kept with the events' log records."""
    depth = streams.settings.json_max_depth
    return await _ingest_recorded(
        streams, principal, body, endpoint, None, lambda: parse_ingest(body, depth), tag
    )


async def ingest_envelopes(
    streams: Streams,
    principal: Principal,
    body: bytes,
    stream_id: str | None,
    *,
    endpoint: str,
    tag: str | None = None,
) -> Ingested:
    """`POST /v1/streams/ingest`: one envelope or an array of them, for `stream_id` (the
    X-Stream-Id header)."""

    def parse() -> Events:
        if not stream_id:
            raise InvalidRequest("The X-Stream-Id header is required.", code="invalid_format")
        return parse_envelopes(body, stream_id, streams.settings.json_max_depth)

    return await _ingest_recorded(streams, principal, body, endpoint, stream_id, parse, tag)


async def _ingest_recorded(
    streams: Streams,
    principal: Principal,
    body: bytes,
    endpoint: str,
    stream_id: str | None,
    parse: Callable[[], Events],
    tag: str | None,
) -> Ingested:
    """Parse and ingest; a refusal, and events sent to the dead-letter queue, show on
    /errors."""
    try:
        events = parse()
        stream_id = events.stream_id
        result = await ingest(streams, principal, events, tag)
    except OpenEnrichError as error:
        record_failure(streams, principal.tenant, error, endpoint, stream_id=stream_id, body=body)
        raise
    if result.rejected:
        _record_rejections(streams, principal.tenant, result, endpoint, stream_id, body)
    return result


def _array(rows: Sequence[msgspec.Raw]) -> bytes:
    return b"[" + b",".join(bytes(row) for row in rows) + b"]"


async def ingest(
    streams: Streams, principal: Principal, events: Events, tag: str | None = None
) -> Ingested:
    """Validate `events` against their stream and log them (their records tagged `tag`);
    returns once they are durable."""
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
    valid_lines, valid = events.lines, total
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
            valid_lines, valid = payload_lines(keep, events.array), len(keep)
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
                valid_lines,
                count=valid,
                event_time=events.event_time,
                schema_version=config.version,
                now_us=now_us,
                tag=tag,
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
            streams.engine.append(*key, "dlq", letters, count=len(rejected), now_us=now_us, tag=tag)
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


# -- what /errors and /stats show of ingest ------------------------------------------------


def _error_kind(error: OpenEnrichError) -> str:
    if error.status_code == 429:
        return "rate_limit"
    if error.status_code >= 500:
        return "processing"
    return "validation"


def record_failure(
    streams: Streams,
    tenant: Tenant,
    error: OpenEnrichError,
    endpoint: str,
    *,
    stream_id: str | None,
    body: bytes | None,
) -> None:
    """An ingest request failed (also before it was read: a rate limit)."""
    streams.stats.count(tenant)
    streams.stats.error(
        tenant,
        kind=_error_kind(error),
        message=error.message,
        endpoint=endpoint,
        stream_id=stream_id,
        body=body,
    )


def _record_rejections(
    streams: Streams,
    tenant: Tenant,
    result: Ingested,
    endpoint: str,
    stream_id: str | None,
    body: bytes,
) -> None:
    """Strict mode sent events to the dead-letter queue: that shows on /errors."""
    streams.stats.error(
        tenant,
        kind="schema_rejection",
        message=describe_rejections(result.rejections),
        endpoint=endpoint,
        stream_id=stream_id,
        body=body,
    )


def describe_rejections(rejections: Sequence[Rejection]) -> str:
    first = rejections[0]
    what = f"{first.reason} on '{first.field}'" if first.field else first.reason
    more = f" (and {len(rejections) - 1} more)" if len(rejections) > 1 else ""
    return f"{len(rejections)} event(s) sent to the dead-letter queue: {what}{more}"


# -- flush ---------------------------------------------------------------------------------


async def flush(
    streams: Streams, session: AsyncSession, tenant: Tenant, stream_id: str
) -> list[FlushedFile]:
    await get_stream(session, tenant, stream_id)
    try:
        return await streams.engine.flush_stream(tenant.org_id, tenant.environment.value, stream_id)
    except FlushFailed as error:
        # The lake's storage failed (disk full, S3 away), or the stream's processing did;
        # the events wait in the log.
        raise ServiceUnavailable(
            f"writing to the lake failed, the events are kept and retried: {error}",
            headers={"Retry-After": "5"},
        ) from None

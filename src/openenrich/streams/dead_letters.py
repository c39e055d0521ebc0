"""A stream's dead letters (the events strict mode rejected): those still in the log,
then those in the lake, newest first."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import msgspec
import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.ids import utcnow
from openenrich.lake import manifest
from openenrich.streams.configuration import get_stream
from openenrich.streams.runtime import Streams
from openenrich.tenancy.tenant import Tenant

# A dead letter's original event is answered as the JSON the client sent, never parsed
# again: it was refused, and may hold what a parser refuses (1e400 is out of a float's
# range).
_LETTERS = msgspec.json.Decoder(list[dict[str, msgspec.Raw]])
_NEWEST = (
    "SELECT strftime(rejected_at, '%Y-%m-%dT%H:%M:%S.%gZ') AS rejected_at, reason, field, "
    "original FROM source ORDER BY rejected_at DESC, _event_id DESC LIMIT ?"
)


async def read_dead_letters(
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
    files = await manifest.files(
        session,
        tenant.org_id,
        tenant.environment.value,
        kind="dlq",
        stream_id=stream_id,
        since=cutoff.date(),
    )
    stored = (
        await asyncio.to_thread(
            streams.sandbox.read_here, [(f.path, f.bytes) for f in files], _NEWEST, [limit]
        )
        if files and len(pending) < limit
        else []
    )
    return {
        "stream_id": stream_id,
        "dlq_count": len(pending) + sum(f.rows for f in files),
        "events": (pending + [_letter(row) for row in stored])[:limit],
    }


def _letter(row: tuple[Any, ...]) -> dict[str, Any]:
    rejected_at, reason, field, original = row
    return {
        "rejected_at": rejected_at,
        "reason": reason,
        "field": field,
        "original": orjson.Fragment(original),
    }

"""`Idempotency-Key` on the ingest routes: a batch sent again with a key accepted in the
last 24 hours gets its first answer again, and nothing is stored twice.

A key's row is written `pending` (committed) before its events are logged, and `done`,
with the answer, after; the log's records carry the key too (their `tag`). A crash between
the two leaves a `pending` row. The process that takes that log over (the restarted one,
or one that adopts it) resolves its pending rows when it starts, from the records it read
(`resolve_recovered`), before its flusher releases them: found, the events were stored and
the answer is made from the records; not found, they were not, and the row goes. A request
meeting a pending row it cannot resolve (the first request is still being stored, or
another process holds that log) gets a 409 to retry a moment later. The same key with
another body is refused (400).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from openenrich.errors import Conflict, InvalidRequest
from openenrich.ids import utcnow
from openenrich.lake.wal import RecordHeader
from openenrich.streams.models import IngestKey
from openenrich.tenancy.tenant import Tenant

if TYPE_CHECKING:
    from openenrich.db import Database
    from openenrich.lake.engine import LakeEngine
    from openenrich.streams.runtime import Streams

KEEP = timedelta(hours=24)
MAX_KEY_LENGTH = 255


@dataclass(frozen=True, slots=True)
class Claimed:
    """The request may store its events under `key` (then `finish` or `abandon` it)."""

    key: str


async def claim(
    streams: Streams, tenant: Tenant, key: str, body: bytes, route: dict[str, Any]
) -> Claimed | dict[str, Any]:
    """The key for this request, or the answer its first request got. `route` is what
    the route's answer holds besides the counts (made again from the log after a crash)."""
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidRequest(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters",
            code="invalid_format",
        )
    digest = hashlib.sha256(body).hexdigest()
    owner = {"org_id": tenant.org_id, "environment": tenant.environment.value, "key": key}
    engine = streams.engine
    for _ in range(2):  # a second time if another request took the key meanwhile
        async with streams.database.session() as session:
            row = await session.get(IngestKey, (owner["org_id"], owner["environment"], key))
            now = utcnow()
            if row is not None and row.created_at < now - KEEP:
                await session.delete(row)
                await session.flush()
                row = None
            if row is None:
                session.add(
                    IngestKey(
                        **owner,
                        body_hash=digest,
                        node=engine.node_id,
                        state="pending",
                        answer=route,
                        created_at=now,
                    )
                )
                try:
                    await session.commit()
                except IntegrityError:
                    continue
                return Claimed(key)
            if row.body_hash != digest:
                raise InvalidRequest(
                    "This Idempotency-Key was used for another batch in the last 24 hours",
                    code="idempotency_key_reused",
                )
            if row.state == "done":
                return dict(row.answer or {})
            if row.node == engine.node_id and row.created_at >= engine.started_at:
                raise _in_progress()  # this process is storing it now
            logged = await engine.tagged(row.node, owner["org_id"], owner["environment"], key)
            if logged is None:  # another process holds that log
                raise _in_progress()
            if logged:  # stored before the crash: the answer the request would have had
                answer = with_counts(row.answer or {}, logged)
                row.state, row.answer = "done", answer
                await session.commit()
                return answer
            row.node, row.created_at = engine.node_id, now  # never stored: taken anew
            await session.commit()
            return Claimed(key)
    raise _in_progress()


def with_counts(route: dict[str, Any], records: list[RecordHeader]) -> dict[str, Any]:
    """The answer to a request whose events are `records`: `route`'s, with the counts it
    shows (`accepted` where the route answers with it, `rejected` when any were)."""
    answer = dict(route)
    if "accepted" in answer:
        answer["accepted"] = sum(r.count for r in records if r.kind == "data")
    rejected = sum(r.count for r in records if r.kind == "dlq")
    if rejected:
        answer["rejected"] = rejected
    return answer


async def settle(streams: Streams, tenant: Tenant, claimed: Claimed) -> None:
    """A request that failed in an unexpected way: done if its events reached the log,
    else forgotten, so that a retry gets the truth rather than a 409 until a restart."""
    engine = streams.engine
    logged = await engine.tagged(
        engine.node_id, tenant.org_id, tenant.environment.value, claimed.key
    )
    if not logged:
        await abandon(streams, tenant, claimed)
        return
    async with streams.database.session() as session:
        row = await session.get(IngestKey, (tenant.org_id, tenant.environment.value, claimed.key))
        if row is not None:
            row.state, row.answer = "done", with_counts(row.answer or {}, logged)
            await session.commit()


async def finish(
    streams: Streams, tenant: Tenant, claimed: Claimed, answer: dict[str, Any]
) -> None:
    async with streams.database.session() as session:
        await session.execute(
            update(IngestKey).where(*_row(tenant, claimed.key)).values(state="done", answer=answer)
        )
        await session.commit()


async def abandon(streams: Streams, tenant: Tenant, claimed: Claimed) -> None:
    """The request stored nothing (it was refused): a retry is a new request."""
    async with streams.database.session() as session:
        await session.execute(delete(IngestKey).where(*_row(tenant, claimed.key)))
        await session.commit()


def _row(tenant: Tenant, key: str) -> tuple[Any, ...]:
    return (
        IngestKey.org_id == tenant.org_id,
        IngestKey.environment == tenant.environment.value,
        IngestKey.key == key,
    )


def _in_progress() -> Conflict:
    return Conflict(
        "A batch with this Idempotency-Key is being stored; retry in a moment",
        headers={"Retry-After": "1"},
    )


async def resolve_recovered(database: Database, engine: LakeEngine) -> int:
    """At start: the pending keys of the logs this process took over, resolved from the
    records it read in them. Returns how many were resolved."""
    nodes, tags = engine.recovered_tags()
    async with database.session() as session:
        rows = (
            await session.scalars(
                select(IngestKey).where(IngestKey.state == "pending", IngestKey.node.in_(nodes))
            )
        ).all()
        for row in rows:
            logged = tags.get((row.node, row.org_id, row.environment, row.key))
            if logged:
                row.state, row.answer = "done", with_counts(row.answer or {}, logged)
            else:
                await session.delete(row)
        await session.commit()
    return len(rows)

"""Stream replays: re-sending a stream's stored events of a range of days to a URL.

A replay is a job (kind `stream.replay`, id `rpl_…`) with no table of its own: its request
is the job's input, how far it got is the job's state, and the resource is read from the
job row. It replays the data files the manifest held for those days when it was created
(later files are not its business), file by file in day and path order, in batches of
`replay_batch_events` events or `replay_batch_bytes` of JSON (`lake.export`), each POSTed
to the URL signed as our webhooks are (Standard Webhooks) with a secret made for the
replay and shown once, in the answer that started it. See `tasks.py` for the sending.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.config import Settings
from openenrich.db import Database
from openenrich.errors import BadRequest, Conflict, NotFound
from openenrich.ids import isoformat, new_id, utcnow
from openenrich.jobs import service as jobs
from openenrich.jobs.idempotency import Created, Idempotency, create_once
from openenrich.jobs.models import Job
from openenrich.jobs.notify import JobHub
from openenrich.jobs.view import JobView
from openenrich.lake.models import LakeFile
from openenrich.streams.configuration import get_stream
from openenrich.streams.forwarding import check_webhook_url
from openenrich.tenancy.tenant import Tenant
from openenrich.webhooks import signing

KIND = "stream.replay"
EVENT_TYPE = "stream.replay"  # the `type` of each batch's envelope
# The job's statuses in the replay's words: "started" until a worker takes it, as the
# reference's answer to the request says.
PUBLIC_STATUS = {
    "queued": "started",
    "running": "running",
    "parked": "running",
    "completed": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
    "interrupted": "failed",
}


def public_status(status: str) -> str:
    return PUBLIC_STATUS.get(status, "failed")


def _day(name: str, value: Any) -> date:
    if value is None or value == "":
        raise BadRequest(f"{name} is required (YYYY-MM-DD)")
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a date as YYYY-MM-DD")
    try:
        if len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name} must be a date as YYYY-MM-DD, not '{value[:40]}'") from None


def check_range(from_: Any, to: Any, settings: Settings) -> tuple[date, date]:
    first, last = _day("from", from_), _day("to", to)
    if first > last:
        raise BadRequest("from must not be after to")
    days = (last - first).days + 1
    if days > settings.replay_max_days:
        raise BadRequest(
            f"the range covers {days} days; a replay covers at most {settings.replay_max_days}"
        )
    return first, last


def _files_of(tenant: Tenant, stream_id: str, first: date, last: date) -> Any:
    return select(LakeFile).where(
        tenant.owns(LakeFile),
        LakeFile.stream_id == stream_id,
        LakeFile.kind == "data",
        LakeFile.day >= first,
        LakeFile.day <= last,
    )


async def files_to_replay(
    session: AsyncSession, tenant: Tenant, input: dict[str, Any]
) -> list[LakeFile]:
    """The files the replay sends, in the order it sends them: those of its days that the
    manifest held when it was created."""
    first, last = date.fromisoformat(input["from"]), date.fromisoformat(input["to"])
    as_of = datetime.fromisoformat(input["as_of"])
    query = _files_of(tenant, input["stream_id"], first, last).where(LakeFile.created_at <= as_of)
    return list(await session.scalars(query.order_by(LakeFile.day, LakeFile.path)))


def resource(job: Job, secret: bool = False) -> dict[str, Any]:
    input, state = job.input, job.state or {}
    answer: dict[str, Any] = {
        "replay_id": job.id,
        "status": public_status(job.status),
        "stream_id": input["stream_id"],
        "from": input["from"],
        "to": input["to"],
        "estimated_events": input["estimated_events"],
        "webhook_url": input["webhook_url"],
        "events_sent": int(state.get("events_sent", 0)),
        "batches_sent": int(state.get("batches", 0)),
        "created_at": isoformat(job.created_at),
        "finished_at": isoformat(job.finished_at) if job.finished_at else None,
        "error": job.error,
    }
    if secret:
        answer["webhook_secret"] = input["secret"]
    return answer


async def _job(session: AsyncSession, tenant: Tenant, replay_id: str) -> Job:
    job = await session.get(Job, replay_id, populate_existing=True)
    if (
        job is None
        or job.kind != KIND
        or (job.org_id, job.environment) != (tenant.org_id, tenant.environment.value)
    ):
        raise NotFound(f"Replay '{replay_id}' not found")
    return job


async def read(database: Database, tenant: Tenant, replay_id: str) -> dict[str, Any]:
    async with database.session() as session:
        return resource(await _job(session, tenant, replay_id))


async def get_replay(
    session: AsyncSession, tenant: Tenant, stream_id: str, replay_id: str
) -> dict[str, Any]:
    """The replay, if it is one of this stream's."""
    job = await _job(session, tenant, replay_id)
    if job.input["stream_id"] != stream_id:
        raise NotFound(f"Replay '{replay_id}' not found")
    return resource(job)


async def find(
    database: Database, tenant: Tenant, stream_id: str, replay_id: str
) -> dict[str, Any]:
    async with database.session() as session:
        return await get_replay(session, tenant, stream_id, replay_id)


def _status_of(replay: dict[str, Any]) -> str:
    return str(replay["status"])


def _key_reused(job_id: str) -> Conflict:
    return Conflict(f"This Idempotency-Key was used with another request (replay '{job_id}')")


REPLAYS: JobView[dict[str, Any]] = JobView(
    kind=KIND,
    read=read,
    status=_status_of,
    reused=_key_reused,
    public_status=public_status,
)


async def start_replay(
    database: Database,
    hub: JobHub,
    settings: Settings,
    tenant: Tenant,
    stream_id: str,
    body: dict[str, Any],
    idempotency: Idempotency | None,
) -> Created[dict[str, Any]]:
    """Check the request and create the replay's job (once per Idempotency-Key). The
    answer carries the signing secret: to the request that created the replay, and to a
    retry of it with the same key."""
    first, last = check_range(body.get("from"), body.get("to"), settings)
    if body.get("webhook_url") in (None, ""):
        raise BadRequest("webhook_url is required")
    url = await check_webhook_url(body["webhook_url"], allow_private=settings.allow_private_urls)

    async def create(session: AsyncSession) -> str:
        await get_stream(session, tenant, stream_id)
        replay_id = new_id("rpl")
        now = utcnow()
        counted = _files_of(tenant, stream_id, first, last).with_only_columns(
            func.coalesce(func.sum(LakeFile.rows), 0)
        )
        estimated = int(await session.scalar(counted) or 0)
        await jobs.create(
            session,
            hub,
            job_id=replay_id,
            tenant=tenant,
            kind=KIND,
            input={
                "stream_id": stream_id,
                "from": first.isoformat(),
                "to": last.isoformat(),
                "webhook_url": url,
                "secret": signing.new_secret(),
                "estimated_events": estimated,
                # Files recorded up to now are the replay's (a microsecond later, so a
                # file recorded in this same instant is in, as the estimate counted it).
                "as_of": (now + timedelta(microseconds=1)).isoformat(),
            },
        )
        await jobs.append_event(
            session,
            hub,
            replay_id,
            "replay.created",
            {"replay_id": replay_id, "estimated_events": estimated},
        )
        return replay_id

    async def describe(session: AsyncSession, replay_id: str) -> dict[str, Any]:
        return resource(await _job(session, tenant, replay_id), secret=True)

    return await create_once(database, hub, REPLAYS, tenant, idempotency, create, describe)


async def cancel_replay(
    session: AsyncSession, hub: JobHub, tenant: Tenant, stream_id: str, replay_id: str
) -> dict[str, Any]:
    """Cancel at once; the worker stops before its next batch (one already on its way is
    delivered). A replay that has ended is left as it is."""
    await get_replay(session, tenant, stream_id, replay_id)
    won = await jobs.transition(
        session,
        hub,
        replay_id,
        from_statuses=["queued", "running", "parked"],
        to="cancelled",
        cancel_requested=True,
    )
    if won:
        await jobs.append_event(
            session, hub, replay_id, "replay.cancelled", {"replay_id": replay_id}
        )
    await session.flush()
    return await get_replay(session, tenant, stream_id, replay_id)

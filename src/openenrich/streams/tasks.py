"""The stream replay as a job: reading its files and POSTing their events, batch by batch.

Each batch is a JSON envelope like our webhooks' (`{"id", "type": "stream.replay",
"created_at", "data": {"replay_id", "stream_id", "batch", "date", "count", "events"}}`),
signed with the replay's secret (Standard Webhooks headers). Its message id
(`webhook-id`, and the envelope's `id`) is `{replay_id}_{batch}`: the same on every try
and after a restart, so a receiver can drop a batch it has already taken.

A batch the URL refuses (not 2xx, no answer in `webhook_timeout_seconds`, no connection)
is tried again after each of `replay_retry_delays`; no batch is skipped. After the last
try the replay fails, saying which batch, why, and how many events were delivered before
it. After each delivered batch the job's checkpoint (file, row, batch number, events sent)
and a `replay.batch` event are committed together, so a replay whose worker died resumes
with the batch after the last one recorded (that one may be sent twice, never skipped).
Cancel is checked before every batch and during waits.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich import __version__
from openenrich.config import Settings
from openenrich.errors import OpenEnrichError
from openenrich.ids import isoformat, utcnow
from openenrich.jobs import service as jobs
from openenrich.jobs.models import Job
from openenrich.jobs.notify import JobHub
from openenrich.jobs.worker import JobContext, JobSpec, error_code
from openenrich.lake.export import EventBatch, event_batches
from openenrich.lake.storage import LakeStorage
from openenrich.streams import replay
from openenrich.web.client import guarded_client
from openenrich.web.guard import UnsafeURL
from openenrich.webhooks import signing

_CANCEL_CHECK_SECONDS = 1.0


class ReplayFailed(OpenEnrichError):
    code = "delivery_failed"


def _next(batches: Any) -> EventBatch | None:
    return next(batches, None)


async def _post(
    client: httpx.AsyncClient, url: str, secret: str, message_id: str, body: bytes
) -> str | None:
    """None when the URL took the batch; otherwise why not."""
    headers = signing.headers(secret, message_id, int(time.time()), body)
    try:
        response = await client.post(url, content=body, headers=headers)
    except UnsafeURL as refused:
        return f"refused: {refused}"
    except httpx.TimeoutException:
        return "no answer in time"
    except httpx.HTTPError as failed:
        return f"{type(failed).__name__}: {failed}"
    if 200 <= response.status_code < 300:
        return None
    return f"the URL answered {response.status_code}"


async def _wait(ctx: JobContext, seconds: float) -> None:
    """Sleep, but stop (Stopped) as soon as the replay is cancelled."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        await asyncio.sleep(min(left, _CANCEL_CHECK_SECONDS))
        await ctx.ensure_running()


async def _deliver(
    ctx: JobContext,
    client: httpx.AsyncClient,
    settings: Settings,
    number: int,
    day: str,
    batch: EventBatch,
) -> None:
    input = ctx.input
    message_id = f"{ctx.job_id}_{number}"
    delays = settings.replay_retry_delays
    for attempt in range(1, len(delays) + 2):
        envelope = {
            "id": message_id,
            "type": replay.EVENT_TYPE,
            "created_at": isoformat(utcnow()),
            "data": {
                "replay_id": ctx.job_id,
                "stream_id": input["stream_id"],
                "batch": number,
                "date": day,
                "count": batch.count,
                "events": orjson.Fragment(batch.body),
            },
        }
        body = orjson.dumps(envelope)
        error = await _post(client, input["webhook_url"], input["secret"], message_id, body)
        if error is None:
            return
        if attempt > len(delays):
            sent = int(ctx.state.get("events_sent", 0))
            raise ReplayFailed(
                f"batch {number} ({batch.count} events of {day}) was refused {attempt} times, "
                f"last: {error}; {sent} events in {number - 1} batches were delivered before it"
            )
        delay = delays[attempt - 1]
        await ctx.emit(
            "replay.retrying",
            {"batch": number, "attempt": attempt, "error": error, "retry_in_seconds": delay},
        )
        await _wait(ctx, delay)


async def run_replay(ctx: JobContext) -> None:
    settings: Settings = ctx.settings
    storage = LakeStorage(settings)
    state = ctx.state
    async with ctx.transaction() as session:
        await ctx.ensure_running(session)
        files = [
            (file.path, file.day.isoformat())
            for file in await replay.files_to_replay(session, ctx.tenant, ctx.input)
        ]
        await ctx.emit(
            "replay.started",
            {"files": len(files), "resumed_at_batch": int(state.get("batches", 0)) + 1},
            session,
        )
    total = int(ctx.input["estimated_events"])
    client = guarded_client(
        allow_private=settings.allow_private_urls,
        timeout=settings.webhook_timeout_seconds,
        headers={"user-agent": f"OpenEnrich-Replay/{__version__}"},
    )
    try:
        start_file = int(state.get("file", 0))
        for index in range(start_file, len(files)):
            path, day = files[index]
            batches = event_batches(
                storage,
                path,
                max_events=settings.replay_batch_events,
                max_bytes=settings.replay_batch_bytes,
                start_row=int(state.get("row", 0)) if index == start_file else 0,
            )
            while (batch := await asyncio.to_thread(_next, batches)) is not None:
                await ctx.ensure_running()
                number = int(ctx.state.get("batches", 0)) + 1
                await _deliver(ctx, client, settings, number, day, batch)
                sent = int(ctx.state.get("events_sent", 0)) + batch.count
                async with ctx.transaction() as session:
                    await ctx.ensure_running(session)
                    await ctx.save_state(
                        session,
                        file=index,
                        row=batch.first_row + batch.count,
                        batches=number,
                        events_sent=sent,
                    )
                    await ctx.progress(session, sent, max(total, sent))
                    await ctx.emit(
                        "replay.batch",
                        {"batch": number, "date": day, "events": batch.count, "events_sent": sent},
                        session,
                    )
        async with ctx.transaction() as session:
            sent = int(ctx.state.get("events_sent", 0))
            if await ctx.finish(session, result={"events_sent": sent}):
                await ctx.emit(
                    "replay.completed",
                    {"events_sent": sent, "batches_sent": int(ctx.state.get("batches", 0))},
                    session,
                )
    finally:
        await client.aclose()


async def fail(session: AsyncSession, hub: JobHub, job: Job, error: BaseException) -> None:
    message = str(error) if isinstance(error, OpenEnrichError) else "Internal error"
    if await jobs.transition(
        session,
        hub,
        job.id,
        from_statuses=["running"],
        to="failed",
        owner=job.lease_owner,
        error={"code": error_code(error), "message": message},
    ):
        await jobs.append_event(
            session, hub, job.id, "replay.failed", {"code": error_code(error), "message": message}
        )


def replay_spec() -> JobSpec:
    """A replay whose worker died is queued again (the default `on_lost`) and resumes from
    its checkpoint; one that raised, or was lost `job_max_attempts` times, fails."""
    return JobSpec(kind=replay.KIND, handler=run_replay, on_error=fail)

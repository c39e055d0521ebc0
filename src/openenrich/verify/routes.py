"""HTTP for verification runs (/api/v1/…). Errors: `{"error": {"code", "message", "run_id"?}}`.

Long-polls and event streams read in short sessions and wait on the job hub in between,
so a waiting client never holds a database connection.
"""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.sse import format_sse_event
from sqlalchemy.exc import IntegrityError
from starlette.responses import StreamingResponse

from openenrich.config import Settings
from openenrich.db import Database
from openenrich.errors import InvalidRequest, RateLimited
from openenrich.http.params import INT64_MAX, event_id
from openenrich.http.responses import JSONBody
from openenrich.http.routing import JSONRoute
from openenrich.http.session import DbSession, database
from openenrich.jobs import queries as job_queries
from openenrich.jobs.models import TERMINAL
from openenrich.jobs.notify import JobHub
from openenrich.tenancy.dependencies import AdminPrincipal, authenticated
from openenrich.tenancy.ratelimit import RateLimiter
from openenrich.tenancy.service import Principal
from openenrich.verify import service
from openenrich.verify.schemas import CreateRun, Decision, WorkflowBody

router = APIRouter(prefix="/api/v1", tags=["verification runs"], route_class=JSONRoute)


def hub_of(request: Request) -> JobHub:
    hub: JobHub = request.app.state.jobs.hub
    return hub


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _limit(
    request: Request, bucket: str, per_minute: int, retry_after: int | None = None
) -> None:
    limiter: RateLimiter = request.app.state.rate_limiter
    decision = await limiter.take(bucket, per_minute / 60, capacity=per_minute)
    if not decision.allowed:
        headers = decision.headers()
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        raise RateLimited("Rate limit exceeded; respect the Retry-After header", headers=headers)


async def verify_principal(request: Request) -> Principal:
    """A key, plus the reference's read limit (600 GETs a minute per key)."""
    principal = await authenticated(request)
    if request.method == "GET":
        await _limit(
            request, f"runs-read:{principal.key_id}", settings_of(request).runs_reads_per_minute
        )
    return principal


Caller = Annotated[Principal, Depends(verify_principal)]


# -- runs ----------------------------------------------------------------------------------


@router.post("/runs", status_code=202, summary="Create a run")
async def create_run(
    body: CreateRun,
    request: Request,
    principal: Caller,
    session: DbSession,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> Response:
    settings = settings_of(request)
    hub = hub_of(request)
    tenant = principal.tenant
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 255:
        raise InvalidRequest("Idempotency-Key: must be 1 to 255 characters")
    identity = body.model_dump(exclude_unset=True, exclude={"stream"})
    idempotency = (idempotency_key, service.request_hash(identity)) if idempotency_key else None
    if idempotency is not None:
        existing = await service.replay(session, hub, tenant, *idempotency)
        if existing is not None:
            return _answer(request, existing, 200, body.stream)
    await _limit(request, f"runs-create:{principal.key_id}", settings.runs_create_per_minute, 60)
    if await service.active_runs(session, principal.key_id) >= settings.runs_max_active:
        raise RateLimited(
            f"This key already has {settings.runs_max_active} active runs",
            headers={"Retry-After": "10"},
        )
    new = service.NewRun(body.message, body.workflow, body.thread_id, body.metadata, body.stream)
    try:
        run_id = await service.create_run(
            session,
            hub,
            principal,
            new,
            auto_approve=principal.auto_approve,
            idempotency=idempotency,
        )
        await session.commit()  # before rendering: the write lock is not held for it
    except IntegrityError:
        # A concurrent request with the same key committed first: answer with its run.
        await session.rollback()
        assert idempotency is not None
        existing = await service.replay(session, hub, tenant, *idempotency)
        if existing is None:
            raise
        return _answer(request, existing, 200, body.stream)
    if body.stream:
        return _event_stream(request, run_id, after=0)
    return JSONBody(await service.read_resource(database(request), tenant, run_id), status_code=202)


def _answer(request: Request, run: dict[str, Any], status: int, stream: bool) -> Response:
    if stream:
        return _event_stream(request, run["id"], after=0)
    return JSONBody(run, status_code=status)


async def _status(db: Database, run_id: str) -> str | None:
    return await db.read(functools.partial(job_queries.status, job_id=run_id))


@router.get("/runs/{run_id}", summary="Retrieve a run (long-poll with ?wait=seconds)")
async def get_run(
    run_id: str,
    request: Request,
    principal: Caller,
    wait: Annotated[float, Query(ge=0, le=50)] = 0,
) -> JSONBody:
    db = database(request)
    hub = hub_of(request)
    poll = settings_of(request).job_poll_seconds
    run = await service.read_resource(db, principal.tenant, run_id)
    if wait and run["status"] not in TERMINAL:
        loop = time.monotonic
        deadline = loop() + wait
        # Compare with the status just read and returned, not a fresh read: a change in
        # between would otherwise be missed and the poll would sleep out its whole time.
        while (remaining := deadline - loop()) > 0:
            await hub.wait(run_id, min(remaining, poll))
            current = await _status(db, run_id)
            if current is None or service.public_status(current) != run["status"]:
                break
        run = await service.read_resource(db, principal.tenant, run_id)
    return JSONBody(run)


@router.get("/runs/{run_id}/events", summary="Server-Sent Events: the run's history, then live")
async def run_events(
    run_id: str,
    request: Request,
    principal: Caller,
    after: Annotated[int | None, Query(ge=0, le=INT64_MAX)] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> Response:
    start = after or 0
    if last_event_id is not None:
        start = event_id("Last-Event-ID", last_event_id)
    await service.read_resource(database(request), principal.tenant, run_id)  # 404 if not ours
    return _event_stream(request, run_id, after=start)


def _event_stream(request: Request, run_id: str, *, after: int) -> StreamingResponse:
    db = database(request)
    hub = hub_of(request)
    settings = settings_of(request)
    loop = time.monotonic

    async def events() -> AsyncIterator[bytes]:
        yield format_sse_event(retry=settings.sse_retry_ms)
        last = after
        quiet_since = loop()
        while True:
            status, batch = await db.read(
                functools.partial(job_queries.status_and_events, job_id=run_id, after=last)
            )
            for event in batch:
                last = event.seq
                yield format_sse_event(
                    id=str(event.seq), event=event.type, data_str=orjson.dumps(event.data).decode()
                )
            if batch:
                quiet_since = loop()
                continue
            if status is None or status in TERMINAL:
                return
            heartbeat_due = quiet_since + settings.sse_heartbeat_seconds
            woke = await hub.wait(
                run_id, max(0.0, min(heartbeat_due - loop(), settings.job_poll_seconds))
            )
            if not woke and loop() >= heartbeat_due:
                yield format_sse_event(comment="ping")
                quiet_since = loop()

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.post("/runs/{run_id}/approval", summary="Approve or decline a run's plan")
async def approval(
    run_id: str, body: Decision, request: Request, principal: Caller, session: DbSession
) -> JSONBody:
    return JSONBody(
        await service.decide(session, hub_of(request), principal.tenant, run_id, body.decision)
    )


@router.post("/runs/{run_id}/cancel", summary="Cancel a run")
async def cancel(run_id: str, request: Request, principal: Caller, session: DbSession) -> JSONBody:
    return JSONBody(await service.cancel(session, hub_of(request), principal.tenant, run_id))


@router.get("/threads/{thread_id}/runs", summary="A thread's runs, newest first")
async def thread_runs(
    thread_id: str,
    principal: Caller,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0,
) -> JSONBody:
    return JSONBody(await service.thread_runs(session, principal.tenant, thread_id, limit, offset))


# -- workflows and usage --------------------------------------------------------------------


@router.get("/workflows", summary="Built-in workflows and your organisation's own")
async def list_workflows(principal: Caller, session: DbSession) -> JSONBody:
    return JSONBody(await service.list_workflows(session, principal.tenant))


@router.post("/workflows", status_code=201, summary="Create a workflow (admin)")
async def create_workflow(
    body: WorkflowBody, principal: AdminPrincipal, session: DbSession
) -> JSONBody:
    if not body.slug:
        raise InvalidRequest("slug: is required (lowercase letters, digits and '-')")
    if not body.content:
        raise InvalidRequest("content: is required (Markdown naming the checks to run)")
    changes = body.model_dump(exclude_unset=True, exclude={"slug"})
    return JSONBody(
        await service.save_workflow(session, principal.tenant, body.slug, changes, create=True),
        status_code=201,
    )


@router.patch(
    "/workflows/{slug}", summary="Update or (is_active=false) deactivate a workflow (admin)"
)
async def update_workflow(
    slug: str, body: WorkflowBody, principal: AdminPrincipal, session: DbSession
) -> JSONBody:
    changes = body.model_dump(exclude_unset=True, exclude={"slug"})
    return JSONBody(
        await service.save_workflow(session, principal.tenant, slug, changes, create=False)
    )


@router.delete("/workflows/{slug}", summary="Deactivate a workflow (admin)")
async def deactivate_workflow(slug: str, principal: AdminPrincipal, session: DbSession) -> JSONBody:
    return JSONBody(
        await service.save_workflow(
            session, principal.tenant, slug, {"is_active": False}, create=False
        )
    )


@router.get("/usage", summary="Credits used and remaining")
async def usage(principal: Caller, session: DbSession) -> JSONBody:
    return JSONBody(await service.usage(session, principal))

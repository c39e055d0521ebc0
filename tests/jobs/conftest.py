"""A small surface made for the job facility's tests: notes and memos.

It uses `jobs.stream` and `jobs.idempotency` as a real surface does, with words of its
own: statuses (`waiting`, `working`, `done`), a wire format (data-only events with the
type inside, as the entity-enrichment reference streams them), and an error body
(`{"detail": …}`, the entities surface's, since its paths start with /api/). Nothing in
it comes from verification runs, so what passes here is the facility's, not the runs'.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Header, Query, Request, Response
from fastapi.sse import format_sse_event
from pydantic import BaseModel
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from helpers.server import LiveServer
from helpers.tenants import Tenants
from openenrich.config import Settings
from openenrich.db import Database, table
from openenrich.errors import Conflict, NotFound
from openenrich.http.errors import install_error_handlers
from openenrich.ids import new_id
from openenrich.jobs import service
from openenrich.jobs.idempotency import create_once, idempotency
from openenrich.jobs.models import STATUSES, Job
from openenrich.jobs.notify import JobHub
from openenrich.jobs.stream import Feeds, ResumeAfter
from openenrich.jobs.view import JobView
from openenrich.tenancy.roles import Environment
from openenrich.tenancy.tenant import Tenant

WORDS = {"queued": "waiting", "running": "working", "completed": "done", "parked": "paused"}

_jobs = table(Job)
_READ = select(_jobs.c.id, _jobs.c.status).where(
    _jobs.c.id == bindparam("id"),
    _jobs.c.org_id == bindparam("org_id"),
    _jobs.c.environment == bindparam("environment"),
    _jobs.c.kind == bindparam("kind"),
)


def public(status: str) -> str:
    return WORDS.get(status, status)


def reader(kind: str, noun: str) -> Any:
    async def read(database: Database, tenant: Tenant, job_id: str) -> dict[str, Any]:
        params = {
            "id": job_id,
            "org_id": tenant.org_id,
            "environment": tenant.environment.value,
            "kind": kind,
        }
        row = await database.read(lambda c: c.execute(_READ, params).one_or_none())
        if row is None:
            raise NotFound(f"{noun} not found")
        return {"id": row.id, "state": public(row.status)}

    return read


def data_only(seq: int, type: str, data: dict[str, Any]) -> bytes:
    return format_sse_event(id=str(seq), data_str=json.dumps({"type": type, **data}))


def view(kind: str, noun: str) -> JobView[dict[str, Any]]:
    return JobView(
        kind=kind,
        read=reader(kind, noun),
        status=lambda resource: str(resource["state"]),
        reused=lambda job_id: Conflict(
            "That key was used for something else", extra={"used_for": job_id}
        ),
        public_status=public,
        event=data_only,
    )


NOTES = view("test.note", "Note")
MEMOS = view("test.memo", "Memo")


class NewNote(BaseModel):
    text: str
    stream: bool = False


class Line(BaseModel):
    text: str


class Move(BaseModel):
    to: str


def mount(app: FastAPI, prefix: str, view: JobView[Any], tenant: Tenant) -> None:
    """The routes a surface would have for one kind of job: create (idempotent, or
    streamed), read (long-poll), events; and, for the tests to drive the job, lines and
    status changes that a worker would make."""

    def feeds(request: Request) -> Feeds:
        found: Feeds = request.app.state.feeds
        return found

    @app.post(prefix, status_code=201)
    async def create(
        body: NewNote,
        request: Request,
        idempotency_key: Annotated[str | None, Header()] = None,
    ) -> Response:
        on = feeds(request)
        owner = {"org_id": tenant.org_id, "environment": tenant.environment.value}
        key = idempotency(idempotency_key, body.model_dump(exclude={"stream"}))

        async def make(session: AsyncSession) -> str:
            job_id = new_id("job")
            await service.create(
                session, on.hub, job_id=job_id, tenant=tenant, kind=view.kind, input={}
            )
            created = {"id": job_id, "text": body.text}
            await service.append_event(session, on.hub, job_id, "created", created)
            return job_id

        async def describe(session: AsyncSession, job_id: str) -> dict[str, Any]:
            found = (await session.execute(_READ, {"id": job_id, "kind": view.kind, **owner})).one()
            return {"id": found.id, "state": public(found.status)}

        created = await create_once(on.database, on.hub, view, tenant, key, make, describe)
        return on.answer(view, created, stream=body.stream, status_code=201)

    @app.get(prefix + "/{job_id}")
    async def read(
        job_id: str, request: Request, wait: Annotated[float, Query(ge=0, le=50)] = 0
    ) -> dict[str, Any]:
        found: dict[str, Any] = await feeds(request).long_poll(view, tenant, job_id, wait)
        return found

    @app.get(prefix + "/{job_id}/events")
    async def events(job_id: str, request: Request, after: ResumeAfter) -> Response:
        return await feeds(request).events(view, tenant, job_id, after)

    @app.post(prefix + "/{job_id}/lines")
    async def line(job_id: str, body: Line, request: Request) -> dict[str, int]:
        on = feeds(request)
        async with on.database.session() as session:
            seq = await service.append_event(session, on.hub, job_id, "line", {"text": body.text})
            await session.commit()
        return {"seq": seq}

    @app.post(prefix + "/{job_id}/status")
    async def move(job_id: str, body: Move, request: Request) -> dict[str, bool]:
        on = feeds(request)
        async with on.database.session() as session:
            moved = await service.transition(
                session, on.hub, job_id, from_statuses=STATUSES, to=body.to
            )
            await session.commit()
        return {"moved": moved}


def notes_app(settings: Settings, tenant: Tenant) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = Database.from_settings(settings)
        app.state.feeds = Feeds(database, JobHub(), settings)
        yield
        await database.dispose()

    app = FastAPI(lifespan=lifespan)
    install_error_handlers(app)
    mount(app, "/api/notes", NOTES, tenant)
    mount(app, "/api/memos", MEMOS, tenant)
    return app


@pytest.fixture
def notes(settings: Settings, tenants: Tenants) -> Iterator[httpx.Client]:
    """A client of the notes surface, served with short heartbeats and polls (0.2 s)."""

    async def organization(session: AsyncSession) -> str:
        from openenrich.tenancy import service as tenancy

        return (await tenancy.ensure_organization(session, "acme")).id

    tenant = Tenant(tenants.run(organization), Environment.LIVE)
    quick = settings.model_copy(update={"sse_heartbeat_seconds": 0.2, "job_poll_seconds": 0.2})
    with (
        LiveServer(notes_app(quick, tenant)) as live,
        httpx.Client(base_url=live.url, timeout=20) as client,
    ):
        yield client


# -- reading an event stream ---------------------------------------------------------------


@dataclass
class Block:
    id: int | None = None
    data: dict[str, Any] | None = None
    comment: str | None = None
    retry: int | None = None
    lines: list[str] = field(default_factory=list)


def blocks(lines: Iterator[str]) -> Iterator[Block]:
    """What an SSE client sees, block by block."""
    current = Block()
    for line in lines:
        if line == "":
            if current.lines:
                yield current
            current = Block()
            continue
        current.lines.append(line)
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "":
            current.comment = value
        elif name == "id":
            current.id = int(value)
        elif name == "data":
            current.data = json.loads(value)
        elif name == "retry":
            current.retry = int(value)


@dataclass
class Read:
    blocks: list[Block]
    closed: bool  # the server ended the stream (else the reader left after `pings` pings)

    @property
    def events(self) -> list[Block]:
        return [b for b in self.blocks if b.data is not None]


def follow(response: httpx.Response, *, pings: int = 3) -> Read:
    """Read a stream until the server closes it, or until `pings` heartbeats came."""
    return until_closed(blocks(response.iter_lines()), pings=pings)


def until_closed(stream: Iterator[Block], *, pings: int = 3) -> Read:
    """The rest of a stream, until the server closes it or `pings` heartbeats came (a
    stream that should have closed then fails its test instead of hanging it)."""
    seen: list[Block] = []
    for block in stream:
        seen.append(block)
        if sum(1 for b in seen if b.comment == "ping") >= pings:
            return Read(seen, closed=False)
    return Read(seen, closed=True)


def next_event(stream: Iterator[Block], *, pings: int = 50) -> Block | None:
    """The next event of a stream; None if it closed or `pings` heartbeats came first."""
    for block in stream:
        if block.data is not None:
            return block
        if block.comment == "ping":
            pings -= 1
            if pings == 0:
                return None
    return None

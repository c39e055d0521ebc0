"""Following a job over HTTP: long-polls and Server-Sent Events, for every surface.

A surface's route hands over a `JobView` (its resource, its status words, its wire format)
and gets back the resource, or a streaming response. Both read in short reads and wait on
the job hub in between, so a waiting client never holds a database connection; the poll
interval is the fallback for a wake-up that got lost.

The event stream sends the job's log from after the client's last event id (`?after=`,
or `Last-Event-ID` when EventSource reconnects), then what comes, with `: ping` comments
while nothing does; once the job is finished and its log sent, it closes.
"""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Query
from fastapi.sse import format_sse_event
from starlette.responses import Response, StreamingResponse

from openenrich.config import Settings
from openenrich.db import Database
from openenrich.http.params import INT64_MAX, event_id
from openenrich.http.responses import JSONBody
from openenrich.jobs import queries
from openenrich.jobs.idempotency import Created
from openenrich.jobs.models import TERMINAL
from openenrich.jobs.notify import JobHub
from openenrich.jobs.view import JobView
from openenrich.tenancy.tenant import Tenant

R = TypeVar("R")

_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

# An event stream as /openapi.json shows it: `responses={200: {"content": EVENT_STREAM}}`
# on a route made with `response_class=StreamingResponse` (which adds no JSON body).
EVENT_STREAM: dict[str, Any] = {
    "text/event-stream": {
        "schema": {
            "type": "string",
            "description": "Server-Sent Events: the job's log, then what comes, with "
            "`: ping` comments while nothing does; it closes once the job is finished",
        }
    }
}


async def resume_after(
    after: Annotated[int | None, Query(ge=0, le=INT64_MAX)] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> int:
    """The event id a client resumes after: `Last-Event-ID` wins, as EventSource sends it
    on reconnect to the URL it first opened (which may carry an older `?after=`). Async,
    though it never waits: FastAPI would run a plain function in a worker thread."""
    if last_event_id is not None:
        return event_id("Last-Event-ID", last_event_id)
    return after or 0


ResumeAfter = Annotated[int, Depends(resume_after)]


class Feeds:
    """Long-polls and event streams on one database and job hub (one per process)."""

    def __init__(self, database: Database, hub: JobHub, settings: Settings) -> None:
        self.database = database
        self.hub = hub
        self.poll_seconds = settings.job_poll_seconds
        self.heartbeat_seconds = settings.sse_heartbeat_seconds
        self.retry_ms = settings.sse_retry_ms

    async def long_poll(self, view: JobView[R], tenant: Tenant, job_id: str, wait: float) -> R:
        """The job's resource; with `wait`, once its status has changed or is final, or
        when `wait` seconds have passed."""
        resource = await view.read(self.database, tenant, job_id)
        seen = view.status(resource)
        if wait and seen not in view.terminal:
            await self._until_changed(view, job_id, seen, wait)
            resource = await view.read(self.database, tenant, job_id)
        return resource

    async def _until_changed(self, view: JobView[Any], job_id: str, seen: str, wait: float) -> None:
        # Compare with the status just read and returned, not a fresh read: a change in
        # between would otherwise be missed and the poll would sleep out its whole time.
        loop = time.monotonic
        deadline = loop() + wait
        while (remaining := deadline - loop()) > 0:
            await self.hub.wait(job_id, min(remaining, self.poll_seconds))
            current = await self.database.read(functools.partial(queries.status, job_id=job_id))
            if current is None or view.public_status(current) != seen:
                return

    async def events(
        self, view: JobView[Any], tenant: Tenant, job_id: str, after: int
    ) -> StreamingResponse:
        """The job's event stream, or the surface's 404 before it starts."""
        await view.read(self.database, tenant, job_id)
        return self.stream(view, job_id, after)

    def answer(
        self, view: JobView[Any], created: Created[Any], *, stream: bool, status_code: int = 202
    ) -> Response:
        """What a request that created (`status_code`) or replayed (200) a job gets: the
        job's resource as its creation left it, or, when it asked to stream, its event
        stream from the first event (status 200, the only one EventSource clients accept)."""
        if stream:
            return self.stream(view, created.job_id, after=0)
        return JSONBody(created.resource, status_code=status_code if created.new else 200)

    def stream(self, view: JobView[Any], job_id: str, after: int) -> StreamingResponse:
        """The event stream of a job the caller has already found to be the tenant's."""
        return StreamingResponse(
            self._events(view, job_id, after), media_type="text/event-stream", headers=_SSE_HEADERS
        )

    async def _events(self, view: JobView[Any], job_id: str, last: int) -> AsyncIterator[bytes]:
        yield format_sse_event(retry=self.retry_ms)
        loop = time.monotonic
        quiet_since = loop()
        while True:
            status, batch = await self.database.read(
                functools.partial(queries.status_and_events, job_id=job_id, after=last)
            )
            for event in batch:
                last = event.seq
                yield view.event(event.seq, event.type, event.data)
            if batch:
                quiet_since = loop()
                continue
            if status is None or status in TERMINAL:
                return
            heartbeat_due = quiet_since + self.heartbeat_seconds
            woke = await self.hub.wait(
                job_id, max(0.0, min(heartbeat_due - loop(), self.poll_seconds))
            )
            if not woke and loop() >= heartbeat_due:
                yield format_sse_event(comment="ping")
                quiet_since = loop()

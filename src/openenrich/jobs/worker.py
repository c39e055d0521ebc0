"""Workers: claim queued jobs, run their handlers, keep their leases, recover lost jobs.

A handler is an async function of a `JobContext`. It is called again, from the top, when
a job is resumed after a pause or retried; what it already did is in `ctx.state` (its
checkpoint) and in whatever side-effect records it keeps (keyed so a repeat is a no-op).

Inside `openenrich serve` the jobs share the event loop with HTTP requests, and their
steps take turns (`Turns`): see there why.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn

import httpx
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.db import Database, table
from openenrich.errors import OpenEnrichError
from openenrich.http.state import AppState
from openenrich.ids import utcnow
from openenrich.jobs import service
from openenrich.jobs.models import Job
from openenrich.jobs.notify import NEW_WORK, JobHub
from openenrich.tenancy.roles import Environment
from openenrich.tenancy.tenant import Tenant

logger = logging.getLogger("openenrich.jobs")


class Parked(Exception):
    """Raised by `ctx.park`: the job waits for input; the handler's attempt ends here."""


class Stopped(Exception):
    """The job is no longer this worker's to run (cancelled, or its lease was lost)."""


class TooManyAttempts(OpenEnrichError):
    """What a kind's `on_error` is handed for a lost job that has used its attempts: a job
    that brings its worker down every time (out of memory on one input, a crash in a
    library) would otherwise be queued again for ever."""

    code = "too_many_attempts"

    def __init__(self, attempts: int) -> None:
        super().__init__(f"The job's worker stopped {attempts} times while running it")


JobHook = Callable[[AsyncSession, JobHub, Job], Awaitable[None]]


class Turns:
    """How many jobs may run a step on the event loop at once: the rest wait their turn,
    asleep. HTTP requests never take a turn.

    Why: asyncio runs whatever is ready in arrival order. With twenty jobs running, a new
    request's bytes were read, and its handler started, only after every job that was
    ready had run its step (a transaction, a report, a PDF): on a busy core 10-30 ms per
    loop pass, a create's p99 of 70-90 ms (bench/runs.py, SQLite). With one turn, a
    request waits behind one job step at most: create p99 25.6 ms, and as many runs per
    second, since the jobs were queueing for the same core anyway. On PostgreSQL a step's
    statements are round trips that the other jobs now wait through: fewer runs per
    second there (bench/README.md), where two turns may suit better.

    A step is `JobContext.transaction()` or `JobContext.turn()`; they nest within a task.
    A task holding a turn must not wait for another task that needs one.
    """

    def __init__(self, size: int) -> None:
        self._free = asyncio.Semaphore(size)
        self._holders: set[asyncio.Task[Any]] = set()

    @contextlib.asynccontextmanager
    async def take(self) -> AsyncIterator[None]:
        task = asyncio.current_task()
        if task is None or task in self._holders:
            yield
            return
        async with self._free:
            self._holders.add(task)
            try:
                yield
            finally:
                self._holders.discard(task)


_jobs = table(Job)
_LEASE = select(_jobs.c.status, _jobs.c.lease_owner).where(_jobs.c.id == bindparam("job_id"))
_SAVE_PROGRESS = (
    _jobs.update()
    .where(_jobs.c.id == bindparam("job_id"))
    .values(progress_done=bindparam("done"), progress_total=bindparam("total"))
)
_SAVE_STATE = (
    _jobs.update().where(_jobs.c.id == bindparam("job_id")).values(state=bindparam("state"))
)


async def requeue(session: AsyncSession, hub: JobHub, job: Job) -> None:
    await service.transition(
        session,
        hub,
        job.id,
        from_statuses=["running"],
        to="queued",
        owner=job.lease_owner,
        lease_owner=None,
        lease_expires_at=None,
    )


async def cancel(session: AsyncSession, hub: JobHub, job: Job) -> None:
    await service.transition(session, hub, job.id, from_statuses=["parked"], to="cancelled")


def error_code(error: BaseException) -> str:
    return error.code if isinstance(error, OpenEnrichError) else "internal_error"


async def fail(session: AsyncSession, hub: JobHub, job: Job, error: BaseException) -> None:
    await service.transition(
        session,
        hub,
        job.id,
        from_statuses=["running"],
        to="failed",
        owner=job.lease_owner,
        error={"code": error_code(error), "message": str(error) or type(error).__name__},
    )


@dataclass(frozen=True)
class JobSpec:
    kind: str
    handler: Callable[[JobContext], Awaitable[None]]
    on_lost: JobHook = requeue  # its worker died
    on_park_expired: JobHook = cancel  # nobody answered in time
    on_error: Callable[[AsyncSession, JobHub, Job, BaseException], Awaitable[None]] = fail
    # A lost job that has been claimed `max_attempts` times goes to `on_error` (with
    # TooManyAttempts) instead of `on_lost`. Off for a kind whose `on_lost` ends the job
    # anyway, so that its client decides on a retry (a run becomes `interrupted`).
    limit_attempts: bool = True


@dataclass
class JobContext:
    job_id: str
    kind: str
    tenant: Tenant
    input: dict[str, Any]
    state: dict[str, Any]
    attempt: int
    owner: str
    database: Database
    hub: JobHub
    settings: Any = None
    http: httpx.AsyncClient | None = None  # shared, SSRF-guarded (web.client)
    # The process's long-lived parts (the LLM gateway, the fetcher): `ctx.parts.get(T)`.
    parts: AppState | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    turns: Turns | None = None  # in serve: steps take turns with other jobs' (see Turns)

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """A step's turn on the event loop: wrap CPU work between awaits on the network
        (a report, a PDF) that should not run beside every other job's."""
        if self.turns is None:
            yield
            return
        async with self.turns.take():
            yield

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session committed at the end, in a turn: the unit of one step's writes and
        events."""
        async with self.turn(), self.database.session() as session:
            yield session
            await session.commit()

    async def emit(
        self, type: str, data: dict[str, Any], session: AsyncSession | None = None
    ) -> int:
        """Add an event to the job's log, in `session`'s transaction or in one of its own."""
        return await self.emit_all([(type, data)], session)

    async def emit_all(
        self, events: list[tuple[str, dict[str, Any]]], session: AsyncSession | None = None
    ) -> int:
        if session is not None:
            return await service.append_events(session, self.hub, self.job_id, events)
        async with self.transaction() as own:
            return await service.append_events(own, self.hub, self.job_id, events)

    async def ensure_running(self, session: AsyncSession | None = None) -> None:
        """Raise Stopped unless the job is still running under this worker (cancel is
        cooperative: handlers call this between steps)."""

        async def check(s: AsyncSession) -> None:
            row = (await s.execute(_LEASE, {"job_id": self.job_id})).one_or_none()
            if row is None or row.status != "running" or row.lease_owner != self.owner:
                raise Stopped()

        if session is not None:
            await check(session)
            return
        async with self.database.session() as own:
            await check(own)

    async def save_state(self, session: AsyncSession, **changes: Any) -> None:
        """Keep what the handler needs to resume (its checkpoint)."""
        self.state = {**self.state, **changes}
        await session.execute(_SAVE_STATE, {"job_id": self.job_id, "state": self.state})

    async def progress(self, session: AsyncSession, done: int, total: int) -> None:
        await session.execute(_SAVE_PROGRESS, {"job_id": self.job_id, "done": done, "total": total})

    async def park(
        self,
        session: AsyncSession,
        *,
        until: datetime | None,
        then: Callable[[AsyncSession], Awaitable[None]] | None = None,
    ) -> NoReturn:
        """Wait for input: the job leaves the worker and comes back (from the top, with its
        state) when someone resumes it with `service.resume`. `then` runs once the job is
        parked, in the same transaction (to announce it). Commits, then ends the attempt."""
        won = await service.transition(
            session,
            self.hub,
            self.job_id,
            from_statuses=["running"],
            to="parked",
            owner=self.owner,
            lease_owner=None,
            lease_expires_at=None,
            parked_until=until,
        )
        if not won:
            raise Stopped()
        if then is not None:
            await then(session)
        await session.commit()
        raise Parked()

    async def finish(self, session: AsyncSession, to: str = "completed", **values: Any) -> bool:
        return await service.transition(
            session,
            self.hub,
            self.job_id,
            from_statuses=["running"],
            to=to,
            owner=self.owner,
            **values,
        )


class Worker:
    def __init__(
        self,
        database: Database,
        hub: JobHub,
        specs: dict[str, JobSpec],
        *,
        owner: str,
        concurrency: int,
        lease_seconds: float,
        poll_seconds: float,
        max_attempts: int,
        settings: Any = None,
        http: httpx.AsyncClient | None = None,
        parts: AppState | None = None,
        turns: int = 0,
    ) -> None:
        self.database = database
        self.hub = hub
        self.specs = specs
        self.owner = owner
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.max_attempts = max_attempts
        self.settings = settings
        self.http = http
        self.parts = parts
        self.turns = Turns(turns) if turns else None
        self._running: dict[str, asyncio.Task[None]] = {}
        self._full = False  # the last claim took as many jobs as there were free slots
        self._loops: list[asyncio.Task[None]] = []
        self._stopping = False

    async def start(self) -> None:
        # Jobs this node was running when it last stopped are lost now, not after their
        # leases run out.
        await self.sweep(own=True)
        loop = asyncio.get_running_loop()
        self._loops = [
            loop.create_task(self._claim_loop()),
            loop.create_task(self._heartbeat_loop()),
            loop.create_task(self._sweep_loop()),
        ]

    async def stop(self) -> None:
        self._stopping = True
        for task in self._loops:
            task.cancel()
        for task in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        running = list(self._running.values())
        for task in running:
            task.cancel()
        for task in running:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        # What was still running is lost with this process, but not through any fault of
        # its own: it is queued again whatever its attempts (a restart, a deploy).
        await self.sweep(own=True, stopping=True)

    # -- claiming and running -------------------------------------------------------------

    async def _claim_loop(self) -> None:
        while not self._stopping:
            free = self.concurrency - len(self._running)
            claimed: list[Job] = []
            new_work = self.hub.watch(NEW_WORK)  # from before the claim: no wake-up lost
            if free > 0:
                try:
                    async with self.database.session() as session:
                        claimed = await service.claim(
                            session,
                            owner=self.owner,
                            kinds=list(self.specs),
                            limit=free,
                            lease_seconds=self.lease_seconds,
                        )
                        await session.commit()
                except Exception:
                    logger.exception("claiming jobs failed")
                    self.hub.unwatch(NEW_WORK, new_work)
                    await asyncio.sleep(self.poll_seconds)
                    continue
            # Every slot filled: more may be queued, and a finishing job must look again.
            self._full = len(claimed) == free
            for job in claimed:
                task = asyncio.get_running_loop().create_task(self._execute(job))
                self._running[job.id] = task
                task.add_done_callback(functools.partial(self._done, job.id))
            if 0 < free == len(claimed):
                self.hub.unwatch(NEW_WORK, new_work)  # the queue may hold more: claim again
                continue
            await self.hub.wait(NEW_WORK, self.poll_seconds, new_work)

    def _done(self, job_id: str, _task: asyncio.Task[None]) -> None:
        self._running.pop(job_id, None)
        if self._full:  # else the queue was empty at the last claim, and new work announces itself
            self.hub.wake(NEW_WORK)

    async def _execute(self, job: Job) -> None:
        spec = self.specs[job.kind]
        ctx = JobContext(
            job_id=job.id,
            kind=job.kind,
            tenant=Tenant(job.org_id, Environment(job.environment)),
            input=dict(job.input or {}),
            state=dict(job.state or {}),
            attempt=job.attempts,
            owner=self.owner,
            database=self.database,
            hub=self.hub,
            settings=self.settings,
            http=self.http,
            parts=self.parts,
            turns=self.turns,
        )
        try:
            await spec.handler(ctx)
        except (Parked, Stopped):
            return
        except asyncio.CancelledError:
            raise
        except Exception as error:
            logger.exception("job %s (%s) failed", job.id, job.kind)
            async with self.database.session() as session:
                await spec.on_error(session, self.hub, job, error)
                await session.commit()

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            ids = list(self._running)
            if not ids:
                continue
            try:
                async with self.database.session() as session:
                    held = await service.renew(
                        session, owner=self.owner, job_ids=ids, lease_seconds=self.lease_seconds
                    )
                    await session.commit()
            except Exception:
                logger.exception("renewing job leases failed")
                continue
            for job_id in set(ids) - held:  # cancelled, or taken over: stop working on it
                task = self._running.get(job_id)
                if task is not None:
                    task.cancel()

    # -- recovery ----------------------------------------------------------------------

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(max(1.0, self.lease_seconds / 3))
            try:
                await self.sweep()
            except Exception:
                logger.exception("job sweep failed")

    async def sweep(self, *, own: bool = False, stopping: bool = False) -> None:
        """Hand lost jobs (lease run out; with `own`, this node's from before) and parked
        jobs past their deadline to their kind's policy. A lost job that has used its
        attempts fails; with `stopping`, this node's own jobs (which it cancelled) do not."""
        now = utcnow()
        async with self.database.session() as session:
            lost = await service.lost(session, now=now, owner=self.owner if own else None)
            for job in lost:
                if job.id in self._running or job.kind not in self.specs:
                    continue
                spec = self.specs[job.kind]
                if self._exhausted(spec, job, stopping):
                    logger.error(
                        "job %s (%s) failed: its worker stopped %d times while running it",
                        job.id,
                        job.kind,
                        job.attempts,
                    )
                    await spec.on_error(session, self.hub, job, TooManyAttempts(job.attempts))
                else:
                    await spec.on_lost(session, self.hub, job)
            for job in await service.parked_past(session, now=now):
                if job.kind in self.specs:
                    await self.specs[job.kind].on_park_expired(session, self.hub, job)
            await session.commit()

    def _exhausted(self, spec: JobSpec, job: Job, stopping: bool) -> bool:
        if not spec.limit_attempts or job.attempts < self.max_attempts:
            return False
        return not (stopping and job.lease_owner == self.owner)

"""The job runtime on its own: claiming, the event log, park and resume, leases, cancel."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from sqlalchemy import select

from helpers.tenants import Tenants
from openenrich.config import Settings
from openenrich.db import Database
from openenrich.ids import new_id
from openenrich.jobs import service
from openenrich.jobs.models import Job, JobEvent
from openenrich.jobs.notify import JobHub
from openenrich.jobs.service import resume
from openenrich.jobs.worker import JobContext, JobSpec, Worker
from openenrich.tenancy.roles import Environment
from openenrich.tenancy.tenant import Tenant

pytestmark = pytest.mark.anyio


@pytest.fixture
def tenant(tenants: Tenants) -> Tenant:
    async def make(session):  # type: ignore[no-untyped-def]
        from openenrich.tenancy import service as tenancy

        return (await tenancy.ensure_organization(session, "acme")).id

    return Tenant(tenants.run(make), Environment.LIVE)


async def enqueue(
    database: Database, hub: JobHub, tenant: Tenant, kind: str, count: int, **input: object
) -> list[str]:
    ids = [new_id("job") for _ in range(count)]
    async with database.session() as session:
        for job_id in ids:
            await service.create(
                session, hub, job_id=job_id, tenant=tenant, kind=kind, input=dict(input)
            )
        await session.commit()
    return ids


def worker(database: Database, hub: JobHub, spec: JobSpec, owner: str, **options: float) -> Worker:
    return Worker(
        database,
        hub,
        {spec.kind: spec},
        owner=owner,
        concurrency=int(options.get("concurrency", 4)),
        lease_seconds=options.get("lease", 5.0),
        poll_seconds=options.get("poll", 0.1),
        max_attempts=int(options.get("max_attempts", 5)),
    )


async def wait_until(check, seconds: float = 10) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.05)


async def statuses(database: Database, ids: list[str]) -> Counter[str]:
    async with database.session() as session:
        return Counter(await session.scalars(select(Job.status).where(Job.id.in_(ids))))


async def test_two_workers_run_each_job_exactly_once(settings: Settings, tenant: Tenant) -> None:
    database = Database.from_settings(settings)
    hub = JobHub()
    ran: Counter[str] = Counter()

    async def handler(ctx: JobContext) -> None:
        ran[ctx.job_id] += 1
        await asyncio.sleep(0.01)
        async with ctx.transaction() as session:
            await ctx.emit("done", {"by": ctx.owner}, session)
            await ctx.finish(session)

    spec = JobSpec("test.count", handler)
    first, second = worker(database, hub, spec, "w1"), worker(database, hub, spec, "w2")
    try:
        ids = await enqueue(database, hub, tenant, "test.count", 60)
        await first.start()
        await second.start()
        await wait_until(lambda: _all(database, ids, "completed"))
    finally:
        await first.stop()
        await second.stop()
        await database.dispose()
    assert set(ran) == set(ids)
    assert set(ran.values()) == {1}


async def _all(database: Database, ids: list[str], status: str) -> bool:
    return (await statuses(database, ids))[status] == len(ids)


async def test_event_numbers_are_unique_and_gapless_under_concurrent_writers(
    settings: Settings, tenant: Tenant
) -> None:
    database = Database.from_settings(settings)
    hub = JobHub()
    try:
        (job_id,) = await enqueue(database, hub, tenant, "test.log", 1)

        async def write(n: int) -> int:
            async with database.session() as session:
                seq = await service.append_event(session, hub, job_id, "line", {"n": n})
                await session.commit()
                return seq

        seqs = await asyncio.gather(*(write(n) for n in range(40)))
        async with database.session() as session:
            logged = list(
                await session.scalars(select(JobEvent.seq).where(JobEvent.job_id == job_id))
            )
    finally:
        await database.dispose()
    assert sorted(seqs) == list(range(1, 41))
    assert sorted(logged) == list(range(1, 41))


async def test_park_and_resume_after_a_restart(settings: Settings, tenant: Tenant) -> None:
    database = Database.from_settings(settings)
    hub = JobHub()
    calls: list[dict[str, object]] = []

    async def handler(ctx: JobContext) -> None:
        calls.append(dict(ctx.state))
        if "answer" not in ctx.state:
            async with ctx.transaction() as session:
                await ctx.save_state(session, step="asked")
                await ctx.park(session, until=None)
        async with ctx.transaction() as session:
            await ctx.emit(
                "finished", {"answer": ctx.state["answer"], "step": ctx.state["step"]}, session
            )
            await ctx.finish(session)

    spec = JobSpec("test.ask", handler)
    try:
        (job_id,) = await enqueue(database, hub, tenant, "test.ask", 1)
        before = worker(database, hub, spec, "node-a")
        await before.start()
        await wait_until(lambda: _all(database, [job_id], "parked"))
        await before.stop()  # the process goes away while the job waits

        async with database.session() as session:
            assert await resume(session, hub, job_id, answer=42)
            assert not await resume(session, hub, job_id, answer=43)  # only once
            await session.commit()
        after = worker(database, hub, spec, "node-b")
        await after.start()
        await wait_until(lambda: _all(database, [job_id], "completed"))
        await after.stop()
        async with database.session() as session:
            events = list(await session.scalars(select(JobEvent).where(JobEvent.job_id == job_id)))
    finally:
        await database.dispose()
    assert calls == [{}, {"step": "asked", "answer": 42}]  # resumed where it stopped
    assert events[-1].data == {"answer": 42, "step": "asked"}


async def test_a_job_whose_worker_vanished_is_recovered(settings: Settings, tenant: Tenant) -> None:
    database = Database.from_settings(settings)
    hub = JobHub()
    done: list[str] = []

    async def handler(ctx: JobContext) -> None:
        done.append(ctx.owner)
        async with ctx.transaction() as session:
            await ctx.finish(session)

    spec = JobSpec("test.lease", handler)  # the default policy: back in the queue
    try:
        (job_id,) = await enqueue(database, hub, tenant, "test.lease", 1)
        async with database.session() as session:  # a worker claims it and dies at once
            (claimed,) = await service.claim(
                session, owner="ghost", kinds=["test.lease"], limit=1, lease_seconds=0.3
            )
            await session.commit()
        assert claimed.id == job_id
        survivor = worker(database, hub, spec, "alive", lease=3.0)
        await survivor.start()
        await asyncio.sleep(0.4)
        await survivor.sweep()  # the lease ran out: requeued, then run by the survivor
        await wait_until(lambda: _all(database, [job_id], "completed"))
        await survivor.stop()
        async with database.session() as session:
            job = await session.get(Job, job_id)
            assert job is not None
            attempts = job.attempts
    finally:
        await database.dispose()
    assert done == ["alive"]
    assert attempts == 2


async def claim_and_vanish(database: Database, kind: str, owner: str) -> Job:
    """What a worker that dies while running its job leaves: a claim whose lease runs out."""
    async with database.session() as session:
        (claimed,) = await service.claim(
            session, owner=owner, kinds=[kind], limit=1, lease_seconds=0.05
        )
        await session.commit()
    await asyncio.sleep(0.1)
    return claimed


async def job_row(database: Database, job_id: str) -> Job:
    async with database.session() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        return job


async def test_a_job_whose_worker_keeps_dying_fails_after_its_attempts(
    settings: Settings, tenant: Tenant
) -> None:
    database = Database.from_settings(settings)
    hub = JobHub()

    async def handler(ctx: JobContext) -> None:
        raise AssertionError("only the sweep sees this job")

    spec = JobSpec("test.doomed", handler)
    sweeper = worker(database, hub, spec, "sweeper", max_attempts=3)  # not started: it sweeps
    seen: list[tuple[int, str, object]] = []
    try:
        (job_id,) = await enqueue(database, hub, tenant, "test.doomed", 1)
        for attempt in range(1, 4):
            claimed = await claim_and_vanish(database, "test.doomed", f"node-{attempt}")
            assert claimed.attempts == attempt
            await sweeper.sweep()
            job = await job_row(database, job_id)
            seen.append((job.attempts, job.status, job.error))
        await sweeper.sweep()  # a failed job stays failed
        final = await job_row(database, job_id)
    finally:
        await database.dispose()
    message = "The job's worker stopped 3 times while running it"
    assert seen == [
        (1, "queued", None),
        (2, "queued", None),
        (3, "failed", {"code": "too_many_attempts", "message": message}),
    ]
    assert (final.status, final.lease_owner, final.finished_at is not None) == (
        "failed",
        None,
        True,
    )


async def test_the_attempts_bound_spares_a_stopping_node_and_kinds_without_it(
    settings: Settings, tenant: Tenant
) -> None:
    """A node that shuts down hands its jobs back whatever their attempts (a deploy is not
    the job's fault); a kind that opts out of the bound always goes to its `on_lost`."""
    database = Database.from_settings(settings)
    hub = JobHub()
    started = asyncio.Event()

    async def stuck(ctx: JobContext) -> None:
        started.set()
        await asyncio.Event().wait()

    bounded = JobSpec("test.stuck", stuck)
    unbounded = JobSpec("test.free", stuck, limit_attempts=False)
    try:
        (stuck_id,) = await enqueue(database, hub, tenant, "test.stuck", 1)
        (free_id,) = await enqueue(database, hub, tenant, "test.free", 1)
        await claim_and_vanish(database, "test.stuck", "node-gone")
        runner = worker(database, hub, bounded, "node-up", max_attempts=2)
        await runner.start()  # its first sweep requeues the lost job; it claims it again
        await asyncio.wait_for(started.wait(), 10)
        assert (await job_row(database, stuck_id)).attempts == 2
        await runner.stop()
        after_stop = await job_row(database, stuck_id)

        sweeper = worker(database, hub, unbounded, "sweeper", max_attempts=1)
        for n in range(3):
            await claim_and_vanish(database, "test.free", f"node-{n}")
            await sweeper.sweep()
        free = await job_row(database, free_id)
    finally:
        await database.dispose()
    assert (after_stop.status, after_stop.attempts, after_stop.error) == ("queued", 2, None)
    assert (free.status, free.attempts) == ("queued", 3)


async def test_cancel_is_cooperative(settings: Settings, tenant: Tenant) -> None:
    database = Database.from_settings(settings)
    hub = JobHub()
    steps: list[int] = []

    async def handler(ctx: JobContext) -> None:
        for step in range(100):
            await ctx.ensure_running()
            steps.append(step)
            await asyncio.sleep(0.02)

    spec = JobSpec("test.long", handler)
    try:
        (job_id,) = await enqueue(database, hub, tenant, "test.long", 1)
        runner = worker(database, hub, spec, "w")
        await runner.start()
        await wait_until(lambda: _has(steps, 3))
        async with database.session() as session:
            assert await service.transition(
                session, hub, job_id, from_statuses=["running"], to="cancelled"
            )
            await session.commit()
        await asyncio.sleep(0.2)
        stopped_at = len(steps)
        await asyncio.sleep(0.2)
        await runner.stop()
        assert (await statuses(database, [job_id]))["cancelled"] == 1
    finally:
        await database.dispose()
    assert len(steps) == stopped_at < 100


async def _has(steps: list[int], count: int) -> bool:
    return len(steps) >= count


@pytest.mark.parametrize("turns", [1, 0])
async def test_job_steps_take_turns_when_the_worker_has_them(
    settings: Settings, tenant: Tenant, turns: int
) -> None:
    """With one turn, no two jobs are ever inside a step at once, a transaction inside a
    turn (the same task) does not wait for itself, and the waits outside steps (the
    network) still overlap; without turns, steps overlap too."""
    database = Database.from_settings(settings)
    hub = JobHub()
    inside = outside = 0
    most_inside = most_outside = 0

    async def handler(ctx: JobContext) -> None:
        nonlocal inside, outside, most_inside, most_outside
        outside += 1
        most_outside = max(most_outside, outside)
        await asyncio.sleep(0.05)  # a tool call: no turn
        outside -= 1
        async with ctx.turn():
            inside += 1
            most_inside = max(most_inside, inside)
            await asyncio.sleep(0.01)  # a PDF in a thread, say: still the job's turn
            async with ctx.transaction() as session:
                await ctx.finish(session)
            inside -= 1

    spec = JobSpec("test.turns", handler)
    runner = Worker(
        database,
        hub,
        {spec.kind: spec},
        owner="w1",
        concurrency=8,
        lease_seconds=5.0,
        poll_seconds=0.1,
        max_attempts=5,
        turns=turns,
    )
    try:
        ids = await enqueue(database, hub, tenant, "test.turns", 8)
        await runner.start()
        await wait_until(lambda: _all(database, ids, "completed"))
    finally:
        await runner.stop()
        await database.dispose()
    assert most_outside > 1
    if turns:
        assert most_inside == 1
    else:
        assert most_inside > 1

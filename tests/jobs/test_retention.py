"""The job-events retention purge (`jobs.retention`), through the notes surface of
conftest.py: the events of jobs finished long ago go, in batches; the jobs stay readable,
and their streams close at once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from sqlalchemy import func, select, update

from jobs.conftest import follow
from openenrich.config import Settings
from openenrich.db import Database
from openenrich.ids import utcnow
from openenrich.jobs import retention, service
from openenrich.jobs.models import Job, JobEvent
from openenrich.jobs.notify import JobHub
from openenrich.jobs.retention import BATCH, Chunk


def new_note(notes: httpx.Client, key: str | None = None) -> str:
    headers = {"Idempotency-Key": key} if key is not None else {}
    created = notes.post("/api/notes", headers=headers, json={"text": "hello"})
    assert created.status_code in (200, 201)
    return str(created.json()["id"])


def move(notes: httpx.Client, note_id: str, to: str) -> None:
    assert notes.post(f"/api/notes/{note_id}/status", json={"to": to}).json() == {"moved": True}


def events(notes: httpx.Client, note_id: str) -> list[int | None]:
    """The ids of what the note's event stream replays (it must close: the note ended)."""
    with notes.stream("GET", f"/api/notes/{note_id}/events") as response:
        assert response.status_code == 200
        got = follow(response)
    assert got.closed
    return [event.id for event in got.events]


def run(settings: Settings, work):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        database = Database.from_settings(settings)
        try:
            return await work(database)
        finally:
            await database.dispose()

    return asyncio.run(go())


def add_events(settings: Settings, note_id: str, count: int) -> None:
    async def add(database: Database) -> None:
        async with database.session() as session:
            lines = [("line", {"n": n}) for n in range(count)]
            await service.append_events(session, JobHub(), note_id, lines)
            await session.commit()

    run(settings, add)


def finished_days_ago(settings: Settings, days: float, *note_ids: str) -> None:
    async def age(database: Database) -> None:
        async with database.session() as session:
            await session.execute(
                update(Job)
                .where(Job.id.in_(note_ids))
                .values(finished_at=utcnow() - timedelta(days=days))
            )
            await session.commit()

    run(settings, age)


def purge(settings: Settings) -> None:
    run(settings, lambda database: retention.purge_events(database, settings))


def kept(settings: Settings) -> dict[str, int]:
    """Events per job, of the jobs that have any."""

    async def count(database: Database) -> dict[str, int]:
        async with database.session() as session:
            rows = await session.execute(
                select(JobEvent.job_id, func.count().label("count")).group_by(JobEvent.job_id)
            )
            return {row.job_id: row.count for row in rows}

    result: dict[str, int] = run(settings, count)
    return result


def test_events_of_jobs_finished_before_the_retention_period_are_purged(
    notes: httpx.Client, settings: Settings
) -> None:
    days = settings.job_events_retention_days
    big = new_note(notes)  # more events than one batch deletes
    add_events(settings, big, 2 * BATCH + 499)
    smalls = [new_note(notes) for _ in range(3)]  # a batch holds two of them
    for note_id in smalls:
        add_events(settings, note_id, 449)
    bare = new_note(notes)  # its `created` event only
    recent = new_note(notes)  # finished, within the period
    running = new_note(notes)  # started long ago, not finished
    move(notes, running, "running")
    old = [big, *smalls, bare]
    for note_id in [*old, recent]:
        move(notes, note_id, "completed")
    finished_days_ago(settings, days + 1, *old)
    finished_days_ago(settings, days - 1, recent)

    purge(settings)
    assert kept(settings) == {recent: 1, running: 1}
    for note_id in old:
        # The job is still there; its stream replays nothing and closes.
        assert notes.get(f"/api/notes/{note_id}").json() == {"id": note_id, "state": "done"}
        assert events(notes, note_id) == []
    assert events(notes, recent) == [1]

    purge(settings)  # nothing more to do
    finished_days_ago(settings, days + 1, recent)
    purge(settings)  # its time has come
    assert kept(settings) == {running: 1}


def test_a_job_queued_again_after_its_purge_keeps_its_new_events(
    notes: httpx.Client, settings: Settings
) -> None:
    """An interrupted job retried by its key after its log was purged: the new log is kept
    for the period after it ends again, then purged like any other."""
    days = settings.job_events_retention_days
    note = new_note(notes, key="retry")
    move(notes, note, "interrupted")
    finished_days_ago(settings, days + 1, note)
    purge(settings)
    assert kept(settings) == {}
    assert new_note(notes, key="retry") == note  # queued again, under its id
    notes.post(f"/api/notes/{note}/lines", json={"text": "again"})
    move(notes, note, "completed")
    purge(settings)
    assert events(notes, note) == [2]  # numbering goes on from the purged log
    finished_days_ago(settings, days + 1, note)
    purge(settings)
    assert kept(settings) == {}


def test_each_transaction_deletes_one_batch_at_most() -> None:
    due = [("big", 2 * BATCH + 1), ("a", 600), ("b", 400), ("c", 1), ("d", 0), ("e", BATCH)]
    assert retention.plan(due) == [
        Chunk(["big"], 0, BATCH, False),
        Chunk(["big"], BATCH, 2 * BATCH, False),
        Chunk(["big"], 2 * BATCH, 3 * BATCH, True),
        Chunk(["a", "b"], 0, BATCH, True),
        Chunk(["c", "d"], 0, BATCH, True),
        Chunk(["e"], 0, BATCH, True),
    ]

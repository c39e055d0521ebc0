"""Idempotent creation from the job facility (`jobs.idempotency`), through the notes
surface of conftest.py (and its memos: another kind of job on the same keys)."""

from __future__ import annotations

import asyncio
import concurrent.futures
from datetime import timedelta

import httpx
from sqlalchemy import func, select, update

from openenrich.config import Settings
from openenrich.db import Database
from openenrich.ids import utcnow
from openenrich.jobs import idempotency
from openenrich.jobs.models import IdempotencyKey, Job


def create(notes: httpx.Client, text: str, key: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return notes.post("/api/notes", headers=headers, json={"text": text})


def test_the_same_key_and_body_give_the_same_job_another_body_409(notes: httpx.Client) -> None:
    first = create(notes, "hello", "order-1")
    assert first.status_code == 201
    again = create(notes, "hello", "order-1")
    assert again.status_code == 200
    assert again.json() == first.json()
    # `stream` shapes the answer, not the job: asking to stream the retry is the same job.
    with notes.stream(
        "POST",
        "/api/notes",
        headers={"Idempotency-Key": "order-1"},
        json={"text": "hello", "stream": True},
    ) as streamed:
        assert streamed.status_code == 200
        assert f'"id": "{first.json()["id"]}"' in next(
            line for line in streamed.iter_lines() if line.startswith("data: ")
        )
    other = create(notes, "another body", "order-1")
    assert other.status_code == 409
    assert other.json() == {
        "detail": "That key was used for something else",
        "used_for": first.json()["id"],
    }
    # The key names a note: the same request for a memo is another request.
    memo = notes.post("/api/memos", headers={"Idempotency-Key": "order-1"}, json={"text": "hello"})
    assert memo.status_code == 409
    # Without a key, or with another one, each request makes a job.
    ids = {create(notes, "hello").json()["id"] for _ in range(2)}
    ids.add(create(notes, "hello", "order-2").json()["id"])
    assert len(ids) == 3
    assert first.json()["id"] not in ids


def test_a_key_must_be_1_to_255_characters(notes: httpx.Client) -> None:
    for key in ("", "k" * 256):
        refused = create(notes, "hello", key)
        assert refused.status_code == 400  # this surface's status (runs answer 422)
        assert refused.json() == {"detail": "Idempotency-Key: must be 1 to 255 characters"}
    assert create(notes, "hello", "k" * 255).status_code == 201


def test_concurrent_requests_with_one_key_make_one_job(
    notes: httpx.Client, settings: Settings
) -> None:
    def post() -> httpx.Response:
        with httpx.Client(base_url=str(notes.base_url), timeout=30) as client:
            return client.post(
                "/api/notes", headers={"Idempotency-Key": "burst"}, json={"text": "once"}
            )

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: post(), range(8)))
    assert sorted(a.status_code for a in answers) == [200] * 7 + [201]
    assert len({a.json()["id"] for a in answers}) == 1
    assert count_jobs(settings) == 1  # the losers' jobs were rolled back with their keys


def test_an_interrupted_job_is_queued_again_by_its_key(notes: httpx.Client) -> None:
    job_id = create(notes, "hello", "retry-me").json()["id"]
    moved = notes.post(f"/api/notes/{job_id}/status", json={"to": "interrupted"})
    assert moved.json() == {"moved": True}
    assert notes.get(f"/api/notes/{job_id}").json()["state"] == "interrupted"
    again = create(notes, "hello", "retry-me")
    assert again.status_code == 200
    assert again.json() == {"id": job_id, "state": "waiting"}  # queued, under the same id


def test_keys_are_purged_after_their_time_to_live(notes: httpx.Client, settings: Settings) -> None:
    old = create(notes, "hello", "old").json()["id"]
    create(notes, "hello", "new")

    async def age_and_purge() -> None:
        database = Database.from_settings(settings)
        try:
            async with database.session() as session:
                hours = settings.idempotency_ttl_hours + 1
                await session.execute(
                    update(IdempotencyKey)
                    .where(IdempotencyKey.key == "old")
                    .values(created_at=utcnow() - timedelta(hours=hours))
                )
                await session.commit()
            await idempotency.purge(database, settings)
        finally:
            await database.dispose()

    asyncio.run(age_and_purge())
    assert create(notes, "hello", "new").status_code == 200
    fresh = create(notes, "hello", "old")  # forgotten: a new job
    assert fresh.status_code == 201
    assert fresh.json()["id"] != old


def count_jobs(settings: Settings) -> int:
    async def count() -> int:
        database = Database.from_settings(settings)
        try:
            async with database.session() as session:
                return int(await session.scalar(select(func.count()).select_from(Job)) or 0)
        finally:
            await database.dispose()

    return asyncio.run(count())

"""The session enricher: sessions split at the gap, carried across batches and across a
fresh enricher reading the table (a restart), on each database backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from sqlalchemy import text

from helpers.tenants import Tenants
from openenrich.config import Settings
from openenrich.db import Database
from openenrich.enrichers import registry
from openenrich.enrichers.registry import Enricher, EnricherEnv, StreamScope
from openenrich.enrichers.session import (
    CHUNK,
    LOAD_CHUNK,
    purge_sessions,
    session_id,
    user_key,
)
from openenrich.tenancy import service

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T0_MS = int(T0.timestamp() * 1000)
MINUTE_MS = 60_000


def at(minutes: float) -> int:
    return T0_MS + int(minutes * MINUTE_MS)


def events(*rows: tuple[str | None, float]) -> pa.Table:
    return pa.Table.from_pylist(
        [{"user_id": user, "timestamp": at(minutes)} for user, minutes in rows],
        schema=pa.schema([("user_id", pa.string()), ("timestamp", pa.int64())]),
    )


def sid(user: str, minutes: float) -> str:
    return session_id("clicks", user, at(minutes) * 1000)


async def run_batch(
    database: Database, enricher: Enricher, scope: StreamScope, table: pa.Table
) -> list[tuple[Any, ...]]:
    """A flush: load, apply, save in one transaction, committed."""
    async with database.session() as session:
        await enricher.load(database, scope, table)
        added = enricher.apply(table)
        await enricher.save(session, scope)
        await session.commit()
    enricher.committed()
    return list(zip(*(values.to_pylist() for values in added.values()), strict=True))


@pytest.fixture
def scope(tenants: Tenants) -> StreamScope:
    org_id = tenants.run(lambda session: _org_id(session))
    return StreamScope(org_id, "live", "clicks")


async def _org_id(session: Any) -> str:
    return (await service.ensure_organization(session, "acme")).id


async def test_sessions_split_at_the_gap_and_carry_over_batches_and_restarts(
    settings: Settings, scope: StreamScope
) -> None:
    database = Database.from_settings(settings)
    env = EnricherEnv(settings)
    try:
        enricher = registry.build("session", None, env)
        # Out of order on purpose: the enricher sorts by (user, time).
        first = events(("a", 10), ("a", 0), ("b", 0), ("a", 41), (None, 5), ("a", 45))
        assert await run_batch(database, enricher, scope, first) == [
            (sid("a", 0), 2, False),
            (sid("a", 0), 1, True),
            (sid("b", 0), 1, True),
            (sid("a", 41), 1, True),  # 31 minutes after the last: a new session
            (None, None, None),  # no user, no session
            (sid("a", 41), 2, False),
        ]
        # The next flush continues a's session (29 minutes on) and starts b's second.
        second = events(("a", 74), ("b", 31))
        assert await run_batch(database, enricher, scope, second) == [
            (sid("a", 41), 3, False),
            (sid("b", 31), 1, True),
        ]
        # A restart: a new enricher knows only what the table says.
        restarted = registry.build("session", None, env)
        third = events(("b", 60), ("a", 104), ("a", 135.5))
        assert await run_batch(database, restarted, scope, third) == [
            (sid("b", 31), 2, False),
            (sid("a", 41), 4, False),
            (sid("a", 135.5), 1, True),
        ]
        # A user id too long to be a key is known by its hash, and carries over too.
        long = "u" * 300
        assert await run_batch(database, restarted, scope, events((long, 140))) == [
            (sid(user_key(long), 140), 1, True)
        ]
        assert await run_batch(database, restarted, scope, events((long, 150), ("a", 150))) == [
            (sid(user_key(long), 140), 2, False),
            (sid("a", 135.5), 2, False),
        ]
        # Another stream of the same tenant has sessions of its own.
        other = StreamScope(scope.org_id, scope.environment, "other")
        [(other_id, seq, new)] = await run_batch(database, restarted, other, events(("a", 136)))
        assert (seq, new) == (1, True)
        assert other_id == session_id("other", "a", at(136) * 1000)
    finally:
        await database.dispose()


async def test_state_of_many_users_goes_and_comes_back_in_chunks(
    settings: Settings, scope: StreamScope
) -> None:
    largest = max(*CHUNK.values(), *LOAD_CHUNK.values())
    users = [f"user-{n}" for n in range(largest * 2 + 7)]
    database = Database.from_settings(settings)
    try:
        enricher = registry.build("session", None, EnricherEnv(settings))
        opened = await run_batch(database, enricher, scope, events(*((u, 0) for u in users)))
        assert opened == [(sid(u, 0), 1, True) for u in users]
        restarted = registry.build("session", None, EnricherEnv(settings))
        later = await run_batch(database, restarted, scope, events(*((u, 10) for u in users)))
        assert later == [(sid(u, 0), 2, False) for u in users]
    finally:
        await database.dispose()


async def test_a_failed_flush_changes_nothing_and_comes_out_the_same(
    settings: Settings, scope: StreamScope
) -> None:
    database = Database.from_settings(settings)
    try:
        enricher = registry.build("session", {"gap_minutes": 10}, EnricherEnv(settings))
        await run_batch(database, enricher, scope, events(("a", 0)))
        batch = events(("a", 5), ("a", 20))
        async with database.session() as session:
            await enricher.load(database, scope, batch)
            failed = enricher.apply(batch)
            await enricher.save(session, scope)
            await session.rollback()  # the flush transaction failed
        enricher.discarded()
        again = await run_batch(database, enricher, scope, batch)
        assert again == list(zip(*(v.to_pylist() for v in failed.values()), strict=True))
        assert again == [(sid("a", 0), 2, False), (sid("a", 20), 1, True)]
    finally:
        await database.dispose()


async def test_old_state_is_purged(settings: Settings, scope: StreamScope) -> None:
    database = Database.from_settings(settings)
    try:
        enricher = registry.build("session", None, EnricherEnv(settings))
        await run_batch(database, enricher, scope, events(("old", 0), ("new", 0)))
        async with database.session() as session:
            await session.execute(
                text("UPDATE stream_sessions SET updated_at = :when WHERE user_key = 'old'"),
                {"when": datetime.now(UTC) - timedelta(days=2)},
            )
            await session.commit()
        await purge_sessions(database, settings)
        async with database.session() as session:
            left = (await session.execute(text("SELECT user_key FROM stream_sessions"))).all()
        assert [row[0] for row in left] == ["new"]
    finally:
        await database.dispose()


def test_event_times_in_every_form_and_the_fallbacks() -> None:
    """ISO text, epoch seconds, a timestamp column, `_ingested_at` when the time is
    missing, and the anonymous id when the user id is."""
    enricher = registry.build("session", {"time_field": "ts"}, EnricherEnv(Settings()))
    ingested = pa.array(
        [T0 + timedelta(minutes=m) for m in (0, 0, 55, 0)], pa.timestamp("us", tz="UTC")
    )
    table = pa.table(
        {
            "user_id": [None, None, None, "u"],
            "anonymous_id": ["anon", "anon", "anon", "x"],
            "ts": ["2026-03-01T12:00:00Z", "2026-03-01T13:20:00+01:00", None, "1772366400"],
            "_ingested_at": ingested,
        }
    )
    added = enricher.apply(table)
    assert added["session_seq"].to_pylist() == [1, 2, 1, 1]
    assert added["session_is_new"].to_pylist() == [True, False, True, True]
    ids = added["session_id"].to_pylist()
    assert ids[0] == ids[1] != ids[2]

    for times in (
        pa.array([T0_MS // 1000, T0_MS // 1000 + 600], pa.int64()),
        pa.array([T0, T0 + timedelta(minutes=10)], pa.timestamp("ms", tz="UTC")),
        pa.array([float(T0_MS), float(T0_MS + 600_000)], pa.float64()),
        pa.array([T0_MS * 1000, (T0_MS + 600_000) * 1000], pa.int64()),  # microseconds
    ):
        added = enricher.apply(pa.table({"user_id": ["u", "u"], "ts": times}))
        assert added["session_seq"].to_pylist() == [1, 2]
        assert added["session_id"].to_pylist()[0] == session_id("", "u", T0_MS * 1000)


def test_a_time_that_is_not_a_number_is_no_time() -> None:
    enricher = registry.build("session", None, EnricherEnv(Settings()))
    table = pa.table({"user_id": ["u", "u"], "timestamp": pa.array([float("nan"), None])})
    added = enricher.apply(table)
    assert added["session_id"].to_pylist() == [None, None]


def test_session_ids_are_distinct_per_user_and_start_and_stable() -> None:
    """The batch computes ids with numpy; one user's sessions never share one, nor do two
    users' sessions that start together, and the same session always gets the same."""
    starts = [at(minutes) * 1000 for minutes in range(0, 5_000, 7)]
    ids = {session_id("clicks", "a", start) for start in starts}
    ids |= {session_id("clicks", "b", start) for start in starts}
    assert len(ids) == 2 * len(starts)
    assert all(len(value) == 32 and int(value, 16) >= 0 for value in ids)
    assert session_id("clicks", "a", starts[3]) == session_id("clicks", "a", starts[3])
    assert session_id("clicks", "a", starts[3]) != session_id("other", "a", starts[3])

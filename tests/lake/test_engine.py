"""The lake engine's recovery promises, with real log files, Parquet files and manifest."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import duckdb
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from helpers.tenants import Tenants
from openenrich.config import Settings
from openenrich.db import Database
from openenrich.lake.engine import BufferKey, FlushedFile, FlushFailed, LakeEngine
from openenrich.lake.models import LakeFile, QuarantinedRecord
from openenrich.lake.storage import LakeStorage

pytestmark = pytest.mark.anyio


class Interrupted(Exception):
    pass


def engine(
    settings: Settings, database: Database, on_flushed: Callable[..., Awaitable[None]] | None = None
) -> LakeEngine:
    async def declared(key: BufferKey, version: int) -> Mapping[str, str] | None:
        return None

    async def recorded(session: AsyncSession, files: list[FlushedFile]) -> None:
        return None

    return LakeEngine(
        settings,
        database,
        LakeStorage(settings),
        declared_columns=declared,
        on_flushed=on_flushed or recorded,
        on_flush_error=lambda key, error: None,
    )


async def crash_during_manifest(session: AsyncSession, files: list[FlushedFile]) -> None:
    # Runs inside the manifest transaction, after the files are published: failing here
    # leaves files in the lake that the manifest does not know, like a crash at that moment.
    raise Interrupted


async def append(lake: LakeEngine, org: str, first: int, count: int) -> None:
    payload = json.dumps([{"n": n} for n in range(first, first + count)]).encode()
    await lake.append(org, "live", "events", "data", payload, count=count)


def numbers_in(lake_root: str) -> list[int]:
    rows = duckdb.sql(f"SELECT n FROM read_parquet('{lake_root}/**/*.parquet')").fetchall()
    return sorted(n for (n,) in rows)


@pytest.fixture
def org(tenants: Tenants) -> str:
    async def make(session: AsyncSession) -> str:
        from openenrich.tenancy import service

        return (await service.ensure_organization(session, "acme")).id

    return tenants.run(make)


async def test_files_published_but_not_in_the_manifest_are_rewritten_not_duplicated(
    settings: Settings, org: str
) -> None:
    database = Database.from_settings(settings)
    try:
        first = engine(settings, database, on_flushed=crash_during_manifest)
        await first.start()
        await append(first, org, 0, 100)
        await append(first, org, 100, 100)
        with pytest.raises(FlushFailed) as failed:
            await first.flush_stream(org, "live", "events")
        assert isinstance(failed.value.__cause__, Interrupted)
        published = list(Path(settings.lake).rglob("*.parquet"))
        assert len(published) == 1  # in the lake, not in the manifest
        await append(first, org, 200, 50)  # more events after the failed flush
        await first.stop()  # its flush at shutdown fails the same way; the log keeps all

        second = engine(settings, database)
        await second.start()  # recovery buffers all 250 events again
        assert second.buffered(org, "live", "events") == 250
        files = await second.flush_stream(org, "live", "events")
        await second.stop()
    finally:
        await database.dispose()
    assert [f.rows for f in files] == [250]
    assert files[0].path in {str(p.relative_to(settings.lake)) for p in published}  # same name
    assert numbers_in(settings.lake) == list(range(250))


async def test_recovery_skips_what_the_manifest_already_has(settings: Settings, org: str) -> None:
    database = Database.from_settings(settings)
    try:
        first = engine(settings, database)
        await first.start()
        await append(first, org, 0, 10)
        await first.flush_stream(org, "live", "events")
        await append(first, org, 10, 5)
        # A crash: the process ends without flushing (stopping a log without its
        # final flush is what a kill leaves behind).
        assert first._wal is not None
        await first._wal.close()

        second = engine(settings, database)
        await second.start()
        assert second.buffered(org, "live", "events") == 5
        await second.flush_stream(org, "live", "events")
        await second.stop()
        async with database.session() as session:
            manifest = list(
                await session.scalars(select(LakeFile).order_by(LakeFile.wal_first_lsn))
            )
    finally:
        await database.dispose()
    assert [(f.rows, f.wal_first_lsn, f.wal_last_lsn) for f in manifest] == [(10, 0, 0), (5, 1, 1)]
    assert numbers_in(settings.lake) == list(range(15))


async def test_a_dead_process_log_is_adopted(settings: Settings, org: str) -> None:
    database = Database.from_settings(settings)
    try:
        one = engine(settings, database, on_flushed=crash_during_manifest)
        two = engine(settings, database, on_flushed=crash_during_manifest)
        await one.start()
        await two.start()  # two processes sharing a data folder: two logs
        await append(one, org, 0, 3)
        await append(two, org, 3, 4)
        await one.stop()
        await two.stop()
        wal = Path(settings.wal)
        assert sorted(p.name for p in wal.iterdir()) == ["0", "1"]

        survivor = engine(settings, database)
        await survivor.start()  # takes log 0 as its own and adopts log 1
        assert survivor.buffered(org, "live", "events") == 7
        await survivor.flush_all()
        await survivor.stop()
    finally:
        await database.dispose()
    assert numbers_in(settings.lake) == list(range(7))
    assert sorted(p.name for p in Path(settings.wal).iterdir()) == ["0"]


async def test_a_run_of_nothing_but_unreadable_records_is_quarantined_once(
    settings: Settings, org: str
) -> None:
    database = Database.from_settings(settings)
    try:
        first = engine(settings, database)
        await first.start()
        await first.append(org, "live", "events", "data", b'[{"s": "\xff"}]', count=1)
        await first.append(org, "live", "events", "data", b'{"cut": ', count=1)
        assert await first.flush_stream(org, "live", "events") == []  # no file, no error
        assert first.buffered(org, "live", "events") == 0
        await append(first, org, 0, 3)
        assert first._wal is not None
        await first._wal.close()  # a crash: the good record is still only in the log

        second = engine(settings, database)
        await second.start()
        assert second.buffered(org, "live", "events") == 3  # not the quarantined ones
        await second.stop()
        async with database.session() as session:
            quarantined = list(
                await session.scalars(select(QuarantinedRecord).order_by(QuarantinedRecord.wal_lsn))
            )
    finally:
        await database.dispose()
    assert [(q.wal_lsn, q.events, q.kind) for q in quarantined] == [(0, 1, "data"), (1, 1, "data")]
    assert all((settings.data_dir / q.path).is_file() for q in quarantined)
    assert numbers_in(settings.lake) == [0, 1, 2]

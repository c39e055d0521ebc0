"""A configuration change is seen by the next request, whatever ran while it committed.

Both races need PostgreSQL: on SQLite the commit and the registry's read run on the loop's
thread without waiting, so nothing can run between a change and its commit, nor between
a read and caching what it read.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.util import await_only

from helpers.server import LiveServer
from helpers.tenants import Tenants, bearer
from openenrich.app import create_app
from openenrich.config import Settings
from openenrich.db import Database
from openenrich.enrichers.registry import EnricherEnv
from openenrich.streams import configuration
from openenrich.streams.pipeline import Resources
from openenrich.streams.registry import StreamRegistry
from openenrich.tenancy.roles import Environment
from openenrich.tenancy.service import ensure_organization
from openenrich.tenancy.tenant import Tenant

ONLY_ON_POSTGRESQL = "on SQLite nothing runs between a change and its commit (see above)"

LOCK = 1313  # the advisory lock the test holds to keep the update's commit waiting

# Run at the update's COMMIT (a deferred trigger), so the commit waits for the lock.
HOLD_COMMIT = f"""
CREATE FUNCTION hold_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock({LOCK});
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER hold_commit AFTER UPDATE ON streams
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION hold_commit();
"""
WAITING = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def _connect(database_url: str) -> psycopg.Connection[tuple[object, ...]]:
    url = make_url(database_url).set(drivername="postgresql")
    return psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)


def test_ingest_during_an_update_commit_does_not_keep_the_old_configuration(
    tmp_path: Path, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip(ONLY_ON_POSTGRESQL)
    # Long enough that a configuration cached in the window would outlive the test.
    settings = Settings(
        data_dir=tmp_path / "data", database_url=database_url, stream_cache_seconds=3600
    )
    headers = bearer(Tenants(settings).key("acme"))
    with (
        LiveServer(create_app(settings)) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
        _connect(database_url) as holder,
    ):
        created = client.post("/streams", headers=headers, json={"stream_id": "orders"})
        assert created.status_code == 201, created.text
        holder.execute(HOLD_COMMIT)
        holder.execute("SELECT pg_advisory_lock(%s)", [LOCK])

        answers: list[httpx.Response] = []

        def update() -> None:
            with httpx.Client(base_url=server.url, timeout=30) as own:
                answers.append(
                    own.put(
                        "/streams/orders",
                        headers=headers,
                        json={"schema_mode": "strict", "fields": {"n": {"type": "int64"}}},
                    )
                )

        updating = threading.Thread(target=update)
        updating.start()
        try:
            deadline = time.monotonic() + 20
            while holder.execute(WAITING).fetchone() != (1,):
                assert time.monotonic() < deadline, "the update never reached its commit"
                time.sleep(0.01)
            # The update is made but not committed: this request reads the old
            # configuration (flex) and may cache it.
            during = client.post(
                "/ingest", headers=headers, json={"stream_id": "orders", "data": [{"n": "x"}]}
            )
            assert during.status_code == 200, during.text
            assert during.json() == {"accepted": 1, "buffered": 1}
        finally:
            holder.execute("SELECT pg_advisory_unlock(%s)", [LOCK])
            updating.join()
        assert answers[0].status_code == 200, answers[0].text

        after = client.post(
            "/ingest", headers=headers, json={"stream_id": "orders", "data": [{"n": "x"}]}
        )
        assert after.status_code == 200, after.text
        assert after.json() == {"accepted": 0, "buffered": 1, "rejected": 1}


@pytest.mark.anyio
async def test_a_lookup_that_read_before_a_committed_change_is_not_cached(
    settings: Settings,
) -> None:
    if settings.database.drivername.startswith("sqlite"):
        pytest.skip(ONLY_ON_POSTGRESQL)
    database = Database.from_settings(settings)
    registry = StreamRegistry(database, ttl=3600)
    resources = Resources(env=EnricherEnv(settings), template=lambda template_id: None)
    read, go_on = asyncio.Event(), asyncio.Event()
    armed = False

    def hold_the_lookup(connection: Any, cursor: Any, statement: str, *_: Any) -> None:
        """Keeps the registry's read waiting once it has the row (the old one)."""
        nonlocal armed
        if armed and "FROM streams" in statement:
            armed = False
            read.set()
            await_only(go_on.wait())

    event.listen(Engine, "after_cursor_execute", hold_the_lookup)
    try:
        async with database.session() as session:
            org = await ensure_organization(session, "acme")
            tenant = Tenant(org.id, Environment.LIVE)
            await configuration.create_stream(
                session, registry, tenant, stream_id="orders", resources=resources
            )
            await session.commit()

        armed = True
        lookup = asyncio.create_task(registry.get(tenant, "orders"))
        await read.wait()
        async with database.session() as session:
            await configuration.update_stream(
                session,
                registry,
                tenant,
                "orders",
                {"schema_mode": "strict", "fields": {"n": {"type": "int64"}}},
                resources=resources,
            )
            await session.commit()
        go_on.set()
        during = await lookup
        assert during is not None
        assert during.schema_mode == "flex"  # it read before the commit

        after = await registry.get(tenant, "orders")
        assert after is not None
        assert after.schema_mode == "strict"
    finally:
        event.remove(Engine, "after_cursor_execute", hold_the_lookup)
        go_on.set()
        await database.dispose()

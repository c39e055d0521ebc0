"""Idempotency-Key on /ingest and /v1/streams/ingest: a batch sent again answers the first
answer and stores nothing; a crash between logging and answering is resolved from the log."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import httpx
import orjson
import pytest

from helpers.processes import ServeProcess
from helpers.server import LiveServer
from helpers.tenants import Tenants, bearer
from openenrich.app import create_app
from openenrich.config import Settings
from openenrich.db import Database
from openenrich.lake.engine import LakeEngine
from openenrich.lake.storage import LakeStorage
from openenrich.streams.models import IngestKey
from openenrich.tenancy import service as tenancy
from streams.conftest import Lake


def wait_until(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the writers made no progress"
        time.sleep(0.05)


def send(lake: Lake, body: dict[str, Any], key: str | None) -> httpx.Response:
    headers = {**lake.headers, "content-type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return lake.client.post("/ingest", headers=headers, content=orjson.dumps(body))


def test_a_batch_sent_again_with_its_key_is_stored_once(lake: Lake) -> None:
    lake.create("web")
    batch = {"stream_id": "web", "data": [{"n": n} for n in range(10)]}
    first = send(lake, batch, "batch-1")
    assert first.status_code == 200
    again = send(lake, batch, "batch-1")
    assert again.status_code == 200
    assert again.json() == first.json()
    assert send(lake, batch, "batch-2").status_code == 200  # another key: stored again
    assert send(lake, batch, None).status_code == 200  # no key: as before
    lake.flush("web")
    assert lake.rows("SELECT count(*) FROM web") == [[30]]


def test_the_same_key_for_another_batch_is_refused(lake: Lake) -> None:
    lake.create("web")
    assert send(lake, {"stream_id": "web", "data": [{"n": 1}]}, "k").status_code == 200
    other = send(lake, {"stream_id": "web", "data": [{"n": 2}]}, "k")
    assert other.status_code == 400  # the streams references answer 400 for a bad request
    assert "another batch" in other.json()["error"]
    too_long = send(lake, {"stream_id": "web", "data": [{"n": 1}]}, "x" * 256)
    assert too_long.status_code == 400


def test_a_refused_batch_keeps_no_key(lake: Lake) -> None:
    body = {"stream_id": "web", "data": [{"n": 1}]}
    assert send(lake, body, "early").status_code == 404  # no such stream yet
    lake.create("web")
    assert send(lake, body, "early").status_code == 200  # the retry is a new request
    assert send(lake, body, "early").status_code == 200
    lake.flush("web")
    assert lake.rows("SELECT count(*) FROM web") == [[1]]


def test_envelopes_and_dead_letters_answer_again(lake: Lake) -> None:
    lake.create("orders", schema_mode="strict", fields={"order_id": "string"})
    envelopes = [
        {"timestamp": "2026-12-07T10:00:00Z", "source": "web", "event": {"order_id": "A"}},
        {"timestamp": "2026-12-07T10:00:01Z", "source": "web", "event": {"order_id": 7}},
    ]
    headers = {**lake.headers, "X-Stream-Id": "orders", "Idempotency-Key": "env-1"}
    first = lake.client.post("/v1/streams/ingest", headers=headers, json=envelopes)
    again = lake.client.post("/v1/streams/ingest", headers=headers, json=envelopes)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert first.json()["rejected"] == 1
    lake.flush("orders")
    assert lake.rows("SELECT count(*) FROM orders") == [[1]]
    assert lake.rows("SELECT count(*) FROM dlq.orders") == [[1]]


@pytest.mark.subprocess
def test_writers_that_resend_their_batches_across_a_sigkill_store_each_once(
    settings: Settings, tenants: Tenants, tmp_path: Path
) -> None:
    """Each writer sends numbered batches with a key and, when the server dies, sends the
    same batch with the same key to the restarted server until it is answered: every event
    ends in the lake exactly once, whichever side of the log the kill fell on."""
    key = tenants.key("acme")
    data_dir = tmp_path / "serve"
    url = str(settings.database_url)
    env = {"OPENENRICH_FLUSH_MAX_EVENTS": "3000", "OPENENRICH_FLUSH_MAX_SECONDS": "0.3"}
    base = {"url": ""}
    sent: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()
    up = threading.Event()

    def writer(number: int) -> None:
        batch = 0
        while not stop.is_set():
            seqs = [f"w{number}-b{batch}-e{i}" for i in range(50)]
            body = orjson.dumps({"stream_id": "orders", "data": [{"seq": s} for s in seqs]})
            headers = {**bearer(key), "Idempotency-Key": f"w{number}-b{batch}"}
            while True:  # this batch until it is answered
                up.wait()
                try:
                    response = httpx.post(
                        f"{base['url']}/ingest", headers=headers, content=body, timeout=10
                    )
                except httpx.TransportError:
                    time.sleep(0.05)
                    continue
                if response.status_code == 409:  # its first try is being resolved
                    time.sleep(0.1)
                    continue
                assert response.status_code == 200, response.text
                break
            with lock:
                sent.update(seqs)
            batch += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    with ServeProcess(data_dir, database_url=url, env=env) as server:
        httpx.post(f"{server.url}/streams", headers=bearer(key), json={"stream_id": "orders"})
        base["url"] = server.url
        up.set()
        for thread in threads:
            thread.start()
        wait_until(lambda: len(sent) >= 3_000)  # the load is under way
        up.clear()
        server.kill()
    killed_at = len(sent)
    with ServeProcess(data_dir, database_url=url, env=env) as again:
        base["url"] = again.url
        up.set()
        wait_until(lambda: len(sent) >= killed_at + 3_000)  # and goes on after the restart
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        flushed = httpx.post(f"{again.url}/streams/orders/flush", headers=bearer(key), timeout=30)
        assert flushed.status_code == 200, flushed.text

    lake = data_dir / "lake"
    seqs = [
        row[0]
        for row in duckdb.sql(f"SELECT seq FROM read_parquet('{lake}/**/*.parquet')").fetchall()
    ]
    assert len(seqs) == len(set(seqs)), "an event was stored twice"
    assert set(seqs) == sent


def test_a_key_left_pending_by_a_crash_is_resolved_from_the_log(
    settings: Settings, tenants: Tenants
) -> None:
    """A crash after the events were logged, before their key was marked done: the retry
    gets the answer the log makes, and nothing is stored twice. A key whose events never
    reached the log is taken as new."""
    key = tenants.key("acme")
    logged = orjson.dumps({"stream_id": "web", "data": [{"n": n} for n in range(5)]})
    lost = orjson.dumps({"stream_id": "web", "data": [{"n": 100}]})

    async def crash_after_logging() -> None:
        database = Database.from_settings(settings)
        engine = LakeEngine(
            settings,
            database,
            LakeStorage(settings),
            declared_columns=lambda key, version: asyncio.sleep(0, None),
            on_flushed=lambda session, files: asyncio.sleep(0),
            on_flush_error=lambda key, error: None,
        )
        try:
            await engine.start()
            async with database.session() as session:
                org = await tenancy.ensure_organization(session, "acme")
                for name, body in (("logged", logged), ("lost", lost)):
                    session.add(
                        IngestKey(
                            org_id=org.id,
                            environment="live",
                            key=name,
                            body_hash=hashlib.sha256(body).hexdigest(),
                            node=engine.node_id,
                            state="pending",
                            answer={"accepted": 0, "buffered": 0},
                        )
                    )
                await session.commit()
            lines = b"\n".join(orjson.dumps({"n": n}) for n in range(5))
            await engine.append(org.id, "live", "web", "data", lines, count=5, tag="logged")
            assert engine._wal is not None
            await engine._wal.close()  # the crash: the key is still pending
        finally:
            await database.dispose()

    with LiveServer(create_app(settings)) as server, httpx.Client(base_url=server.url) as client:
        lake = Lake(client, key)
        assert lake.create("web").status_code == 201
    asyncio.run(crash_after_logging())
    with LiveServer(create_app(settings)) as server, httpx.Client(base_url=server.url) as client:
        lake = Lake(client, key)
        headers = {**lake.headers, "content-type": "application/json"}
        again = client.post(
            "/ingest", headers={**headers, "Idempotency-Key": "logged"}, content=logged
        )
        assert again.status_code == 200, again.text
        assert again.json()["accepted"] == 5
        anew = client.post("/ingest", headers={**headers, "Idempotency-Key": "lost"}, content=lost)
        assert anew.status_code == 200, anew.text
        assert anew.json()["accepted"] == 1
        lake.flush("web")
        assert lake.rows("SELECT count(*), count(DISTINCT n) FROM web") == [[6, 6]]

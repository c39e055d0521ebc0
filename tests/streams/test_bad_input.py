"""Bad input on the ingest routes: refused before the 200, never in the log, never a 500.

An event that could not be stored (bytes that are not UTF-8, nesting past the limit) is
refused in the answer; every good event sent before and after it lands, also across a
restart, and the refusal shows on /errors.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from helpers.server import LiveServer
from helpers.tenants import Tenants, bearer
from openenrich.app import create_app
from openenrich.config import Settings
from openenrich.db import Database
from openenrich.lake.engine import BufferKey, FlushedFile, LakeEngine
from openenrich.lake.storage import LakeStorage
from openenrich.lake.wal import read_records
from openenrich.tenancy import service as tenancy

GOOD = b'{"stream_id": "p", "data": [{"n": %d}]}'
# One event whose bytes are not UTF-8, in a value and in a key.
NOT_UTF8 = [
    b'{"stream_id": "p", "data": [{"n": 100, "s": "\xff\xfe"}]}',
    b'{"stream_id": "p", "data": [{"n": 101, "\xff\xfe": 1}]}',
    # A surrogate encoded as UTF-8 bytes is not UTF-8 either.
    b'{"stream_id": "p", "data": [{"n": 102, "s": "\xed\xa0\x80"}]}',
]
ENVELOPE = b'{"timestamp": "2026-01-01T00:00:00Z", "source": "web", "event": {"n": %d%s}}'


def post(client: httpx.Client, key: str, body: bytes) -> httpx.Response:
    return client.post(
        "/ingest", headers={**bearer(key), "content-type": "application/json"}, content=body
    )


def envelope(client: httpx.Client, key: str, body: bytes) -> httpx.Response:
    return client.post(
        "/v1/streams/ingest",
        headers={**bearer(key), "content-type": "application/json", "x-stream-id": "e"},
        content=body,
    )


# Envelopes are stored whole: their event's fields are in the `event` column.
LANDED = "SELECT n FROM p UNION ALL SELECT CAST(event->>'$.n' AS INT) FROM e ORDER BY 1"


def numbers(client: httpx.Client, key: str) -> list[int]:
    response = client.post("/query", headers=bearer(key), json={"sql": LANDED})
    assert response.status_code == 200, response.text
    return [row[0] for row in response.json()["rows"]]


def errors(client: httpx.Client, key: str) -> list[dict[str, Any]]:
    answer = client.get("/errors?limit=100", headers=bearer(key)).json()
    return list(answer["recent"])


def test_invalid_utf8_is_refused_and_good_events_keep_landing(
    settings: Settings, tenants: Tenants
) -> None:
    key = tenants.key("acme")
    with LiveServer(create_app(settings)) as server, httpx.Client(base_url=server.url) as client:
        for stream in ("p", "e"):
            created = client.post("/streams", headers=bearer(key), json={"stream_id": stream})
            assert created.status_code == 201
        assert post(client, key, GOOD % 1).status_code == 200
        for body in NOT_UTF8:
            refused = post(client, key, body)
            assert refused.status_code == 400, refused.text
            assert "UTF-8" in refused.json()["error"]
        assert post(client, key, GOOD % 2).status_code == 200

        assert envelope(client, key, ENVELOPE % (3, b"")).status_code == 200
        refused = envelope(client, key, ENVELOPE % (103, b', "s": "\xff"'))
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"] == "invalid_format"
        assert "UTF-8" in refused.json()["detail"]
        assert envelope(client, key, ENVELOPE % (4, b"")).status_code == 200

        for stream in ("p", "e"):
            flushed = client.post(f"/streams/{stream}/flush", headers=bearer(key))
            assert flushed.status_code == 200, flushed.text
        assert numbers(client, key) == [1, 2, 3, 4]
        assert post(client, key, GOOD % 5).status_code == 200  # buffered at the restart
        refusals = [e for e in errors(client, key) if "UTF-8" in e["message"]]
        assert len(refusals) == 4
        assert {e["type"] for e in refusals} == {"validation"}

    with LiveServer(create_app(settings)) as server, httpx.Client(base_url=server.url) as client:
        assert client.post("/streams/p/flush", headers=bearer(key)).status_code == 200
        assert numbers(client, key) == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("route", ["/ingest", "/v1/streams/ingest"])
def test_nesting_past_the_limit_is_a_400_and_up_to_it_lands(
    route: str, settings: Settings, tenants: Tenants
) -> None:
    settings = settings.model_copy(update={"json_max_depth": 32})
    key = tenants.key("acme")

    def body(levels: int) -> bytes:
        # `levels` counts every level of the body, the envelope or wrapper included.
        if route == "/ingest":
            inner = levels - 3  # {"data": [ {event: …} ] }
            return b'{"stream_id": "p", "data": [{"deep": %s}]}' % (b"[" * inner + b"]" * inner)
        inner = levels - 2  # {envelope: {event: …}}
        return ENVELOPE % (1, b', "deep": ' + b"[" * inner + b"]" * inner)

    with LiveServer(create_app(settings)) as server, httpx.Client(base_url=server.url) as client:
        stream = "p" if route == "/ingest" else "e"
        created = client.post("/streams", headers=bearer(key), json={"stream_id": stream})
        assert created.status_code == 201
        send = post if route == "/ingest" else envelope
        for levels in (33, 956, 100_000):
            refused = send(client, key, body(levels))
            assert refused.status_code == 400, (levels, refused.text)
            assert "nested deeper than 32 levels" in refused.text
        assert send(client, key, body(32)).status_code == 200
        assert client.post(f"/streams/{stream}/flush", headers=bearer(key)).status_code == 200
        rows = client.post("/query", headers=bearer(key), json={"sql": f"SELECT * FROM {stream}"})
        assert rows.status_code == 200, rows.text
        assert rows.json()["row_count"] == 1


async def _log_with_an_unreadable_record(settings: Settings, org_id: str) -> None:
    """Leave a write-ahead log, as a crash would, holding a record DuckDB cannot read
    between two good ones: what a version that let such bytes through, or a damaged disk,
    leaves behind."""

    async def declared(key: BufferKey, version: int) -> None:
        return None

    async def flushed(session: AsyncSession, files: list[FlushedFile]) -> None:
        return None

    database = Database.from_settings(settings)
    engine = LakeEngine(
        settings,
        database,
        LakeStorage(settings),
        declared_columns=declared,
        on_flushed=flushed,
        on_flush_error=lambda key, error: None,
    )
    try:
        await engine.start()
        for payload in (b'[{"n": 1}]', b'[{"n": 100, "s": "\xff\xfe"}]', b'[{"n": 2}]'):
            await engine.append(org_id, "live", "p", "data", payload, count=1)
        assert engine._wal is not None
        await engine._wal.close()  # a crash: nothing flushed
    finally:
        await database.dispose()


def test_an_unreadable_log_record_is_quarantined_and_the_rest_lands(
    settings: Settings, tenants: Tenants
) -> None:
    key = tenants.key("acme")

    async def org_id(session: AsyncSession) -> str:
        return (await tenancy.ensure_organization(session, "acme")).id

    with LiveServer(create_app(settings)) as server, httpx.Client(base_url=server.url) as client:
        assert (
            client.post("/streams", headers=bearer(key), json={"stream_id": "p"}).status_code == 201
        )
    asyncio.run(_log_with_an_unreadable_record(settings, tenants.run(org_id)))

    def landed(client: httpx.Client) -> list[int]:
        response = client.post("/query", headers=bearer(key), json={"sql": "SELECT n FROM p"})
        assert response.status_code == 200, response.text
        return sorted(row[0] for row in response.json()["rows"])

    with LiveServer(create_app(settings)) as server, httpx.Client(base_url=server.url) as client:
        flushed = client.post("/streams/p/flush", headers=bearer(key))
        assert flushed.status_code == 200, flushed.text
        assert landed(client) == [1, 2]
        assert post(client, key, GOOD % 3).status_code == 200
        assert client.post("/streams/p/flush", headers=bearer(key)).status_code == 200
        assert landed(client) == [1, 2, 3]
        processing = [e for e in errors(client, key) if e["type"] == "processing"]
        assert len(processing) == 1
        assert "quarantined" in processing[0]["message"]
        assert "invalid UTF-8" in processing[0]["message"]
        assert processing[0]["stream_id"] == "p"

    kept = list((settings.data_dir / "quarantine").rglob("*.wal"))
    assert len(kept) == 1
    (record,) = read_records(kept[0], "node")
    assert record.payload == b'[{"n": 100, "s": "\xff\xfe"}]'

    # A restart neither buffers the record again nor reports it twice.
    with LiveServer(create_app(settings)) as server, httpx.Client(base_url=server.url) as client:
        assert client.post("/streams/p/flush", headers=bearer(key)).status_code == 200
        assert landed(client) == [1, 2, 3]
        assert len([e for e in errors(client, key) if e["type"] == "processing"]) == 1


def test_a_lake_that_cannot_be_written_is_a_503_and_the_events_wait(
    settings: Settings, tenants: Tenants
) -> None:
    key = tenants.key("acme")
    lake = Path(settings.lake)
    with LiveServer(create_app(settings)) as server, httpx.Client(base_url=server.url) as client:
        assert (
            client.post("/streams", headers=bearer(key), json={"stream_id": "p"}).status_code == 201
        )
        assert post(client, key, GOOD % 1).status_code == 200
        shutil.rmtree(lake, ignore_errors=True)
        lake.write_bytes(b"")  # a file where the lake's folder should be
        refused = client.post("/streams/p/flush", headers=bearer(key))
        assert refused.status_code == 503, refused.text
        assert "the events are kept" in refused.json()["error"]
        lake.unlink()
        assert client.post("/streams/p/flush", headers=bearer(key)).status_code == 200
        rows = client.post("/query", headers=bearer(key), json={"sql": "SELECT n FROM p"})
        assert rows.json()["rows"] == [[1]]


def test_the_deepest_event_admitted_lands_is_queried_and_dead_lettered(
    client: httpx.Client, tenants: Tenants, settings: Settings
) -> None:
    key = tenants.key("acme")
    levels = settings.json_max_depth - 3  # {"data": [{"deep": …}]}
    deep = b"[" * levels + b"1" + b"]" * levels
    for stream, mode in (("flex_s", "flex"), ("strict_s", "strict")):
        body: dict[str, Any] = {"stream_id": stream, "schema_mode": mode}
        if mode == "strict":
            body["fields"] = {"n": "int64"}
        assert client.post("/streams", headers=bearer(key), json=body).status_code == 201
        sent = b'{"stream_id": "%s", "data": [{"deep": %s}]}' % (stream.encode(), deep)
        assert post(client, key, sent).status_code == 200
        assert client.post(f"/streams/{stream}/flush", headers=bearer(key)).status_code == 200
    rows = client.post("/query", headers=bearer(key), json={"sql": "SELECT deep FROM flex_s"})
    assert rows.status_code == 200, rows.text
    assert rows.json()["rows"][0][0].count("[") == levels
    letters = client.get("/streams/strict_s/dlq", headers=bearer(key))
    assert letters.status_code == 200, letters.text
    assert letters.json()["events"][0]["original"] == {"deep": json.loads(deep)}


def test_events_sent_across_lines_land_as_sent(settings: Settings, tenants: Tenants) -> None:
    # The log keeps one event per line: the newlines a pretty-printed body has between an
    # event's tokens must not split it, on either route, nor after strict validation has
    # dropped an event.
    key = tenants.key("acme")
    pretty = json.dumps(
        {"stream_id": "p", "data": [{"n": 1, "s": "a\nb"}, {"n": 2, "tags": ["x", "y"]}]},
        indent=2,
    ).encode()
    envelopes = json.dumps(
        [
            {"timestamp": "2026-01-01T00:00:00Z", "source": "web", "event": {"n": 3}},
            {"timestamp": "2026-01-01T00:00:01Z", "source": "web", "event": {"n": 4}},
        ],
        indent=2,
    ).encode()
    strict = json.dumps(
        {"stream_id": "s", "data": [{"n": 5}, {"n": "five"}, {"n": 6}]}, indent=2
    ).encode()
    with LiveServer(create_app(settings)) as server, httpx.Client(base_url=server.url) as client:
        for stream, extra in (
            ("p", {}),
            ("e", {}),
            ("s", {"schema_mode": "strict", "fields": {"n": "int64"}}),
        ):
            created = client.post(
                "/streams", headers=bearer(key), json={"stream_id": stream, **extra}
            )
            assert created.status_code == 201, created.text
        assert b"\n" in pretty
        assert b"\n" in envelopes
        assert post(client, key, pretty).json()["accepted"] == 2
        assert envelope(client, key, envelopes).status_code == 200
        assert post(client, key, strict).json()["accepted"] == 2
        for stream in ("p", "e", "s"):
            flushed = client.post(f"/streams/{stream}/flush", headers=bearer(key))
            assert flushed.status_code == 200, flushed.text
        assert numbers(client, key) == [1, 2, 3, 4]
        rows = client.post(
            "/query", headers=bearer(key), json={"sql": "SELECT s, tags FROM p ORDER BY n"}
        ).json()["rows"]
        assert rows == [["a\nb", None], [None, '["x","y"]']]
        strict_rows = client.post(
            "/query", headers=bearer(key), json={"sql": "SELECT n FROM s ORDER BY n"}
        ).json()["rows"]
        assert strict_rows == [[5], [6]]

"""Stats and errors: counted across restarts and across processes; errors by type."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
import pytest

from helpers.processes import ServeProcess
from helpers.server import LiveServer
from helpers.tenants import Tenants, bearer
from openenrich.app import create_app
from openenrich.config import Settings
from streams.conftest import Lake


def test_counters_survive_a_restart(settings: Settings, tenants: Tenants) -> None:
    key = tenants.key("acme")
    with LiveServer(create_app(settings)) as live, httpx.Client(base_url=live.url) as client:
        lake = Lake(client, key)
        lake.create("events")
        for _ in range(3):
            lake.ingest("events", [{"n": 1}, {"n": 2}])
    with LiveServer(create_app(settings)) as live, httpx.Client(base_url=live.url) as client:
        stats = client.get("/stats", headers=bearer(key)).json()
    assert (stats["requests"], stats["events"]) == (3, 6)


@pytest.mark.subprocess
def test_counters_add_up_across_two_processes(
    settings: Settings, tenants: Tenants, tmp_path: Path
) -> None:
    key = tenants.key("acme")
    url = str(settings.database_url)
    env = {"OPENENRICH_STATS_FLUSH_SECONDS": "0.2"}
    with (
        ServeProcess(tmp_path / "a", database_url=url, env=env) as first,
        ServeProcess(tmp_path / "b", database_url=url, env=env) as second,
    ):
        httpx.post(f"{first.url}/streams", headers=bearer(key), json={"stream_id": "events"})
        for server, count in ((first, 4), (second, 3)):
            for _ in range(count):
                response = httpx.post(
                    f"{server.url}/ingest",
                    headers=bearer(key),
                    json={"stream_id": "events", "data": [{"n": 1}]},
                )
                assert response.status_code == 200
        time.sleep(0.6)  # the other process flushes its counters every 0.2 s
        stats = httpx.get(f"{first.url}/stats", headers=bearer(key)).json()
    assert (stats["requests"], stats["events"]) == (7, 7)


def test_errors_by_type(settings: Settings, tenants: Tenants, client: httpx.Client) -> None:
    tenants.plan("slow", requests_per_second=1.0)
    tenants.set_plan("acme", "slow")
    lake = Lake(client, tenants.key("acme"))
    lake.create("orders", schema_mode="strict", fields={"id": "string"})
    time.sleep(1.1)
    lake.ingest("orders", [{"id": "a"}, {"id": 5}])  # one rejected
    limited = lake.ingest("orders", [{"id": "b"}])
    assert limited.status_code == 429
    time.sleep(1.1)
    big = {"stream_id": 7, "data": [{"pad": "x" * 6000}]}
    assert client.post("/ingest", headers=lake.headers, json=big).status_code == 400
    time.sleep(1.1)
    errors = client.get("/errors?limit=10", headers=lake.headers).json()
    assert errors["by_type"] == {
        "validation": 1,
        "schema_rejection": 1,
        "rate_limit": 1,
        "processing": 0,
    }
    assert errors["errors_24h"] == 3
    newest = errors["recent"][0]
    assert newest["type"] == "validation"
    assert len(newest["request_body"]) < 4200
    assert newest["request_body"].endswith("bytes)")
    rejection = next(e for e in errors["recent"] if e["type"] == "schema_rejection")
    assert rejection["message"] == "1 event(s) sent to the dead-letter queue: type_mismatch on 'id'"
    assert rejection["stream_id"] == "orders"
    time.sleep(1.1)
    only = client.get("/errors?stream_id=nope", headers=lake.headers).json()
    assert only["errors_24h"] == 0


def test_errors_are_recorded_whatever_the_client_sent(
    client: httpx.Client, tenants: Tenants
) -> None:
    """A stream id longer than its column and NUL characters (which PostgreSQL text cannot
    hold) are stored cut and replaced, on both backends: they never hold back the errors and
    counters written with them."""
    lake = Lake(client, tenants.key("acme"))
    lake.create("events")
    envelope = {"timestamp": "2024-05-01T00:00:00Z", "source": "web", "event": {"a": 1}}
    long_id = "s" * 8000
    headers = {**lake.headers, "X-Stream-Id": long_id}
    assert client.post("/v1/streams/ingest", headers=headers, json=envelope).status_code == 404
    assert lake.ingest("a\x00b", [{"n": 1}]).status_code == 404
    raw_nul = b'{"stream_id": "events", "data": [{"n": "\x00"}]}'  # not JSON: a raw NUL byte
    headers = {**lake.headers, "Content-Type": "application/json"}
    assert client.post("/ingest", headers=headers, content=raw_nul).status_code == 400
    assert lake.ingest("events", [{"n": 1}]).status_code == 200

    errors = client.get("/errors", headers=lake.headers)
    assert errors.status_code == 200, errors.text
    recent = errors.json()["recent"]
    assert len(recent) == 3
    by_stream = {error["stream_id"]: error for error in recent}
    assert by_stream["s" * 127 + "…"]["message"].startswith("Stream 'sss")
    assert by_stream["a\ufffdb"]["message"] == "Stream 'a\ufffdb' not found"
    assert "\ufffd" in by_stream[None]["request_body"]
    stats = client.get("/stats", headers=lake.headers)
    assert stats.status_code == 200, stats.text
    assert (stats.json()["requests"], stats.json()["events"]) == (4, 1)


def test_stats_and_errors_count_the_same_errors(settings: Settings, tenants: Tenants) -> None:
    """An error is what /errors lists: /stats counts exactly those, whatever their kind
    (a refused request, events sent to the dead-letter queue, a rate limit, a failed
    flush)."""
    tenants.plan("slow", requests_per_second=1.0)
    tenants.set_plan("acme", "slow")
    key = tenants.key("acme")
    quick = settings.model_copy(update={"flush_max_seconds": 0.2})
    lake_folder = Path(settings.lake)
    with LiveServer(create_app(quick)) as live, httpx.Client(base_url=live.url) as client:
        lake = Lake(client, key)
        lake.create("events")
        time.sleep(1.1)
        lake.create("orders", schema_mode="strict", fields={"id": "string"})
        time.sleep(1.1)
        shutil.rmtree(lake_folder)
        lake_folder.write_bytes(b"")  # a file where the lake's folder should be
        assert lake.ingest("events", [{"n": 1}]).status_code == 200
        time.sleep(1.5)  # the flusher fails once; it tries again in 5 s
        lake_folder.unlink()
        rejected = lake.ingest("orders", [{"id": "a"}, {"id": 5}, {"id": 6}])  # two to the DLQ
        assert (rejected.status_code, rejected.json()["rejected"]) == (200, 2)
        assert lake.ingest("orders", [{"id": "b"}]).status_code == 429
        time.sleep(1.1)
        assert client.post("/ingest", headers=lake.headers, json={"data": []}).status_code == 400
        time.sleep(1.1)
        errors = client.get("/errors", headers=lake.headers).json()
        time.sleep(1.1)
        stats = client.get("/stats", headers=lake.headers).json()
    assert errors["by_type"] == {
        "validation": 1,
        "schema_rejection": 1,
        "rate_limit": 1,
        "processing": 1,
    }
    assert stats["errors"] == errors["errors_24h"] == 4
    assert sum(minute["errors"] for minute in stats["histogram"]) == 4
    # Requests count the ingest requests, failed or not; events the events accepted or
    # sent to the dead-letter queue.
    assert (stats["requests"], stats["events"]) == (4, 4)

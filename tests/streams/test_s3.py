"""The lake on S3: a real S3-compatible server (moto) on loopback."""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pyarrow.fs as pafs
import pytest
from moto.server import ThreadedMotoServer
from standardwebhooks.webhooks import Webhook

from helpers.http import LocalServer
from helpers.server import LiveServer
from helpers.tenants import Tenants, bearer
from openenrich.app import create_app
from openenrich.config import Settings
from streams.conftest import Lake


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_settings(settings: Settings, s3_endpoint: str) -> Settings:
    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    filesystem = pafs.S3FileSystem(
        allow_bucket_creation=True,
        access_key="writer",
        secret_key="writer-secret",
        region="us-east-1",
        endpoint_override=s3_endpoint.removeprefix("http://"),
        scheme="http",
    )
    filesystem.create_dir(bucket)
    return settings.model_copy(
        update={
            "lake_url": f"s3://{bucket}/openenrich",
            "s3_endpoint": s3_endpoint,
            "s3_access_key_id": "writer",
            "s3_secret_access_key": "writer-secret",
            "connect_access_key_id": "reader",
            "connect_secret_access_key": "reader-secret",
        }
    )


def test_events_land_in_s3_and_are_queryable(s3_settings: Settings, tenants: Tenants) -> None:
    key = tenants.key("acme")
    with (
        LiveServer(create_app(s3_settings)) as live,
        httpx.Client(base_url=live.url, timeout=30) as client,
    ):
        lake = Lake(client, key)
        lake.create(
            "orders", schema_mode="strict", fields={"order_id": "string", "amount": "float64"}
        )
        response = lake.ingest("orders", [{"order_id": "a", "amount": 1.0}, {"order_id": "b"}])
        assert response.json() == {"accepted": 1, "buffered": 1, "rejected": 1}
        files = lake.flush("orders")["files"]
        assert {f["kind"] for f in files} == {"data", "dlq"}
        assert all(f["path"].startswith(f"s3://{s3_settings.lake_url[5:]}/") for f in files)
        assert lake.rows("SELECT order_id, amount FROM orders") == [["a", 1.0]]
        assert lake.rows("SELECT reason, field FROM orders_dlq") == [["missing_field", "amount"]]
        dlq = client.get("/streams/orders/dlq", headers=bearer(key)).json()
        assert dlq["dlq_count"] == 1

        connect = client.get("/connect", headers=bearer(key)).json()
        bucket = s3_settings.lake_url[5:].split("/")[0]
        assert connect["endpoint"] == s3_settings.s3_endpoint
        assert connect["bucket"] == bucket
        # Users get the read keys the operator configured, never the server's own.
        assert (connect["access_key_id"], connect["secret_access_key"]) == (
            "reader",
            "reader-secret",
        )
        assert "writer-secret" not in str(connect)
        assert connect["example_path"].startswith(f"s3://{bucket}/openenrich/")
        assert set(connect["sql"]) == {"duckdb", "clickhouse", "python"}
        usage = client.get("/usage", headers=bearer(key)).json()
        assert usage["totals"]["event_count"] == 1

    filesystem = pafs.S3FileSystem(
        access_key="writer",
        secret_key="writer-secret",
        region="us-east-1",
        endpoint_override=s3_settings.s3_endpoint.removeprefix("http://"),
        scheme="http",
    )
    stored = filesystem.get_file_info(pafs.FileSelector(s3_settings.lake_url[5:], recursive=True))
    parquet = [info.path for info in stored if info.path.endswith(".parquet")]
    assert len(parquet) == 2
    assert any("/orders/_dlq/date=" in path for path in parquet)


def test_the_python_code_from_connect_reads_every_stream_from_s3(
    s3_settings: Settings, tenants: Tenants
) -> None:
    """Seed 000's text `event` and seed 003's JSON `event` in two streams: each stream is
    read through its own path, with the read keys /connect hands out."""
    key = tenants.key("acme")
    with (
        LiveServer(create_app(s3_settings)) as live,
        httpx.Client(base_url=live.url, timeout=30) as client,
    ):
        lake = Lake(client, key)
        lake.create("events")
        assert lake.ingest("events", [{"event": "page_view", "url": "/a"}]).status_code == 200
        lake.create("payments")
        envelope = {"timestamp": "2025-02-12T14:32:15Z", "source": "app", "event": {"n": 1}}
        headers = {**bearer(key), "X-Stream-Id": "payments"}
        assert client.post("/v1/streams/ingest", headers=headers, json=envelope).status_code == 200
        lake.flush("events")
        lake.flush("payments")
        sql = client.get("/connect", headers=bearer(key)).json()["sql"]

    namespace: dict[str, Any] = {}
    exec(sql["python"], namespace)  # noqa: S102 - the code we hand out, run as a user would
    tables = namespace["tables"]
    assert tables["events"].column("event").to_pylist() == ["page_view"]
    assert tables["payments"].column("event").to_pylist() == ['{"n":1}']
    # DuckDB and ClickHouse read each stream through its own path too (neither can run
    # here: DuckDB would have to download its S3 extension).
    for stream_id in ("events", "payments"):
        assert f"/{stream_id}/date=*/*.parquet" in sql["duckdb"]
        assert f"/{stream_id}/date=*/*.parquet" in sql["clickhouse"]
    assert sql["clickhouse"].count("SELECT") == 2


def test_forwarding_and_replay_read_the_lake_on_s3(s3_settings: Settings, tenants: Tenants) -> None:
    """The files a flush wrote to S3 are read back for forwarding, and for a replay; a
    declared timestamp goes out as ISO 8601 in UTC."""
    key = tenants.key("acme")
    fast = s3_settings.model_copy(update={"allow_private_urls": True, "job_poll_seconds": 0.2})
    fields = {"order_id": "string", "at": "timestamp"}
    with (
        LocalServer() as forwarded,
        LocalServer() as replayed,
        LiveServer(create_app(fast)) as live,
        httpx.Client(base_url=live.url, timeout=30) as client,
    ):
        lake = Lake(client, key)
        stream = lake.create(
            "orders", schema_mode="strict", fields=fields, webhook_url=forwarded.url
        ).json()
        events = [
            {"order_id": "a", "at": "2026-02-01T10:00:00+01:00"},
            {"order_id": "b", "at": "2026-02-01T23:30:00Z"},
        ]
        assert lake.ingest("orders", events).json()["accepted"] == 2
        lake.flush("orders")
        got = forwarded.wait_for(1)
        sent = Webhook(stream["webhook_secret"]).verify(got[0].body, got[0].headers)
        assert [(e["order_id"], e["at"]) for e in sent["data"]["events"]] == [
            ("a", "2026-02-01T09:00:00Z"),
            ("b", "2026-02-01T23:30:00Z"),
        ]
        today = dt.datetime.now(dt.UTC).date().isoformat()
        body = {"from": today, "to": today, "webhook_url": replayed.url}
        answer = client.post("/streams/orders/replay", headers=bearer(key), json=body).json()
        assert answer["estimated_events"] == 2
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            path = f"/streams/orders/replays/{answer['replay_id']}?wait=2"
            if client.get(path, headers=bearer(key)).json()["status"] == "completed":
                break
        got = replayed.wait_for(1)
        again = Webhook(answer["webhook_secret"]).verify(got[0].body, got[0].headers)
        assert again["data"]["events"] == sent["data"]["events"]

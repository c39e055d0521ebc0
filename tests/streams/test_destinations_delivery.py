"""Delivery to each destination type, against a real receiver on loopback: batches handed
to the outbox (stage + enqueue, as the flush does) arrive once, in order, signed or
authenticated; a receiver that is down gets everything after it recovers, once, while the
others are delivered meanwhile; a batch that never gets through is dead-lettered and can
be sent again."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from moto.server import ThreadedMotoServer
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks.webhooks import Webhook

from helpers.http import LocalServer, Received, Reply
from helpers.server import LiveServer, free_port
from helpers.tenants import Tenants, bearer
from openenrich.app import create_app
from openenrich.config import Settings
from openenrich.db import Database
from openenrich.lake.storage import LakeStorage
from openenrich.streams.destinations.delivery import purge_delivered
from openenrich.streams.destinations.models import Destination
from openenrich.streams.outbox import active_destinations
from streams.destinations_helpers import (
    SyslogListener,
    create,
    delivered,
    delivery_settings,
    events,
    org_id,
    push,
    state,
    wait_until,
)


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return delivery_settings(settings)


@pytest.fixture
def api(fast: Settings) -> Iterator[httpx.Client]:
    with (
        LiveServer(create_app(fast)) as live,
        httpx.Client(base_url=live.url, timeout=30) as client,
    ):
        yield client


def verified(received: Received, secret: str) -> dict[str, Any]:
    body: dict[str, Any] = Webhook(secret).verify(received.body, received.headers)
    assert received.headers["webhook-id"] == body["batch_id"]
    return body


def test_http_batches_are_signed_and_arrive_once_in_order(
    api: httpx.Client, fast: Settings, tenants: Tenants
) -> None:
    key = tenants.key("acme")
    with LocalServer() as receiver:
        created = create(
            api,
            key,
            destination_id="hooks",
            type="http",
            config={"url": receiver.url + "/in", "headers": {"x-token": "receiver-token-1234"}},
        )
        assert created["config"]["headers"] == {"x-token": "****1234"}
        secret = created["signing_secret"]
        for number in range(3):
            push(fast, tenants, "hooks", "clicks", f"node-{number}", events(number * 10, 10))
        delivered(api, key, "hooks", 3)
        bodies = [verified(r, secret) for r in receiver.received]
    assert all(r.path == "/in" for r in receiver.received)
    assert {r.headers["x-token"] for r in receiver.received} == {"receiver-token-1234"}
    assert {b["destination"] for b in bodies} == {"hooks"}
    assert {b["stream_id"] for b in bodies} == {"clicks"}
    sent = [event["n"] for body in bodies for event in body["events"]]
    assert sent == list(range(30))  # each once, in order
    first = bodies[0]["events"][0]
    assert first == {
        "_event_id": "ev-0",
        "_ingested_at": "2026-12-07T09:00:00+00:00",
        "n": 0,
        "level": "info",
    }
    now = state(api, key, "hooks")
    assert (now["delivered_batches"], now["delivered_events"], now["dead_batches"]) == (3, 30, 0)
    assert now["last_delivered_at"] is not None
    # A delivered batch's staged file is gone.
    storage = LakeStorage(fast)
    assert not any(
        info.type == pafs.FileType.File
        for info in storage.fs.get_file_info(
            pafs.FileSelector(storage.full_path("_outbox"), recursive=True)
        )
    )


def test_a_receiver_that_is_down_gets_everything_once_after_it_recovers(
    api: httpx.Client, fast: Settings, tenants: Tenants
) -> None:
    key = tenants.key("acme")
    down = threading.Event()
    down.set()
    accepted: list[int] = []  # the numbers of the requests answered 200

    def flaky(number: int, received: Received) -> Reply:
        if down.is_set():
            return Reply(503, b"maintenance")
        accepted.append(number)
        return Reply()

    with LocalServer(flaky) as sick, LocalServer() as healthy:
        sick_secret = create(
            api,
            key,
            destination_id="sick",
            type="http",
            config={"url": sick.url},
            batching={"max_events": 15},
        )["signing_secret"]
        create(api, key, destination_id="healthy", type="http", config={"url": healthy.url})
        for number in range(4):
            rows = events(number * 10, 10)
            push(fast, tenants, "sick", "orders", f"n-{number}", rows)
            push(fast, tenants, "healthy", "orders", f"n-{number}", rows)
        # The other destination is not held up while this one fails.
        delivered(api, key, "healthy", 4)
        wait_until(lambda: len(sick.received) >= 3, what="retries to the sick receiver")
        during = state(api, key, "sick")
        assert during["pending_batches"] == 4
        assert during["delivered_batches"] == 0
        assert during["last_error"].startswith("the receiver answered 503: maintenance")

        down.clear()
        delivered(api, key, "sick", 4)
        requests = list(sick.received)
    failed = [verified(r, sick_secret) for n, r in enumerate(requests, 1) if n not in accepted]
    succeeded = [verified(requests[n - 1], sick_secret) for n in accepted]
    # Each batch was accepted once, its events once and in order; retries before that sent
    # the same batch under the same id (what a receiver dedupes on).
    ids = [body["batch_id"] for body in succeeded]
    assert len(ids) == len(set(ids)) == 4
    assert {body["batch_id"] for body in failed} <= set(ids)
    assert [event["n"] for body in succeeded for event in body["events"]] == list(range(40))
    healthy_events = [
        event["n"] for r in healthy.received for event in json.loads(r.body)["events"]
    ]
    assert healthy_events == list(range(40))


class BulkEndpoint:
    """An Elasticsearch `_bulk` endpoint: checks the NDJSON action lines and keeps the
    documents by `_id`; the first request has one item rejected (errors: true)."""

    def __init__(self) -> None:
        self.documents: dict[str, dict[str, Any]] = {}
        self.requests = 0
        self.server = LocalServer(self.respond)

    def respond(self, number: int, received: Received) -> Reply:
        assert received.path == "/_bulk"
        assert received.headers["content-type"] == "application/x-ndjson"
        assert received.headers["authorization"] == "ApiKey es-secret-key"
        assert received.body.endswith(b"\n")
        lines = received.body.decode().splitlines()
        assert len(lines) % 2 == 0
        items = []
        for position in range(0, len(lines), 2):
            action = json.loads(lines[position])
            assert list(action) == ["index"]
            assert set(action["index"]) == {"_index", "_id"}
            assert action["index"]["_index"] == "events"
            document = json.loads(lines[position + 1])
            assert action["index"]["_id"] == document["_event_id"]
            if number == 1 and position == 2:
                items.append(
                    {
                        "index": {
                            "_id": action["index"]["_id"],
                            "status": 429,
                            "error": {
                                "type": "es_rejected_execution_exception",
                                "reason": "queue full",
                            },
                        }
                    }
                )
                continue
            self.documents[action["index"]["_id"]] = document
            items.append({"index": {"_id": action["index"]["_id"], "status": 201}})
        errors = any(item["index"]["status"] >= 300 for item in items)
        return Reply(200, json.dumps({"took": 1, "errors": errors, "items": items}).encode())


def test_elasticsearch_bulk_retries_failed_items(
    api: httpx.Client, fast: Settings, tenants: Tenants
) -> None:
    key = tenants.key("acme")
    bulk = BulkEndpoint()
    with bulk.server:
        create(
            api,
            key,
            destination_id="search",
            type="elasticsearch",
            config={"url": bulk.server.url, "index": "events", "api_key": "es-secret-key"},
        )
        push(fast, tenants, "search", "logs", "b-1", events(0, 5))
        delivered(api, key, "search", 1)
        requests = len(bulk.server.received)
    assert requests == 2  # the first answer had a failed item: the chunk went again
    assert sorted(bulk.documents) == [f"ev-{n}" for n in range(5)]
    assert bulk.documents["ev-1"]["level"] == "error"
    now = state(api, key, "search")
    assert now["delivered_events"] == 5
    assert "1 of 5 item(s) failed in _bulk: queue full" in now["last_error"]


def test_splunk_hec_gets_events_with_the_token(
    api: httpx.Client, fast: Settings, tenants: Tenants
) -> None:
    key = tenants.key("acme")

    def hec(number: int, received: Received) -> Reply:
        if received.headers.get("authorization") != "Splunk hec-token-1234":
            return Reply(401, b'{"text":"Invalid token","code":4}')
        return Reply(200, b'{"text":"Success","code":0}')

    with LocalServer(hec) as splunk:
        created = create(
            api,
            key,
            destination_id="siem",
            type="splunk_hec",
            config={
                "url": splunk.url,
                "token": "hec-token-1234",
                "sourcetype": "_json",
                "index": "main",
            },
        )
        assert created["config"]["token"] == "****1234"
        push(fast, tenants, "siem", "audit", "b-1", events(0, 3))
        delivered(api, key, "siem", 1)
        [received] = splunk.received
    assert received.path == "/services/collector/event"
    decoder, text, position, items = json.JSONDecoder(), received.body.decode(), 0, []
    while position < len(text):
        item, position = decoder.raw_decode(text, position)
        items.append(item)
        while position < len(text) and text[position].isspace():
            position += 1
    assert [item["event"]["n"] for item in items] == [0, 1, 2]
    assert items[1] == {
        "event": {
            "_event_id": "ev-1",
            "_ingested_at": "2026-12-07T09:00:01+00:00",
            "n": 1,
            "level": "error",
        },
        "sourcetype": "_json",
        "index": "main",
        "source": "audit",
        "time": 1796634001.0,
    }


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
def test_syslog_rfc5424(api: httpx.Client, fast: Settings, tenants: Tenants, protocol: str) -> None:
    key = tenants.key("acme")
    with SyslogListener(protocol) as listener:
        create(
            api,
            key,
            destination_id="syslog",
            type="syslog",
            config={
                "host": "127.0.0.1",
                "port": listener.port,
                "protocol": protocol,
                "facility": "local3",
                "app_name": "shop",
                "hostname": "edge-1",
            },
        )
        push(fast, tenants, "syslog", "web", "b-1", events(0, 4))
        delivered(api, key, "syslog", 1)
        wait_until(lambda: len(listener.messages) == 4, what="4 syslog messages")
        messages = sorted(listener.messages, key=lambda m: m["event"]["n"])
    assert [m["event"]["n"] for m in messages] == [0, 1, 2, 3]
    assert messages[2] == {
        "pri": str(19 * 8 + 6),  # local3, informational
        "time": "2026-12-07T09:00:02.000000Z",
        "host": "edge-1",
        "app": "shop",
        "procid": "-",
        "msgid": "web",
        "sd": "-",
        "event": {
            "_event_id": "ev-2",
            "_ingested_at": "2026-12-07T09:00:02+00:00",
            "n": 2,
            "level": "info",
        },
    }


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.mark.parametrize("format", ["parquet", "ndjson"])
def test_s3_objects_named_per_batch(
    api: httpx.Client, fast: Settings, tenants: Tenants, s3_endpoint: str, format: str
) -> None:
    key = tenants.key("acme")
    bucket = f"archive-{uuid.uuid4().hex[:10]}"
    filesystem = pafs.S3FileSystem(
        access_key="archiver",
        secret_key="archiver-secret",
        region="us-east-1",
        endpoint_override=s3_endpoint.removeprefix("http://"),
        scheme="http",
        allow_bucket_creation=True,
    )
    filesystem.create_dir(bucket)
    created = create(
        api,
        key,
        destination_id="archive",
        type="s3",
        config={
            "bucket": bucket,
            "prefix": "exports/",
            "format": format,
            "endpoint_url": s3_endpoint,
            "access_key_id": "archiver",
            "secret_access_key": "archiver-secret",
        },
    )
    assert created["config"]["secret_access_key"] == "****cret"
    push(fast, tenants, "archive", "orders", "b-1", events(0, 3))
    delivered(api, key, "archive", 1)
    [batch] = api.get("/destinations/archive/batches", headers=bearer(key)).json()["batches"]
    assert batch["status"] == "delivered"
    listed = filesystem.get_file_info(pafs.FileSelector(f"{bucket}/exports", recursive=True))
    paths = [info.path for info in listed if info.type == pafs.FileType.File]
    assert paths == [f"{bucket}/exports/orders/{batch['batch_id']}.{format}"]
    if format == "parquet":
        table = pq.read_table(paths[0], filesystem=filesystem)
        assert table.column("n").to_pylist() == [0, 1, 2]
    else:
        with filesystem.open_input_stream(paths[0]) as source:
            lines = source.read().decode().splitlines()
        assert [json.loads(line)["_event_id"] for line in lines] == ["ev-0", "ev-1", "ev-2"]


def test_dead_letters_are_kept_and_can_be_sent_again(settings: Settings, tenants: Tenants) -> None:
    fast = delivery_settings(settings, destination_max_attempts=2)
    key = tenants.key("acme")
    healthy = threading.Event()

    def receiver(number: int, received: Received) -> Reply:
        return Reply() if healthy.is_set() else Reply(500, b"broken")

    with (
        LocalServer(receiver) as server,
        LiveServer(create_app(fast)) as live,
        httpx.Client(base_url=live.url, timeout=30) as api,
    ):
        create(api, key, destination_id="hooks", type="http", config={"url": server.url})
        push(fast, tenants, "hooks", "s", "b-1", events(0, 2))
        wait_until(lambda: state(api, key, "hooks")["dead_batches"] == 1, what="dead letter")
        assert len(server.received) == 2  # destination_max_attempts
        dead = api.get("/destinations/hooks/batches?status=dead", headers=bearer(key)).json()
        [batch] = dead["batches"]
        assert (batch["status"], batch["attempts"], batch["rows"]) == ("dead", 2, 2)
        assert batch["last_error"] == "the receiver answered 500: broken"
        # A later batch is not held up behind a dead one.
        healthy.set()
        push(fast, tenants, "hooks", "s", "b-2", events(2, 2))
        delivered(api, key, "hooks", 1)
        assert json.loads(server.received[-1].body)["events"][0]["n"] == 2

        retried = api.post("/destinations/hooks/retry", headers=bearer(key))
        assert retried.json() == {"destination_id": "hooks", "retried": 1}
        delivered(api, key, "hooks", 2)
        assert json.loads(server.received[-1].body)["batch_id"] == batch["batch_id"]
        assert state(api, key, "hooks")["dead_batches"] == 0
        again = api.post("/destinations/hooks/retry", headers=bearer(key)).json()
        assert again["retried"] == 0


def waiting(api: httpx.Client, key: str, destination_id: str) -> bool:
    """Whether the destination waits (about an hour) for more batches to join its first."""
    due = state(api, key, destination_id)["next_attempt_at"]
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30)
    return due is not None and dt.datetime.fromisoformat(due) > later


def test_a_big_batch_goes_in_chunks_and_small_ones_together(
    api: httpx.Client, fast: Settings, tenants: Tenants
) -> None:
    key = tenants.key("acme")
    with LocalServer() as receiver:
        create(
            api,
            key,
            destination_id="hooks",
            type="http",
            config={"url": receiver.url},
            batching={"max_events": 4, "max_seconds": 3600},
        )
        # Three small batches wait for company (max_seconds) until they fill max_events…
        push(fast, tenants, "hooks", "s", "a", events(0, 1))
        wait_until(lambda: waiting(api, key, "hooks"), what="the first batch to wait")
        assert receiver.received == []
        push(fast, tenants, "hooks", "s", "b", events(1, 2))
        push(fast, tenants, "hooks", "s", "c", events(3, 1))
        # …and a big one goes in chunks of max_events, each under its own stable id.
        push(fast, tenants, "hooks", "s", "d", events(4, 10))
        delivered(api, key, "hooks", 4)
        bodies = [json.loads(r.body) for r in receiver.received]
    assert [[e["n"] for e in body["events"]] for body in bodies] == [
        [0, 1, 2, 3],
        [4, 5, 6, 7],
        [8, 9, 10, 11],
        [12, 13],
    ]
    ids = [body["batch_id"] for body in bodies]
    assert ids[1:] == [f"{ids[1][:-2]}-{n}" for n in range(3)]


def test_staging_again_after_a_crash_queues_the_batch_once(
    api: httpx.Client, fast: Settings, tenants: Tenants
) -> None:
    key = tenants.key("acme")
    with LocalServer() as receiver:
        create(api, key, destination_id="hooks", type="http", config={"url": receiver.url})
        # Recovery re-runs the flush over the same log records: the same name, rows and
        # file, enqueued again.
        first = push(fast, tenants, "hooks", "s", "node-7", events(0, 3))
        again = push(fast, tenants, "hooks", "s", "node-7", events(0, 3))
        assert first == again
        delivered(api, key, "hooks", 1)
        batches = api.get("/destinations/hooks/batches", headers=bearer(key)).json()["batches"]
        assert [b["name"] for b in batches] == ["node-7"]
        assert len(receiver.received) == 1


def test_a_batch_for_a_deleted_destination_is_dropped(
    api: httpx.Client, fast: Settings, tenants: Tenants
) -> None:
    key = tenants.key("acme")
    create(api, key, destination_id="gone", type="http", config={"url": "http://127.0.0.1:9"})
    staged = push(fast, tenants, "gone", "s", "b-1", events(0, 1))
    storage = LakeStorage(fast)
    assert storage.fs.get_file_info(storage.full_path(staged.path)).type == pafs.FileType.File
    assert (
        api.get("/destinations/gone", headers=bearer(key)).json()["delivery"]["pending_batches"]
        == 1
    )
    assert api.delete("/destinations/gone", headers=bearer(key)).status_code == 200
    # Its staged files go with it (after the answer), and a late batch is not queued.
    wait_until(
        lambda: (
            storage.fs.get_file_info(storage.full_path(staged.path)).type == pafs.FileType.NotFound
        ),
        what="the staged file's removal",
    )
    push(fast, tenants, "gone", "s", "b-2", events(1, 1))
    assert api.get("/destinations/gone", headers=bearer(key)).status_code == 404


def test_a_delete_while_the_loop_writes_its_batches_is_not_a_deadlock(
    api: httpx.Client, fast: Settings, tenants: Tenants
) -> None:
    """The loop changes a destination's row, then its batches, in one transaction. A delete
    that took the batches first and then waited for the row deadlocked with it (a 503)."""
    if fast.database.drivername.startswith("sqlite"):
        pytest.skip("SQLite has one writer at a time: there is nothing to interleave")
    key = tenants.key("acme")
    create(api, key, destination_id="gone", type="http", config={"url": "http://127.0.0.1:9"})
    held_until = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)

    async def hold(session: AsyncSession) -> None:
        # Another process's lease: this process's own loop keeps away from it.
        await session.execute(update(Destination).values(lease_expires_at=held_until))

    tenants.run(hold)
    push(fast, tenants, "gone", "s", "b-1", events(0, 1))
    row_taken, deleting = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    async def deliver(session: AsyncSession) -> None:
        await session.execute(update(Destination).values(lease_expires_at=held_until))
        row_taken.set()
        deleting.wait(10)
        await asyncio.sleep(0.5)  # the delete waits on this transaction by now
        await session.execute(text("UPDATE destination_batches SET chunks_sent = 1"))

    def loop() -> None:
        try:
            tenants.run(deliver)
        except BaseException as error:
            failures.append(error)

    thread = threading.Thread(target=loop)
    thread.start()
    assert row_taken.wait(10)
    deleting.set()
    answer = api.delete("/destinations/gone", headers=bearer(key))
    thread.join(10)
    assert answer.status_code == 200, answer.text
    assert failures == []
    assert api.get("/destinations/gone", headers=bearer(key)).status_code == 404


def test_delivery_shows_in_metrics(api: httpx.Client, fast: Settings, tenants: Tenants) -> None:
    key = tenants.key("acme")
    with LocalServer() as receiver:
        create(api, key, destination_id="hooks", type="http", config={"url": receiver.url})
        push(fast, tenants, "hooks", "s", "b-1", events(0, 3))
        delivered(api, key, "hooks", 1)
    metrics = api.get("/metrics").text
    assert 'openenrich_destination_events_total{outcome="delivered",type="http"} 3.0' in metrics
    assert 'openenrich_destination_requests_total{outcome="delivered",type="http"} 1.0' in metrics


def test_active_destinations_lists_what_a_route_may_name(
    api: httpx.Client, fast: Settings, tenants: Tenants
) -> None:
    key = tenants.key("acme")
    create(api, key, destination_id="siem", type="syslog", config={"host": "127.0.0.1"})
    create(
        api,
        tenants.key("globex"),
        destination_id="theirs",
        type="syslog",
        config={"host": "127.0.0.1"},
    )
    org = org_id(tenants)

    async def work(session: AsyncSession) -> dict[str, str]:
        return await active_destinations(session, org, "live")

    assert tenants.run(work) == {"lake": "lake", "siem": "syslog"}


def test_a_destination_another_process_holds_is_taken_over_when_its_lease_ends(
    api: httpx.Client, fast: Settings, tenants: Tenants
) -> None:
    """A process that died while sending: its lease runs out, this one sends the batch
    again under the id the dead one used (what a receiver dedupes on)."""
    key = tenants.key("acme")
    with LocalServer() as receiver:
        create(api, key, destination_id="hooks", type="http", config={"url": receiver.url})
        held_until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)

        async def hold(session: AsyncSession) -> None:
            await session.execute(update(Destination).values(lease_expires_at=held_until))

        tenants.run(hold)
        push(fast, tenants, "hooks", "s", "b-1", events(0, 2))

        async def fix_group(session: AsyncSession) -> str:
            # What the dead process had recorded when it first tried: the batch's group.
            await session.execute(text("UPDATE destination_batches SET group_id = batch_id"))
            return str(await session.scalar(text("SELECT batch_id FROM destination_batches")))

        batch_id = tenants.run(fix_group)
        assert state(api, key, "hooks")["pending_batches"] == 1
        delivered(api, key, "hooks", 1)
        [request] = receiver.received
    assert request.at >= held_until.timestamp()
    assert request.headers["webhook-id"] == batch_id


def test_a_receiver_that_refuses_connections_gets_everything_once_it_listens(
    api: httpx.Client, fast: Settings, tenants: Tenants
) -> None:
    key = tenants.key("acme")
    port = free_port()  # nothing listens there yet: connections are refused
    create(
        api, key, destination_id="hooks", type="http", config={"url": f"http://127.0.0.1:{port}"}
    )
    push(fast, tenants, "hooks", "s", "b-1", events(0, 2))
    push(fast, tenants, "hooks", "s", "b-2", events(2, 2))
    wait_until(
        lambda: "ConnectError" in (state(api, key, "hooks")["last_error"] or ""),
        what="a refused connection",
    )
    with LocalServer(port=port) as receiver:
        delivered(api, key, "hooks", 2)
        sent = [e["n"] for r in receiver.received for e in json.loads(r.body)["events"]]
    assert sent == [0, 1, 2, 3]


def test_a_batch_failing_past_the_maximum_age_is_dead_lettered(
    settings: Settings, tenants: Tenants
) -> None:
    fast = delivery_settings(settings, destination_max_age_seconds=0.3)
    key = tenants.key("acme")
    with (
        LocalServer(lambda n, r: Reply(502, b"bad gateway")) as server,
        LiveServer(create_app(fast)) as live,
        httpx.Client(base_url=live.url, timeout=30) as api,
    ):
        create(api, key, destination_id="hooks", type="http", config={"url": server.url})
        push(fast, tenants, "hooks", "s", "b-1", events(0, 1))
        wait_until(lambda: state(api, key, "hooks")["dead_batches"] == 1, what="dead letter")
        [batch] = api.get("/destinations/hooks/batches?status=dead", headers=bearer(key)).json()[
            "batches"
        ]
    assert 2 <= batch["attempts"] < fast.destination_max_attempts


def test_delivered_batches_are_forgotten_after_the_retention(
    api: httpx.Client, fast: Settings, tenants: Tenants
) -> None:
    key = tenants.key("acme")
    with LocalServer() as receiver:
        create(api, key, destination_id="hooks", type="http", config={"url": receiver.url})
        push(fast, tenants, "hooks", "s", "b-1", events(0, 2))
        delivered(api, key, "hooks", 1)

    def listed() -> list[dict[str, Any]]:
        answer = api.get("/destinations/hooks/batches?status=delivered", headers=bearer(key))
        batches: list[dict[str, Any]] = answer.json()["batches"]
        return batches

    assert len(listed()) == 1
    kept = fast.model_copy(update={"destination_delivered_retention_hours": 1.0})
    asyncio.run(housekeeping(kept))
    assert len(listed()) == 1
    asyncio.run(housekeeping(fast.model_copy(update={"destination_delivered_retention_hours": 0})))
    assert listed() == []
    now = state(api, key, "hooks")
    assert (now["delivered_batches"], now["delivered_events"]) == (1, 2)


async def housekeeping(settings: Settings) -> None:
    database = Database.from_settings(settings)
    try:
        await purge_delivered(database, settings)
    finally:
        await database.dispose()

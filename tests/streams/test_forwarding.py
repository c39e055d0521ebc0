"""Forwarding on flush (`webhook_url` on a stream) to a real receiver on loopback: every
event written to the lake arrives once, signed, through the webhook outbox, also after
the receiver was down for a while."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from helpers.http import LocalServer, Received, Reply
from helpers.server import LiveServer
from helpers.tenants import Tenants, bearer
from openenrich.app import create_app
from openenrich.config import Settings


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "allow_private_urls": True,
            "job_poll_seconds": 0.2,
            # 15 s of retries: room for a loaded machine while a receiver is down
            "webhook_retry_delays": [0.5] * 30,
            "webhook_timeout_seconds": 2.0,
            "stream_forward_batch_events": 40,
        }
    )


@pytest.fixture
def api(fast: Settings, tenants: Tenants) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    with (
        LiveServer(create_app(fast)) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        yield client, bearer(tenants.key("acme"))


def ingest(client: httpx.Client, headers: dict[str, str], stream: str, first: int, n: int) -> None:
    events = [{"n": i, "props": {"i": i}} for i in range(first, first + n)]
    response = client.post("/ingest", headers=headers, json={"stream_id": stream, "data": events})
    assert response.status_code == 200, response.text


def deliveries(
    client: httpx.Client, headers: dict[str, str], endpoint_id: str, count: int
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = client.get(
            f"/api/v1/webhooks/{endpoint_id}/deliveries?limit=100", headers=headers
        ).json()
        if len(found) >= count and all(d["status"] == "delivered" for d in found):
            return list(found)
        time.sleep(0.1)
    raise AssertionError(f"not all delivered: {found}")


def accepted(received: list[Received], secret: str, taken: set[int]) -> list[dict[str, Any]]:
    """The verified payloads of the requests the receiver answered 2xx (`taken`)."""
    return [Webhook(secret).verify(r.body, r.headers) for i, r in enumerate(received) if i in taken]


def test_every_flushed_event_is_forwarded_once_signed(
    api: tuple[httpx.Client, dict[str, str]],
) -> None:
    client, headers = api
    with LocalServer() as receiver:
        created = client.post(
            "/streams",
            headers=headers,
            json={"stream_id": "clicks", "webhook_url": f"{receiver.url}/hook"},
        )
        assert created.status_code == 201, created.text
        stream = created.json()
        secret = stream["webhook_secret"]
        assert secret.startswith("whsec_")
        assert stream["webhook_url"] == f"{receiver.url}/hook"
        listed = client.get("/streams", headers=headers).json()["streams"]
        assert listed[0]["webhook_url"] == f"{receiver.url}/hook"
        assert "webhook_secret" not in listed[0]
        ingest(client, headers, "clicks", 0, 50)
        ingest(client, headers, "clicks", 50, 50)
        assert client.post("/streams/clicks/flush", headers=headers).status_code == 200
        ingest(client, headers, "clicks", 100, 10)
        assert client.post("/streams/clicks/flush", headers=headers).status_code == 200
        endpoints = client.get("/api/v1/webhooks", headers=headers).json()
        assert [e["description"] for e in endpoints] == ["Forwarding of stream 'clicks'"]
        assert endpoints[0]["event_types"] == ["stream.batch"]
        logged = deliveries(client, headers, endpoints[0]["id"], 4)
        received = receiver.wait_for(4)
    assert len(logged) == len(received) == 4  # 40 + 40 + 20, then 10
    payloads = accepted(received, secret, set(range(4)))
    assert {p["type"] for p in payloads} == {"stream.batch"}
    assert sorted(p["data"]["count"] for p in payloads) == [10, 20, 40, 40]
    events = [e for p in payloads for e in p["data"]["events"]]
    assert sorted(e["n"] for e in events) == list(range(110))
    assert len({e["_event_id"] for e in events}) == 110
    assert events[0]["props"] == {"i": events[0]["n"]}
    assert events[0]["_ingested_at"].endswith("Z")
    assert {p["data"]["stream_id"] for p in payloads} == {"clicks"}


def test_a_receiver_down_for_a_while_gets_every_event_once_after_it_recovers(
    api: tuple[httpx.Client, dict[str, str]],
) -> None:
    client, headers = api
    down = threading.Event()
    down.set()
    taken: set[int] = set()

    def respond(n: int, received: Received) -> Reply:
        if down.is_set():
            return Reply(status=503)
        taken.add(n - 1)
        return Reply(status=200)

    with LocalServer(respond) as receiver:
        created = client.post(
            "/streams", headers=headers, json={"stream_id": "orders", "webhook_url": receiver.url}
        ).json()
        for first in range(0, 120, 30):
            ingest(client, headers, "orders", first, 30)
            assert client.post("/streams/orders/flush", headers=headers).status_code == 200
        receiver.wait_for(4)  # refused, all of them
        # The lake was not held up meanwhile: every event is queryable.
        rows = client.post("/query", headers=headers, json={"sql": "SELECT count(*) FROM orders"})
        assert rows.json()["rows"] == [[120]]
        down.clear()
        endpoint_id = client.get("/api/v1/webhooks", headers=headers).json()[0]["id"]
        logged = deliveries(client, headers, endpoint_id, 4)
        received = list(receiver.received)
    assert all(d["attempts"] >= 2 for d in logged)
    payloads = accepted(received, created["webhook_secret"], taken)
    events = [e for p in payloads for e in p["data"]["events"]]
    assert sorted(e["n"] for e in events) == list(range(120))  # each once
    assert len({r.headers["webhook-id"] for i, r in enumerate(received) if i in taken}) == 4


def test_changing_and_removing_the_webhook_url(
    api: tuple[httpx.Client, dict[str, str]],
) -> None:
    client, headers = api
    with LocalServer() as first, LocalServer() as second:
        created = client.post(
            "/streams", headers=headers, json={"stream_id": "s", "webhook_url": first.url}
        ).json()
        moved = client.put("/streams/s", headers=headers, json={"webhook_url": second.url})
        assert moved.status_code == 200, moved.text
        assert moved.json()["webhook_url"] == second.url
        assert "webhook_secret" not in moved.json()  # the endpoint, and its secret, stay
        ingest(client, headers, "s", 0, 5)
        client.post("/streams/s/flush", headers=headers)
        got = second.wait_for(1)
        Webhook(created["webhook_secret"]).verify(got[0].body, got[0].headers)
        assert first.received == []
        stopped = client.put("/streams/s", headers=headers, json={"webhook_url": None})
        assert stopped.json()["webhook_url"] is None
        assert client.get("/api/v1/webhooks", headers=headers).json() == []
        ingest(client, headers, "s", 5, 5)
        client.post("/streams/s/flush", headers=headers)
        time.sleep(0.5)
        assert len(second.received) == 1
        again = client.put("/streams/s", headers=headers, json={"webhook_url": first.url})
        assert again.json()["webhook_secret"].startswith("whsec_")
        assert client.delete("/streams/s", headers=headers).status_code == 200
        assert client.get("/api/v1/webhooks", headers=headers).json() == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:9/hook", "webhook_url: "),
        ("https://10.0.0.1/hook", "webhook_url: "),
        ("not a url", "webhook_url: "),
        (42, "webhook_url must be a URL or null"),
    ],
)
def test_a_webhook_url_the_guard_refuses_is_a_400(
    client: httpx.Client, tenants: Tenants, url: object, message: str
) -> None:
    headers = bearer(tenants.key("acme"))
    created = client.post("/streams", headers=headers, json={"stream_id": "s", "webhook_url": url})
    assert created.status_code == 400, created.text
    assert created.json()["error"].startswith(message)
    assert client.get("/streams", headers=headers).json()["streams"] == []
    assert client.post("/streams", headers=headers, json={"stream_id": "s"}).status_code == 201
    changed = client.put("/streams/s", headers=headers, json={"webhook_url": url})
    assert changed.status_code == 400
    assert changed.json()["error"].startswith(message)


def test_setting_the_url_again_re_enables_a_disabled_forwarding(
    fast: Settings, tenants: Tenants
) -> None:
    """Dead letters disable the endpoint; batches flushed meanwhile wait, and go out once
    the stream's owner sets the URL again."""
    down = threading.Event()
    down.set()
    headers = bearer(tenants.key("acme"))
    strict = fast.model_copy(update={"webhook_retry_delays": [0.1], "webhook_disable_after": 1})
    with (
        LocalServer(lambda n, r: Reply(status=503 if down.is_set() else 200)) as receiver,
        LiveServer(create_app(strict)) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        body = {"stream_id": "s", "webhook_url": receiver.url}
        assert client.post("/streams", headers=headers, json=body).status_code == 201
        ingest(client, headers, "s", 0, 3)
        client.post("/streams/s/flush", headers=headers)
        receiver.wait_for(2)  # the first try and its one retry: dead, and disabled
        endpoint = client.get("/api/v1/webhooks", headers=headers).json()[0]
        deadline = time.monotonic() + 10
        while endpoint["is_active"] and time.monotonic() < deadline:
            time.sleep(0.1)
            endpoint = client.get("/api/v1/webhooks", headers=headers).json()[0]
        assert endpoint["is_active"] is False
        ingest(client, headers, "s", 3, 4)
        client.post("/streams/s/flush", headers=headers)
        time.sleep(0.5)
        assert len(receiver.received) == 2  # nothing goes to a disabled endpoint
        down.clear()
        again = client.put("/streams/s", headers=headers, json={"webhook_url": receiver.url})
        assert again.status_code == 200
        got = receiver.wait_for(3)
        # The receiver has the batch before the dispatcher writes down its answer.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            log = client.get(
                f"/api/v1/webhooks/{endpoint['id']}/deliveries", headers=headers
            ).json()
            if "pending" not in {d["status"] for d in log}:
                break
            time.sleep(0.1)
    assert json.loads(got[2].body)["data"]["count"] == 4
    assert sorted(d["status"] for d in log) == ["dead", "delivered"]

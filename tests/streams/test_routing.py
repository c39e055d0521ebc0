"""A stream's whole pipeline over HTTP: mask, filter, sample by user and route to the lake
and two destinations. Each receives exactly its rows; a destination that is down gets
everything once it recovers, and the lake's files land on time meanwhile."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from typing import Any

import httpx
from pydantic import SecretStr
from standardwebhooks.webhooks import Webhook

from helpers.http import LocalServer, Received, Reply
from helpers.server import LiveServer
from helpers.tenants import Tenants, bearer
from openenrich.app import create_app
from openenrich.config import Settings
from streams.destinations_helpers import create, delivery_settings, state, wait_until

SALT = "a salt only this server knows"
LEVELS = ("debug", "info", "error", "warn")


def sampled(user: str, rate: float) -> bool:
    """The documented sample: a stable 64-bit hash of the key, so a user is all in or out."""
    digest = hashlib.blake2b(user.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 1_000_000 < int(rate * 1_000_000)


def make_events() -> list[dict[str, Any]]:
    return [
        {
            "n": n,
            "user_id": f"user{n % 300}",
            "email": f"user{n % 300}@example.com",
            "level": LEVELS[n % 4],
            "amount": (n * 37) % 250,
        }
        for n in range(3000)
    ]


def test_mask_filter_sample_route_deliver_exactly_the_right_rows(
    settings: Settings, tenants: Tenants
) -> None:
    fast = delivery_settings(settings, flush_max_seconds=0.3, mask_salt=SecretStr(SALT))
    key = tenants.key("acme")
    down = threading.Event()
    down.set()
    accepted: list[dict[str, Any]] = []  # the bodies the sick receiver took

    def flaky(number: int, received: Received) -> Reply:
        if down.is_set():
            return Reply(503, b"down for maintenance")
        accepted.append(json.loads(received.body))
        return Reply()

    sent = make_events()
    kept = [e for e in sent if e["level"] != "debug" and sampled(e["user_id"], 0.1)]
    to_alerts = {e["n"] for e in kept if e["level"] == "error"}
    to_warehouse = {e["n"] for e in kept if e["amount"] > 100}
    to_lake = {e["n"] for e in kept if e["level"] != "error" or e["amount"] > 100}
    assert 0 < len(to_alerts) < len(kept)  # the data exercises every branch

    with (
        LocalServer(flaky) as alerts,
        LocalServer() as warehouse,
        LiveServer(create_app(fast)) as live,
        httpx.Client(base_url=live.url, timeout=30) as client,
    ):
        secrets = {
            name: create(client, key, destination_id=name, type="http", config={"url": url})[
                "signing_secret"
            ]
            for name, url in (("alerts", alerts.url), ("warehouse", warehouse.url))
        }
        pipeline = [
            {"type": "mask", "fields": ["email"], "method": "hash"},
            {"type": "filter", "where": "level <> 'debug'"},
            {"type": "sample", "rate": 0.1, "by": "user_id"},
            {
                "type": "route",
                "rules": [
                    {"when": "level = 'error'", "to": ["alerts"]},
                    {"when": "amount > 100", "to": ["warehouse", "lake"]},
                ],
            },
        ]
        created = client.post(
            "/streams", headers=bearer(key), json={"stream_id": "shop", "pipeline": pipeline}
        )
        assert created.status_code == 201, created.text
        # A destination a route names cannot be deleted.
        refused = client.delete("/destinations/alerts", headers=bearer(key))
        assert refused.status_code == 409
        assert "shop" in refused.json()["error"]

        for first in range(0, len(sent), 500):
            batch = sent[first : first + 500]
            answer = client.post(
                "/ingest", headers=bearer(key), json={"stream_id": "shop", "data": batch}
            )
            assert answer.status_code == 200, answer.text

        def in_lake() -> list[list[Any]]:
            answer = client.post(
                "/query", headers=bearer(key), json={"sql": "SELECT n, email FROM shop ORDER BY n"}
            )
            return list(answer.json()["rows"]) if answer.status_code == 200 else []

        # The flusher writes the lake's files on its own while alerts is down.
        wait_until(lambda: len(in_lake()) == len(to_lake), what="the lake's files landing")
        lake_rows = in_lake()
        assert [n for n, _ in lake_rows] == sorted(to_lake)
        emails = {email for _, email in lake_rows}
        assert all(len(email) == 64 and "@" not in email for email in emails)

        def received(server: LocalServer, secret: str) -> list[dict[str, Any]]:
            bodies = [Webhook(secret).verify(r.body, r.headers) for r in server.received]
            return [event for body in bodies for event in body["events"]]

        wait_until(
            lambda: len(received(warehouse, secrets["warehouse"])) >= len(to_warehouse),
            what="the warehouse's rows",
        )
        during = state(client, key, "alerts")
        assert during["delivered_batches"] == 0
        assert during["pending_batches"] >= 1
        assert during["last_error"].startswith("the receiver answered 503")

        down.clear()
        wait_until(
            lambda: sum(len(body["events"]) for body in accepted) >= len(to_alerts),
            what="alerts catching up",
        )
        wait_until(lambda: state(client, key, "alerts")["pending_batches"] == 0)
        warehouse_events = received(warehouse, secrets["warehouse"])

    alert_events = [event for body in accepted for event in body["events"]]
    # Exactly its rows, each once.
    assert sorted(e["n"] for e in alert_events) == sorted(to_alerts)
    assert sorted(e["n"] for e in warehouse_events) == sorted(to_warehouse)
    assert len({e["_event_id"] for e in alert_events}) == len(alert_events)
    # Masked before routing: no destination sees an address.
    assert all("@" not in e["email"] for e in alert_events + warehouse_events)
    for event in alert_events + warehouse_events:
        address = f"{event['user_id']}@example.com".encode()
        assert event["email"] == hmac.new(SALT.encode(), address, hashlib.sha256).hexdigest()

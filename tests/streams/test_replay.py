"""Stream replays over HTTP: the stored events of a range of days, in signed batches, to a
real receiver on loopback; retries, failure, cancel, the event stream, and bad requests.

Events land on chosen days through the lake engine itself (its `now_us`, the ingest time
the write-ahead log records): the same files and manifest rows ingest makes, on days a
test cannot wait for.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks.webhooks import Webhook

from helpers.http import LocalServer, Received, Reply
from helpers.server import LiveServer
from helpers.tenants import Tenants, bearer
from openenrich.app import create_app
from openenrich.config import Settings
from openenrich.db import Database
from openenrich.lake.engine import BufferKey, FlushedFile, LakeEngine
from openenrich.lake.storage import LakeStorage
from openenrich.tenancy import service as tenancy

DAYS = ["2026-02-01", "2026-02-02", "2026-02-03", "2026-02-05"]
PER_DAY = 60  # in three records a day


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "allow_private_urls": True,
            "job_poll_seconds": 0.2,
            "sse_heartbeat_seconds": 0.3,
            "replay_batch_events": 25,
            "replay_retry_delays": [0.1, 0.1],
            "webhook_timeout_seconds": 2.0,
        }
    )


def _micros(day: str, second: int) -> int:
    moment = datetime.fromisoformat(day).replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000) + second * 1_000_000


async def _store_on_days(settings: Settings, org_id: str, stream_id: str) -> None:
    async def declared(key: BufferKey, version: int) -> Mapping[str, str] | None:
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
        n = 0
        for day in DAYS:
            for record in range(3):
                events = []
                for _ in range(PER_DAY // 3):
                    events.append({"n": n, "day": day, "props": {"i": n}, "tags": ["a", n]})
                    n += 1
                payload = json.dumps(events).encode()
                at = _micros(day, 3600 + record)
                await engine.append(
                    org_id, "live", stream_id, "data", payload, count=len(events), now_us=at
                )
        await engine.flush_all()
    finally:
        await engine.stop()
        await database.dispose()


def expected_numbers(days: list[str]) -> list[int]:
    return [n for i, day in enumerate(DAYS) if day in days for n in range(i * 60, i * 60 + 60)]


class Replays:
    def __init__(self, client: httpx.Client, key: str) -> None:
        self.client = client
        self.headers = bearer(key)

    def start(self, stream_id: str, body: dict[str, Any], **headers: str) -> httpx.Response:
        return self.client.post(
            f"/streams/{stream_id}/replay", headers={**self.headers, **headers}, json=body
        )

    def get(self, stream_id: str, replay_id: str, wait: float = 0) -> dict[str, Any]:
        response = self.client.get(
            f"/streams/{stream_id}/replays/{replay_id}?wait={wait}", headers=self.headers
        )
        assert response.status_code == 200, response.text
        return response.json()

    def until(self, stream_id: str, replay_id: str, *statuses: str) -> dict[str, Any]:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            replay = self.get(stream_id, replay_id, wait=2)
            if replay["status"] in statuses:
                return replay
        raise AssertionError(f"replay never reached {statuses}: {replay}")

    def events(self, stream_id: str, replay_id: str, **headers: str) -> list[tuple[str, Any]]:
        """The replay's event stream, read until it closes (the replay has ended)."""
        found: list[tuple[str, Any]] = []
        with self.client.stream(
            "GET",
            f"/streams/{stream_id}/replays/{replay_id}/events",
            headers={**self.headers, **headers},
        ) as stream:
            assert stream.status_code == 200
            fields: dict[str, str] = {}
            for line in stream.iter_lines():
                if not line:  # the end of an event
                    if "data" in fields:
                        data = json.loads(fields["data"])
                        found.append((fields["event"], {"id": int(fields["id"]), **data}))
                    fields = {}
                elif not line.startswith(":"):
                    name, _, value = line.partition(": ")
                    fields[name] = value
        return found


@pytest.fixture
def seeded(fast: Settings, tenants: Tenants) -> Iterator[tuple[Replays, str]]:
    """A server whose stream `events` holds PER_DAY events on each of DAYS, and one more
    received today; the tenant's key."""
    key = tenants.key("acme")

    async def org_id(session: AsyncSession) -> str:
        return (await tenancy.ensure_organization(session, "acme")).id

    with LiveServer(create_app(fast)) as server, httpx.Client(base_url=server.url) as client:
        assert client.post("/streams", headers=bearer(key), json={"stream_id": "events"}).is_success
    asyncio.run(_store_on_days(fast, tenants.run(org_id), "events"))
    with (
        LiveServer(create_app(fast)) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        today = client.post(
            "/ingest", headers=bearer(key), json={"stream_id": "events", "data": [{"n": -1}]}
        )
        assert today.status_code == 200
        assert client.post("/streams/events/flush", headers=bearer(key)).status_code == 200
        yield Replays(client, key), key


def verified(received: list[Received], secret: str) -> list[dict[str, Any]]:
    return [Webhook(secret).verify(r.body, r.headers) for r in received]


def test_a_replay_delivers_exactly_the_events_of_its_days_in_signed_batches(
    seeded: tuple[Replays, str],
) -> None:
    replays, _ = seeded
    with LocalServer() as receiver:
        body = {"from": "2026-02-02", "to": "2026-02-04", "webhook_url": f"{receiver.url}/in"}
        started = replays.start("events", body)
        assert started.status_code == 202, started.text
        answer = started.json()
        assert answer["replay_id"].startswith("rpl_")
        assert {k: answer[k] for k in ("status", "stream_id", "from", "to")} == {
            "status": "started",
            "stream_id": "events",
            "from": "2026-02-02",
            "to": "2026-02-04",
        }
        assert answer["estimated_events"] == 120
        secret = answer["webhook_secret"]
        assert secret.startswith("whsec_")
        done = replays.until("events", answer["replay_id"], "completed")
        received = list(receiver.received)
    assert (done["events_sent"], done["batches_sent"]) == (120, len(received))
    assert done["error"] is None
    assert done["finished_at"] is not None
    assert "webhook_secret" not in done  # shown once
    payloads = verified(received, secret)
    # Three files' worth of 60 events a day, 25 a batch: 25, 25, 10 per file.
    assert sorted(p["data"]["count"] for p in payloads) == [10, 10, 25, 25, 25, 25]
    assert [p["data"]["batch"] for p in payloads] == list(range(1, 7))
    assert {p["type"] for p in payloads} == {"stream.replay"}
    assert [p["id"] for p in payloads] == [r.headers["webhook-id"] for r in received]
    events = [e for p in payloads for e in p["data"]["events"]]
    assert sorted(e["n"] for e in events) == expected_numbers(["2026-02-02", "2026-02-03"])
    assert len({e["_event_id"] for e in events}) == 120
    first = min(events, key=lambda e: e["n"])
    assert first["props"] == {"i": first["n"]}  # JSON columns as nested JSON
    assert first["tags"] == ["a", first["n"]]
    assert first["_ingested_at"] == "2026-02-02T01:00:00Z"  # ISO 8601, UTC
    assert all(p["data"]["date"] == p["data"]["events"][0]["day"] for p in payloads)


def test_the_event_stream_tells_the_replay_and_resumes_after_last_event_id(
    seeded: tuple[Replays, str],
) -> None:
    replays, _ = seeded
    with LocalServer() as receiver:
        body = {"from": "2026-02-01", "to": "2026-02-01", "webhook_url": receiver.url}
        replay_id = replays.start("events", body).json()["replay_id"]
        events = replays.events("events", replay_id)
    kinds = [kind for kind, _ in events]
    assert kinds == [
        "replay.created",
        "replay.started",
        "replay.batch",
        "replay.batch",
        "replay.batch",
        "replay.completed",
    ]
    assert [data["events_sent"] for kind, data in events if kind == "replay.batch"] == [
        25,
        50,
        60,
    ]
    assert events[-1][1]["events_sent"] == 60
    ids = [data["id"] for _, data in events]
    assert ids == list(range(1, len(ids) + 1))
    rest = replays.events("events", replay_id, **{"last-event-id": str(ids[3])})
    assert [data["id"] for _, data in rest] == ids[4:]


def test_a_refused_batch_is_retried_with_the_same_id_and_never_skipped(
    seeded: tuple[Replays, str],
) -> None:
    replays, _ = seeded
    with LocalServer(lambda n, r: Reply(status=503 if n in (2, 3) else 200)) as receiver:
        body = {"from": "2026-02-01", "to": "2026-02-01", "webhook_url": receiver.url}
        answer = replays.start("events", body).json()
        done = replays.until("events", answer["replay_id"], "completed", "failed")
        received = list(receiver.received)
    assert done["status"] == "completed"
    ids = [r.headers["webhook-id"] for r in received]
    assert ids[1] == ids[2] == ids[3] == f"{answer['replay_id']}_2"
    payloads = verified(
        [r for i, r in enumerate(received) if i not in (1, 2)], answer["webhook_secret"]
    )
    numbers = sorted(e["n"] for p in payloads for e in p["data"]["events"])
    assert numbers == expected_numbers(["2026-02-01"])


def test_a_replay_fails_after_its_retries_saying_where_it_stopped(
    seeded: tuple[Replays, str],
) -> None:
    replays, _ = seeded
    with LocalServer(lambda n, r: Reply(status=500 if n >= 2 else 200)) as receiver:
        body = {"from": "2026-02-01", "to": "2026-02-05", "webhook_url": receiver.url}
        answer = replays.start("events", body).json()
        done = replays.until("events", answer["replay_id"], "failed", "completed")
        attempts = len(receiver.received)
    assert done["status"] == "failed"
    assert (done["events_sent"], done["batches_sent"]) == (25, 1)
    assert attempts == 1 + 3  # batch 1, then batch 2 tried once and retried twice
    assert done["error"]["code"] == "delivery_failed"
    message = done["error"]["message"]
    assert "batch 2 (25 events of 2026-02-01) was refused 3 times" in message
    assert "the URL answered 500" in message
    assert "25 events in 1 batches were delivered before it" in message


def test_cancel_stops_a_replay_before_its_next_batch(seeded: tuple[Replays, str]) -> None:
    replays, _ = seeded
    # A slow receiver: the cancel lands while the first batch is on its way.
    with LocalServer(lambda n, r: Reply(delay=1.0)) as receiver:
        body = {"from": "2026-02-01", "to": "2026-02-05", "webhook_url": receiver.url}
        answer = replays.start("events", body).json()
        receiver.wait_for(1)
        cancelled = replays.client.post(
            f"/streams/events/replays/{answer['replay_id']}/cancel", headers=replays.headers
        )
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        events = replays.events("events", answer["replay_id"])
        time.sleep(1.5)
        sent = len(receiver.received)
    assert events[-1][0] == "replay.cancelled"
    assert sent <= 2  # the batch on its way when it was cancelled, at most
    final = replays.get("events", answer["replay_id"])
    assert final["status"] == "cancelled"
    assert final["events_sent"] < 240
    again = replays.client.post(
        f"/streams/events/replays/{answer['replay_id']}/cancel", headers=replays.headers
    )
    assert again.json()["status"] == "cancelled"


def test_an_idempotency_key_starts_one_replay(seeded: tuple[Replays, str]) -> None:
    replays, _ = seeded
    body = {"from": "2026-02-01", "to": "2026-02-01", "webhook_url": "http://127.0.0.1:9/"}
    first = replays.start("events", body, **{"idempotency-key": "k1"})
    second = replays.start("events", body, **{"idempotency-key": "k1"})
    assert (first.status_code, second.status_code) == (202, 200)
    assert first.json()["replay_id"] == second.json()["replay_id"]
    other = replays.start("events", {**body, "to": "2026-02-02"}, **{"idempotency-key": "k1"})
    assert other.status_code == 409


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"to": "2026-02-01", "webhook_url": "https://93.184.215.14/"}, 400, "from is required"),
        (
            {"from": "2026-02-30", "to": "2026-03-01", "webhook_url": "https://93.184.215.14/"},
            400,
            "from must be a date as YYYY-MM-DD, not '2026-02-30'",
        ),
        (
            {"from": "2026-2-1", "to": "2026-03-01", "webhook_url": "https://93.184.215.14/"},
            400,
            "from must be a date as YYYY-MM-DD, not '2026-2-1'",
        ),
        (
            {"from": "2026-02-01", "to": 20260301, "webhook_url": "https://93.184.215.14/"},
            400,
            "to must be a date as YYYY-MM-DD",
        ),
        (
            {"from": "2026-03-02", "to": "2026-03-01", "webhook_url": "https://93.184.215.14/"},
            400,
            "from must not be after to",
        ),
        (
            {"from": "2025-01-01", "to": "2026-03-01", "webhook_url": "https://93.184.215.14/"},
            400,
            "the range covers 425 days; a replay covers at most 366",
        ),
        ({"from": "2026-02-01", "to": "2026-02-01"}, 400, "webhook_url is required"),
        (
            {"from": "2026-02-01", "to": "2026-02-01", "webhook_url": "http://127.0.0.1:9/"},
            400,
            "webhook_url: ",
        ),
        (
            {"from": "2026-02-01", "to": "2026-02-01", "webhook_url": "https://93.184.215.14/"},
            404,
            "Stream 'nope' not found",
        ),
    ],
)
def test_bad_replay_requests(
    client: httpx.Client, tenants: Tenants, body: dict[str, Any], status: int, message: str
) -> None:
    headers = bearer(tenants.key("acme"))
    assert client.post("/streams", headers=headers, json={"stream_id": "events"}).is_success
    stream = "nope" if status == 404 else "events"
    response = client.post(f"/streams/{stream}/replay", headers=headers, json=body)
    assert response.status_code == status, response.text
    assert list(response.json()) == ["error"]
    assert response.json()["error"].startswith(message)


def test_a_replay_is_found_only_under_its_stream_and_tenant(
    seeded: tuple[Replays, str], tenants: Tenants
) -> None:
    replays, _ = seeded
    body = {"from": "2026-02-01", "to": "2026-02-01", "webhook_url": "http://127.0.0.1:9/"}
    replay_id = replays.start("events", body).json()["replay_id"]
    created = replays.client.post("/streams", headers=replays.headers, json={"stream_id": "b"})
    assert created.is_success
    for path in (
        f"/streams/b/replays/{replay_id}",
        "/streams/events/replays/rpl_nothing",
        f"/streams/b/replays/{replay_id}/events",
    ):
        response = replays.client.get(path, headers=replays.headers)
        assert response.status_code == 404
        assert response.json()["error"].startswith("Replay '")
    stranger = bearer(tenants.key("globex"))
    response = replays.client.get(f"/streams/events/replays/{replay_id}", headers=stranger)
    assert response.status_code == 404
    replays.client.post(f"/streams/events/replays/{replay_id}/cancel", headers=replays.headers)


def test_a_replay_interrupted_by_a_restart_resumes_after_its_last_batch(
    fast: Settings, tenants: Tenants
) -> None:
    key = tenants.key("acme")

    async def org_id(session: AsyncSession) -> str:
        return (await tenancy.ensure_organization(session, "acme")).id

    with LiveServer(create_app(fast)) as server, httpx.Client(base_url=server.url) as client:
        assert client.post("/streams", headers=bearer(key), json={"stream_id": "events"}).is_success
    asyncio.run(_store_on_days(fast, tenants.run(org_id), "events"))
    with LocalServer(lambda n, r: Reply(delay=0.2)) as receiver:
        body = {"from": "2026-02-01", "to": "2026-02-05", "webhook_url": receiver.url}
        with LiveServer(create_app(fast)) as server, httpx.Client(base_url=server.url) as client:
            answer = Replays(client, key).start("events", body).json()
            receiver.wait_for(4)
        # The server stopped mid-replay; the next one takes the replay up again.
        with (
            LiveServer(create_app(fast)) as server,
            httpx.Client(base_url=server.url, timeout=30) as client,
        ):
            replays = Replays(client, key)
            done = replays.until("events", answer["replay_id"], "completed")
            kinds = [kind for kind, _ in replays.events("events", answer["replay_id"])]
        received = list(receiver.received)
    assert kinds.count("replay.started") == 2
    assert (done["events_sent"], done["batches_sent"]) == (240, 12)
    payloads = verified(received, answer["webhook_secret"])
    by_id = {p["id"]: p for p in payloads}  # a batch on its way at the stop may come twice
    assert sorted(by_id) == sorted(f"{answer['replay_id']}_{n}" for n in range(1, 13))
    assert len(received) - len(by_id) <= 1
    numbers = sorted(e["n"] for p in by_id.values() for e in p["data"]["events"])
    assert numbers == expected_numbers(DAYS)


def test_a_replay_sends_the_files_that_were_there_when_it_began(
    fast: Settings, tenants: Tenants
) -> None:
    plaintext = tenants.key("acme")
    key = bearer(plaintext)
    today = datetime.now(UTC).date().isoformat()
    with LocalServer() as receiver:
        idle = fast.model_copy(update={"workers_in_serve": False})
        with LiveServer(create_app(idle)) as server, httpx.Client(base_url=server.url) as client:
            assert client.post("/streams", headers=key, json={"stream_id": "s"}).is_success
            data = [{"n": n} for n in range(5)]
            client.post("/ingest", headers=key, json={"stream_id": "s", "data": data})
            client.post("/streams/s/flush", headers=key)
            body = {"from": today, "to": today, "webhook_url": receiver.url}
            answer = Replays(client, plaintext).start("s", body).json()
            assert answer["estimated_events"] == 5
            more = [{"n": n} for n in range(5, 9)]
            client.post("/ingest", headers=key, json={"stream_id": "s", "data": more})
            client.post("/streams/s/flush", headers=key)
        with (
            LiveServer(create_app(fast)) as server,
            httpx.Client(base_url=server.url, timeout=30) as client,
        ):
            replays = Replays(client, plaintext)
            done = replays.until("s", answer["replay_id"], "completed")
        received = list(receiver.received)
    assert done["events_sent"] == 5
    events = [e for p in verified(received, answer["webhook_secret"]) for e in p["data"]["events"]]
    assert sorted(e["n"] for e in events) == [0, 1, 2, 3, 4]

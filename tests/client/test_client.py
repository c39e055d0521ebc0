"""The Python client against the real server: each surface's calls, its errors as one
tree, retries, and a run's events followed across a dropped connection."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from helpers.http import LocalServer, Reply
from helpers.server import LiveServer
from helpers.tenants import Tenants
from openenrich.client import (
    AsyncClient,
    Client,
    ConnectionFailed,
    Forbidden,
    InvalidRequest,
    InvalidSignature,
    NotFound,
    RateLimited,
    Retries,
    ServerError,
    Unauthorized,
    verify_signature,
)
from openenrich.client.core import EventParser, batches

QUICKSTART = "Verify identity: Rahul Sharma, +91 98xxxxxx10, PAN ABCDE1234F"


@pytest.fixture
def key(tenants: Tenants) -> str:
    return tenants.key("acme")


@pytest.fixture
def api(server: LiveServer, key: str) -> Iterator[Client]:
    with Client(server.url, key) as client:
        yield client


def test_streams_ingest_query_and_dead_letters(api: Client) -> None:
    api.streams.create("web")
    api.streams.create("orders", schema_mode="strict", fields={"order_id": "string"})
    seen: list[int] = []
    result = api.streams.ingest(
        "web",
        ({"event": "view", "n": n} for n in range(2_500)),
        max_bytes=20_000,  # small batches: several requests
        on_batch=lambda batch, answer: seen.append(answer["accepted"]),
    )
    assert (result.accepted, result.rejected) == (2_500, 0)
    assert result.batches == len(seen) > 1
    assert sum(seen) == 2_500
    assert {s["stream_id"] for s in api.streams.list()} >= {"web", "orders"}

    api.streams.flush("web")
    answer = api.streams.query("SELECT count(*) AS events, sum(n) AS total FROM web")
    assert answer["rows"] == [[2_500, sum(range(2_500))]]
    csv = api.streams.query("SELECT 1 AS one", format="csv")
    assert csv.splitlines()[1:] == ["1"]

    rejected = api.streams.ingest("orders", [{"order_id": 7}])
    assert rejected.rejected == 1
    api.streams.flush("orders")
    letters = api.streams.dead_letters("orders")
    assert [letter["original"] for letter in letters["events"]] == [{"order_id": 7}]


def test_each_surfaces_error_body_becomes_one_tree(server: LiveServer, key: str) -> None:
    with Client(server.url, "sk_live_" + "x" * 40) as stranger, pytest.raises(Unauthorized):
        stranger.streams.list()
    with Client(server.url, key) as api:
        with pytest.raises(NotFound) as missing:
            api.runs.get("run_nope")
        assert missing.value.code == "not_found"  # runs: {"error": {"code", "message"}}
        with pytest.raises(InvalidRequest) as bad_sql:
            api.streams.query("DELETE FROM web")
        assert bad_sql.value.status == 400
        assert bad_sql.value.message  # {"error": "…"}
        with pytest.raises(InvalidRequest) as bad_run:
            api.runs.create("")
        assert bad_run.value.status == 422
        assert "message" in bad_run.value.message


def test_a_member_may_not_do_what_only_admins_may(server: LiveServer, tenants: Tenants) -> None:
    member = tenants.key("acme", role="member")
    with Client(server.url, member) as api, pytest.raises(Forbidden) as refused:
        api.request("POST", "/api/v1/workflows", json={"slug": "mine"})
    assert refused.value.code == "forbidden"


def test_a_run_created_waited_for_and_its_pdf(api: Client) -> None:
    run = api.runs.create(QUICKSTART, workflow="kyc-verification", metadata={"order": "1"})
    done = api.runs.wait(run["id"], timeout=30)
    assert done["status"] == "completed"
    assert "ABCDE1234F" in done["answer"]
    assert api.runs.report_pdf(done).startswith(b"%PDF-")
    # The same Idempotency-Key finds the same run.
    again = api.runs.create(QUICKSTART, idempotency_key="order-1")
    assert api.runs.create(QUICKSTART, idempotency_key="order-1")["id"] == again["id"]


def test_a_runs_events_are_followed_to_the_end(api: Client) -> None:
    run = api.runs.create(QUICKSTART, workflow="kyc-verification")
    events = list(api.runs.events(run["id"]))
    types = [event.type for event in events]
    assert types[-1] == "run.completed"
    assert "answer.delta" in types
    assert "tool_call" in types
    # Resuming after an event gives what came after it, and nothing before.
    later = list(api.runs.events(run["id"], after=events[2].id))
    assert [e.id for e in later] == [e.id for e in events[3:]]


def test_the_async_client_does_the_same(server: LiveServer, key: str) -> None:
    async def main() -> tuple[list[str], dict[str, Any]]:
        async with AsyncClient(server.url, key) as api:
            run = await api.runs.create(QUICKSTART, workflow="kyc-verification")
            types = [event.type async for event in api.runs.events(run["id"])]
            await api.streams.create("web")
            await api.streams.ingest("web", [{"n": 1}, {"n": 2}])
            await api.streams.flush("web")
            return types, await api.streams.query("SELECT count(*) FROM web")

    types, counted = asyncio.run(main())
    assert types[-1] == "run.completed"
    assert counted["rows"] == [[2]]


def test_429_waits_for_retry_after_and_5xx_retries_only_what_is_safe_to_repeat() -> None:
    def answer(n: int, request: Any) -> Reply:
        if request.path == "/limited" and n == 1:
            return Reply(status=429, headers={"Retry-After": "0.2"}, body=b'{"error": "slow"}')
        if request.path == "/busy" and n == 3:  # the same key's first try is being stored
            return Reply(status=409, headers={"Retry-After": "0.1"}, body=b'{"error": "wait"}')
        if request.path == "/always-limited":
            return Reply(status=429, body=b'{"error": "slow down"}')
        if request.path.startswith("/broken"):
            return Reply(status=503, body=b'{"detail": "down"}')
        return Reply(body=b"{}")

    with LocalServer(answer) as remote:
        fast = Retries(attempts=3, backoff=0.01)
        with Client(remote.url, "key", retries=fast) as api:
            started = time.monotonic()
            api.request("POST", "/limited")  # a 429 did nothing: even a POST is retried
            assert time.monotonic() - started >= 0.2
            api.request("POST", "/busy")  # so did a 409 that says when to come back
            with pytest.raises(ServerError):
                api.request("GET", "/broken-get")
            with pytest.raises(ServerError):
                api.request("POST", "/broken-post")
            with pytest.raises(ServerError):
                api.request("POST", "/broken-keyed", headers={"idempotency-key": "k"})
        paths = [request.path for request in remote.received]
        assert paths.count("/limited") == 2
        assert paths.count("/busy") == 2
        assert paths.count("/broken-get") == 3
        assert paths.count("/broken-post") == 1  # not safe to repeat
        assert paths.count("/broken-keyed") == 3
        with Client(remote.url, "key", retries=Retries(attempts=1)) as api:
            with pytest.raises(RateLimited, match="slow down") as limited:
                api.request("GET", "/always-limited")
            assert limited.value.retry_after is None


def test_an_unreachable_server_is_one_clear_error() -> None:
    api = Client("http://127.0.0.1:9", "key", retries=Retries(attempts=1))
    with api, pytest.raises(ConnectionFailed, match=r"127\.0\.0\.1:9"):
        api.streams.list()


def test_batches_stay_under_the_cap_and_are_the_same_every_time() -> None:
    events = [{"n": n, "pad": "x" * (n % 50)} for n in range(1_000)]
    first = list(batches("web", events, max_bytes=4_000))
    assert all(len(batch.body) <= 4_000 for batch in first)
    assert sum(batch.count for batch in first) == 1_000
    assert [b.first for b in first] == [
        0,
        *[sum(b.count for b in first[:i]) for i in range(1, len(first))],
    ]
    assert [b.body for b in batches("web", events, max_bytes=4_000)] == [b.body for b in first]
    with pytest.raises(Exception, match="event 0 is"):
        list(batches("web", [{"big": "x" * 5_000}], max_bytes=4_000))


def test_the_event_parser_reads_what_the_spec_says() -> None:
    parser = EventParser()
    lines = [": ping", "retry: 1000", "id: 7", "event: tool_call", 'data: {"a":', "data: 1}", ""]
    got = [parser.feed(line) for line in lines]
    assert got[:-1] == [None] * 6
    event = got[-1]
    assert event is not None
    assert (event.id, event.type, event.data) == ("7", "tool_call", {"a": 1})
    assert parser.feed("data: plain") is None
    last = parser.feed("")
    assert last is not None
    assert (last.id, last.type, last.data) == ("7", "message", "plain")


def test_verify_signature_accepts_ours_and_refuses_the_rest() -> None:
    from openenrich.webhooks.signing import headers, new_secret

    secret = new_secret()
    body = b'{"type":"run.completed"}'
    signed = headers(secret, "msg_1", int(time.time()), body)
    verify_signature(secret, signed, body)
    verify_signature(secret, {k.upper(): v for k, v in signed.items()}, body)
    with pytest.raises(InvalidSignature):
        verify_signature(secret, signed, body + b" ")
    with pytest.raises(InvalidSignature):
        verify_signature(new_secret(), signed, body)
    old = headers(secret, "msg_1", int(time.time()) - 3600, body)
    with pytest.raises(InvalidSignature, match="too far"):
        verify_signature(secret, old, body)


def test_a_stream_that_ends_before_the_run_is_resumed_from_the_last_event() -> None:
    """A server that goes away cleanly mid-run: the client asks again from Last-Event-ID."""
    first = (
        b'id: 1\nevent: tool_call\ndata: {}\n\nid: 2\nevent: answer.delta\ndata: {"text": "a"}\n\n'
    )
    rest = b"id: 3\nevent: run.completed\ndata: {}\n\n"
    statuses = iter(["running", "completed"])

    def answer(n: int, request: Any) -> Reply:
        if request.path.endswith("/events"):
            body = rest if request.headers.get("last-event-id") == "2" else first
            return Reply(body=body, headers={"content-type": "text/event-stream"})
        return Reply(body=b'{"status": "%s"}' % next(statuses).encode())

    with LocalServer(answer) as remote, Client(remote.url, "key") as api:
        events = list(api.runs.events("run_1"))
        asked = [(r.path, r.headers.get("last-event-id")) for r in remote.received]
    assert [(e.id, e.type) for e in events] == [
        ("1", "tool_call"),
        ("2", "answer.delta"),
        ("3", "run.completed"),
    ]
    assert asked == [
        ("/api/v1/runs/run_1/events", None),
        ("/api/v1/runs/run_1", None),
        ("/api/v1/runs/run_1/events", "2"),
        ("/api/v1/runs/run_1", None),
    ]


def test_leads_upload_in_chunks_and_export_by_cursor(
    api: Client, server: LiveServer, key: str
) -> None:
    pipeline = api.leads.create_pipeline("Cookbook")["pipeline_id"]
    leads = [{"email": f"person{n}@example.com", "first_name": f"P{n}"} for n in range(2_500)]
    chunks: list[int] = []
    result = api.leads.upload(
        pipeline, leads, max_rows=400, on_chunk=lambda a: chunks.append(a["received"])
    )
    assert (result.received, result.created, result.skipped, result.failed) == (2_500, 2_500, 0, 0)
    assert result.chunks == len(chunks) == 7
    again = api.leads.upload(pipeline, leads[:10])  # deduplicated by email
    assert (again.created, again.skipped) == (0, 10)
    exported = list(api.leads.export(pipeline, page_size=1_000))
    assert len(exported) == 2_500
    assert {row["lead"]["lead_email"] for row in exported} == {lead["email"] for lead in leads}
    assert any(p["pipeline_id"] == pipeline for p in api.leads.pipelines())
    csv_text = b"".join(api.leads.export_file(pipeline, "csv")).decode()
    assert len(csv_text.strip().splitlines()) == 2_501

    async def upload_async() -> int:
        async with AsyncClient(server.url, key) as client:
            other = (await client.leads.create_pipeline("Async"))["pipeline_id"]
            fresh = [{"email": f"async{n}@example.com"} for n in range(900)]
            done = await client.leads.upload(other, fresh, max_rows=100)
            rows = [row async for row in client.leads.export(other, page_size=250)]
            assert done.created == len(rows) == 900
            return done.chunks

    assert asyncio.run(upload_async()) == 9

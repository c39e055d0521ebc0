"""Per-key token buckets, in one process and shared by several through the database."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from helpers.processes import ServeProcess
from helpers.server import LiveServer
from helpers.tenants import Tenants, bearer
from openenrich.app import create_app
from openenrich.config import Settings
from openenrich.db import Database
from openenrich.streams.stats import seconds_until_next_month
from openenrich.tenancy.ratelimit import DatabaseRateLimiter, MemoryRateLimiter, RateLimiter, decide


def send_at(
    client: httpx.Client, key: str, per_second: float, seconds: float
) -> tuple[list[httpx.Response], float]:
    """Requests paced at `per_second`, and the seconds they actually took."""
    responses = []
    start = time.monotonic()
    for n in range(int(per_second * seconds)):
        delay = start + n / per_second - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        responses.append(client.get("/api/auth/me", headers=bearer(key)))
    return responses, time.monotonic() - start


@pytest.mark.parametrize("backend", ["memory", "database"])
def test_ten_requests_a_second_over_a_five_per_second_plan_get_429(
    settings: Settings, tenants: Tenants, backend: str
) -> None:
    tenants.plan("tight", requests_per_second=5.0)
    tenants.set_plan("acme", "tight")
    key = tenants.key("acme")
    app = create_app(settings.model_copy(update={"rate_limit_backend": backend}))
    with LiveServer(app) as live, httpx.Client(base_url=live.url) as client:
        responses, elapsed = send_at(client, key, per_second=10, seconds=2)

    allowed = [r for r in responses if r.status_code == 200]
    limited = [r for r in responses if r.status_code == 429]
    assert len(allowed) + len(limited) == len(responses) == 20
    # A full bucket of 5, then 5 a second: about 15 of the 20 get through in 2 s.
    assert 5 <= len(allowed) <= 5 + 5 * elapsed + 1
    assert len(limited) >= 3
    refused = limited[0]
    assert refused.json() == {"detail": "Rate limit exceeded"}
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["X-RateLimit-Limit"] == "5"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert int(refused.headers["X-RateLimit-Reset"]) >= 1
    assert allowed[0].headers["X-RateLimit-Limit"] == "5"
    assert int(allowed[0].headers["X-RateLimit-Remaining"]) == 4


def test_unlimited_plan_sends_no_rate_limit_headers(client: httpx.Client, tenants: Tenants) -> None:
    response = client.get("/api/auth/me", headers=bearer(tenants.key()))
    assert response.status_code == 200
    assert "X-RateLimit-Limit" not in response.headers


def test_buckets_are_per_key(settings: Settings, tenants: Tenants) -> None:
    tenants.plan("one", requests_per_second=1.0)
    tenants.set_plan("acme", "one")
    first, second = tenants.key("acme"), tenants.key("acme")
    with LiveServer(create_app(settings)) as live, httpx.Client(base_url=live.url) as client:
        assert client.get("/api/auth/me", headers=bearer(first)).status_code == 200
        assert client.get("/api/auth/me", headers=bearer(first)).status_code == 429
        assert client.get("/api/auth/me", headers=bearer(second)).status_code == 200


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["memory", "database"])
async def test_bucket_refills_at_its_rate(settings: Settings, kind: str) -> None:
    database = Database.from_settings(settings)
    limiter: RateLimiter = (
        MemoryRateLimiter() if kind == "memory" else DatabaseRateLimiter(database)
    )
    # The counts allow for the time the takes themselves took (20 tokens a second come
    # back meanwhile), so a slow machine moves the bounds instead of failing them.
    try:
        started = time.monotonic()
        decisions = [await limiter.take("k", rate=20.0) for _ in range(25)]
        first = sum(d.allowed for d in decisions)
        # A full bucket of 20, and no more than came back while the 25 were taken.
        assert 20 <= first <= 20 + 20 * (time.monotonic() - started) + 1
        await asyncio.sleep(0.25)  # 5 tokens come back
        later = [await limiter.take("k", rate=20.0) for _ in range(8)]
        second = sum(d.allowed for d in later)
        assert second >= 4  # the 5, less a fraction
        # Never more than the bucket and what its rate brought back since the start.
        assert first + second <= 20 + 20 * (time.monotonic() - started) + 1
    finally:
        await database.dispose()


def test_decision_arithmetic() -> None:
    refused = decide(tokens=0.25, allowed=False, rate=0.5, capacity=1.0)
    assert (refused.retry_after, refused.reset_after, refused.remaining) == (2, 2, 0)
    allowed = decide(tokens=3.0, allowed=True, rate=5.0, capacity=5.0)
    assert allowed.headers() == {
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "3",
        "X-RateLimit-Reset": "1",
    }


@pytest.mark.subprocess
def test_limit_holds_across_two_server_processes(
    settings: Settings, tenants: Tenants, tmp_path: Path
) -> None:
    """Two `serve` processes on one database draw from one bucket per key."""
    tenants.plan("tight", requests_per_second=5.0)
    tenants.set_plan("acme", "tight")
    key = tenants.key("acme")
    # SQLite would default to per-process buckets; sharing is what is under test.
    env = {"OPENENRICH_RATE_LIMIT_BACKEND": "database"}
    url = str(settings.database_url)
    with (
        ServeProcess(tmp_path / "a", database_url=url, env=env) as first,
        ServeProcess(tmp_path / "b", database_url=url, env=env) as second,
        httpx.Client() as client,
    ):
        started = time.monotonic()
        statuses = []
        for n in range(30):
            base = first.url if n % 2 == 0 else second.url
            statuses.append(client.get(f"{base}/api/auth/me", headers=bearer(key)).status_code)
        elapsed = time.monotonic() - started

    allowed = statuses.count(200)
    assert statuses.count(429) == 30 - allowed
    # One shared bucket: 5 at once plus 5 a second. Two private buckets would allow ~10 more.
    assert allowed <= 5 + 5 * elapsed + 1, (allowed, elapsed)
    assert statuses.count(429) > 0


def _seconds_to_next_month() -> float:
    now = datetime.now(UTC)
    first = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
    return (first - now).total_seconds()


@pytest.mark.parametrize("route", ["/ingest", "/v1/streams/ingest"])
def test_the_monthly_event_quota_429_says_when_the_next_month_starts(
    client: httpx.Client, tenants: Tenants, route: str
) -> None:
    tenants.plan("tiny", events_per_month=2, requests_per_second=100.0)
    tenants.set_plan("acme", "tiny")
    headers = bearer(tenants.key("acme"))
    assert client.post("/streams", headers=headers, json={"stream_id": "s"}).status_code == 201
    if route == "/ingest":
        send = {"json": {"stream_id": "s", "data": [{"n": 1}, {"n": 2}, {"n": 3}]}}
        body = {"error": "Monthly event limit exceeded"}
    else:
        headers = {**headers, "X-Stream-Id": "s"}
        envelope = {"timestamp": "2026-01-01T00:00:00Z", "source": "t", "event": {"n": 1}}
        send = {"json": [envelope] * 3}
        body = {"error": "rate_limited", "detail": "Monthly event limit exceeded"}
    refused = client.post(route, headers=headers, **send)  # type: ignore[arg-type]
    assert refused.status_code == 429
    assert refused.json() == body
    expected = _seconds_to_next_month()
    assert expected - 5 <= int(refused.headers["Retry-After"]) <= expected + 5
    assert refused.headers["X-RateLimit-Limit"] == "100"
    assert "X-RateLimit-Remaining" in refused.headers


@pytest.mark.parametrize(
    ("moment", "seconds"),
    [
        (datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC), 1),
        (datetime(2026, 12, 31, 23, 0, tzinfo=UTC), 3600),  # into January of the next year
        (datetime(2026, 2, 1, 0, 0, tzinfo=UTC), 28 * 86_400),
        (datetime(2026, 3, 31, 23, 59, 59, 500_000, tzinfo=UTC), 1),  # never 0
    ],
)
def test_seconds_until_next_month(moment: datetime, seconds: int) -> None:
    assert seconds_until_next_month(moment) == seconds


def test_every_response_to_a_key_with_a_bucket_carries_the_rate_limit_headers(
    settings: Settings, tenants: Tenants
) -> None:
    tenants.plan("metered", requests_per_second=1000.0)
    tenants.set_plan("acme", "metered")
    admin, reader = bearer(tenants.key("acme")), bearer(tenants.key("acme", role="read"))
    with LiveServer(create_app(settings)) as live, httpx.Client(base_url=live.url) as client:
        run = client.post("/api/v1/runs", headers=admin, json={"message": "PAN ABCDE1234F"})
        with client.stream(
            "GET", f"/api/v1/runs/{run.json()['id']}/events", headers=admin
        ) as events:
            pass
        responses = {
            "201 a route's own response": client.post(
                "/streams", headers=admin, json={"stream_id": "s"}
            ),
            "200 a route's own response": client.get("/streams", headers=admin),
            "202 verification run": run,
            "200 event stream": events,
            "400 bad body": client.post("/streams", headers=admin, json={"stream_id": 5}),
            "403 read-only key": client.post("/streams", headers=reader, json={"stream_id": "t"}),
            "404 no such stream": client.delete("/streams/nope", headers=admin),
            "404 no such run": client.get("/api/v1/runs/run_nope", headers=admin),
            "422 verification runs": client.post("/api/v1/runs", headers=admin, json={}),
        }
    for name, response in responses.items():
        assert name.split()[0] == str(response.status_code), (name, response.text)
        assert response.headers.get("X-RateLimit-Limit") == "1000", name
        assert int(response.headers["X-RateLimit-Remaining"]) > 900, name
        assert response.headers["X-RateLimit-Reset"] in ("0", "1"), name

"""API keys: format, storage, both headers, the one 401, roles, tenants."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from helpers.tenants import Tenants, bearer
from openenrich.cli import app as cli
from openenrich.config import Settings
from openenrich.db import Database
from openenrich.tenancy.models import ApiKey

UNAUTHORIZED = {"detail": "Invalid, revoked, or expired API key"}


def test_a_key_works_with_both_headers(client: httpx.Client, tenants: Tenants) -> None:
    key = tenants.key("acme", role="member")
    for headers in (bearer(key), {"X-API-Key": key}, {"authorization": f"bearer {key}"}):
        response = client.get("/api/auth/me", headers=headers)
        assert response.status_code == 200, headers
        assert response.json() == {
            "organization": "acme",
            "environment": "live",
            "role": "member",
            "key_prefix": key[:16],
            "plan": "unlimited",
        }


def test_key_format_and_storage(tenants: Tenants) -> None:
    live = tenants.key("acme")
    test = tenants.key("acme", environment="test")
    assert re.fullmatch(r"sk_live_[A-Za-z0-9]{40}", live)
    assert re.fullmatch(r"sk_test_[A-Za-z0-9]{40}", test)

    async def stored(session):  # type: ignore[no-untyped-def]
        keys = list(await session.scalars(select(ApiKey)))
        dump = [str(row) for row in (await session.execute(text("SELECT * FROM api_keys"))).all()]
        return keys, dump

    keys, dump = tenants.run(stored)
    by_prefix = {key.prefix: key for key in keys}
    assert by_prefix[live[:16]].key_hash == hashlib.sha256(live.encode()).hexdigest()
    assert by_prefix[test[:16]].environment == "test"
    # The plaintext is nowhere in the table, only its first 16 characters.
    assert not any(live in row or live[16:] in row for row in dump)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer not-a-key"},
        {"X-API-Key": "sk_live_short"},
        {"X-API-Key": "sk_live_" + "A" * 40},  # well formed, unknown
        {"X-API-Key": "sk_prod_" + "A" * 40},
    ],
)
def test_missing_malformed_and_unknown_keys_get_the_same_401(
    client: httpx.Client, headers: dict[str, str]
) -> None:
    response = client.get("/api/auth/me", headers=headers)
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


def test_revoked_key_is_refused_on_the_next_request(client: httpx.Client, tenants: Tenants) -> None:
    admin = tenants.key("acme")
    victim = tenants.key("acme", role="member")
    assert client.get("/api/auth/me", headers=bearer(victim)).status_code == 200

    revoked = client.delete(f"/api/auth/api-keys/{victim[:16]}", headers=bearer(admin))
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None

    response = client.get("/api/auth/me", headers=bearer(victim))
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


def test_revoking_from_the_cli_takes_effect_on_a_running_server(
    client: httpx.Client, tenants: Tenants, settings: Settings
) -> None:
    key = tenants.key("acme", role="member")
    assert client.get("/api/auth/me", headers=bearer(key)).status_code == 200
    result = CliRunner().invoke(
        cli, ["keys", "revoke", key[:16], "--database-url", str(settings.database_url)]
    )
    assert result.exit_code == 0, result.output
    assert client.get("/api/auth/me", headers=bearer(key)).status_code == 401


def test_expired_key_gets_the_same_401(client: httpx.Client, tenants: Tenants) -> None:
    expired = tenants.key("acme", expires_in=timedelta(seconds=-1))
    response = client.get("/api/auth/me", headers=bearer(expired))
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
    fresh = tenants.key("acme", expires_in=timedelta(days=1))
    assert client.get("/api/auth/me", headers=bearer(fresh)).status_code == 200


def test_last_used_at_follows_successful_requests(client: httpx.Client, tenants: Tenants) -> None:
    admin = tenants.key("acme")
    member = tenants.key("acme", role="member")

    def last_used() -> str | None:
        listing = client.get("/api/auth/api-keys", headers=bearer(admin)).json()["api_keys"]
        return next(k["last_used_at"] for k in listing if k["prefix"] == member[:16])

    assert last_used() is None
    client.get("/api/auth/me", headers=bearer(member))
    first = last_used()
    assert first is not None
    time.sleep(1.1)  # the column has one-second resolution
    client.get("/api/auth/me", headers=bearer(member))
    assert last_used() > first  # type: ignore[operator]


def test_read_keys_may_only_read(client: httpx.Client, tenants: Tenants) -> None:
    reader = tenants.key("acme", role="read")
    assert client.get("/api/auth/me", headers=bearer(reader)).status_code == 200
    write = client.post("/api/auth/api-keys", headers=bearer(reader), json={"name": "x"})
    assert write.status_code == 403
    assert write.json() == {"detail": "This API key is read-only"}


def test_only_admins_manage_keys(client: httpx.Client, tenants: Tenants) -> None:
    member = tenants.key("acme", role="member")
    for method, path in [
        ("GET", "/api/auth/api-keys"),
        ("POST", "/api/auth/api-keys"),
        ("DELETE", "/api/auth/api-keys/sk_live_abcdefgh"),
    ]:
        response = client.request(method, path, headers=bearer(member), json={})
        assert response.status_code == 403, path
        assert response.json() == {"detail": "This action needs an admin API key"}


def test_key_management_over_http(client: httpx.Client, tenants: Tenants) -> None:
    admin = tenants.key("acme")
    created = client.post(
        "/api/auth/api-keys",
        headers=bearer(admin),
        json={"name": "ci", "role": "read", "expires_in_days": 30},
    )
    assert created.status_code == 201
    body = created.json()
    assert body["key"].startswith("sk_live_")
    assert body["prefix"] == body["key"][:16]
    assert (body["name"], body["role"], body["environment"]) == ("ci", "read", "live")
    assert body["expires_at"] is not None

    listing = client.get("/api/auth/api-keys", headers=bearer(admin)).json()["api_keys"]
    assert {k["prefix"] for k in listing} == {admin[:16], body["prefix"]}
    assert all("key" not in k and "key_hash" not in k for k in listing)
    assert client.get("/api/auth/me", headers=bearer(body["key"])).json()["role"] == "read"


def test_another_tenants_key_is_not_found(client: httpx.Client, tenants: Tenants) -> None:
    acme_admin = tenants.key("acme")
    acme_member = tenants.key("acme", role="member")
    globex_admin = tenants.key("globex")

    stolen = client.delete(f"/api/auth/api-keys/{acme_member[:16]}", headers=bearer(globex_admin))
    assert stolen.status_code == 404
    assert stolen.json() == {"detail": f"API key '{acme_member[:16]}' not found"}
    listing = client.get("/api/auth/api-keys", headers=bearer(globex_admin)).json()["api_keys"]
    assert [k["prefix"] for k in listing] == [globex_admin[:16]]
    # The key still works: nothing was revoked across the tenant boundary.
    assert client.get("/api/auth/me", headers=bearer(acme_member)).status_code == 200
    assert client.get("/api/auth/api-keys", headers=bearer(acme_admin)).status_code == 200


def test_live_and_test_environments_are_separate_tenants(
    client: httpx.Client, tenants: Tenants
) -> None:
    live_admin = tenants.key("acme")
    test_admin = tenants.key("acme", environment="test")
    created = client.post("/api/auth/api-keys", headers=bearer(test_admin), json={}).json()
    assert created["key"].startswith("sk_test_")
    assert client.get("/api/auth/me", headers=bearer(test_admin)).json()["environment"] == "test"
    test_listing = client.get("/api/auth/api-keys", headers=bearer(test_admin)).json()["api_keys"]
    assert live_admin[:16] not in {k["prefix"] for k in test_listing}
    response = client.delete(f"/api/auth/api-keys/{live_admin[:16]}", headers=bearer(test_admin))
    assert response.status_code == 404


def test_many_concurrent_requests_on_a_tiny_pool(settings: Settings, tenants: Tenants) -> None:
    """Authentication takes one pooled connection at a time, so a pool smaller than the
    number of requests in flight slows them down but never deadlocks them."""
    import asyncio

    from helpers.server import LiveServer
    from openenrich.app import create_app

    tenants.plan("limited", requests_per_second=10_000.0)
    tenants.set_plan("acme", "limited")
    key = tenants.key("acme", role="member")
    tiny = settings.model_copy(update={"db_pool_size": 1, "rate_limit_backend": "database"})

    async def burst(url: str) -> list[int]:
        async with httpx.AsyncClient(base_url=url, timeout=20) as http:
            responses = await asyncio.gather(
                *(http.get("/api/auth/me", headers=bearer(key)) for _ in range(40))
            )
        return [r.status_code for r in responses]

    with LiveServer(create_app(tiny)) as live:
        assert asyncio.run(burst(live.url)) == [200] * 40


def test_a_plan_change_reaches_a_warm_key_cache(client: httpx.Client, tenants: Tenants) -> None:
    key = tenants.key("acme", role="member")
    assert "x-ratelimit-limit" not in client.get("/api/auth/me", headers=bearer(key)).headers
    tenants.plan("tight", requests_per_second=5)
    tenants.set_plan("acme", "tight")
    assert client.get("/api/auth/me", headers=bearer(key)).headers["x-ratelimit-limit"] == "5"


def test_the_tenancy_marker_moves_with_keys_orgs_and_plans_only(tenants: Tenants) -> None:
    """What keeps the key cache warm: runs, events and `last_used_at` writes leave the
    marker alone; anything a principal is made of moves it."""
    key = tenants.key("acme", role="member")
    database = Database.from_settings(tenants.settings)

    def marker() -> int | None:
        return database.tenancy_marker()

    def write(sql: str) -> None:
        async def work(session: AsyncSession) -> None:
            await session.execute(text(sql), {"prefix": key[:16]})

        tenants.run(work)

    try:
        if database.dialect != "sqlite":
            assert marker() is None  # no cheap marker: nothing is cached
            return
        before = marker()
        write("UPDATE api_keys SET last_used_at = CURRENT_TIMESTAMP WHERE prefix = :prefix")
        write("UPDATE api_keys SET name = 'renamed' WHERE prefix = :prefix")
        assert marker() == before
        changes = [
            "UPDATE api_keys SET revoked_at = CURRENT_TIMESTAMP WHERE prefix = :prefix",
            "UPDATE api_keys SET role = 'read' WHERE prefix = :prefix",
            "DELETE FROM api_keys WHERE prefix = :prefix",
            "UPDATE plans SET requests_per_second = 3 WHERE name = 'unlimited'",
            "UPDATE organizations SET name = 'acme2' WHERE name = 'acme'",
        ]
        for sql in changes:
            seen = marker()
            write(sql)
            assert marker() != seen, sql
        seen = marker()
        tenants.key("globex")  # a new organisation and key
        assert marker() != seen
    finally:
        asyncio.run(database.dispose())

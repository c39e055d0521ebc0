"""/destinations over HTTP: create, read, change, delete; secrets kept and masked; the
SSRF guard at save time; roles and tenants."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from helpers.server import LiveServer
from helpers.tenants import Tenants, bearer
from openenrich.app import create_app
from openenrich.config import Settings
from streams.destinations_helpers import delivery_settings


@pytest.fixture
def api(settings: Settings) -> Iterator[httpx.Client]:
    with (
        LiveServer(create_app(delivery_settings(settings))) as live,
        httpx.Client(base_url=live.url, timeout=30) as client,
    ):
        yield client


HTTP = {"destination_id": "hooks", "type": "http", "config": {"url": "http://127.0.0.1:9/in"}}
ELASTIC = {
    "destination_id": "search",
    "type": "elasticsearch",
    "config": {"url": "http://127.0.0.1:9200", "index": "events", "api_key": "es-key-123456789"},
    "batching": {"max_events": 500, "max_bytes": 1048576, "max_seconds": 2},
}


def test_create_list_get_update_delete(api: httpx.Client, tenants: Tenants) -> None:
    key = bearer(tenants.key("acme"))
    created = api.post("/destinations", headers=key, json=HTTP)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["signing_secret"].startswith("whsec_")  # shown once, here
    assert body["config"]["signing_secret"] == "****" + body["signing_secret"][-4:]
    assert body["batching"] == {"max_events": 1000, "max_bytes": 5242880, "max_seconds": 0.0}
    assert body["delivery"]["pending_batches"] == 0

    search = api.post("/destinations", headers=key, json=ELASTIC).json()
    assert search["config"] == {
        "url": "http://127.0.0.1:9200",
        "index": "events",
        "api_key": "****6789",
        "username": None,
    }
    assert search["signing_secret"] is None

    listed = api.get("/destinations", headers=key).json()["destinations"]
    assert [d["destination_id"] for d in listed] == ["lake", "hooks", "search"]
    assert listed[0] == {
        "destination_id": "lake",
        "type": "lake",
        "builtin": True,
        "config": {},
        "batching": None,
        "delivery": None,
        "created_at": None,
        "updated_at": None,
    }
    # The shown config given back as it is keeps the signing secret (it cannot be set).
    shown_http = body["config"]
    same = api.put("/destinations/hooks", headers=key, json={"config": shown_http})
    assert same.status_code == 200, same.text
    assert same.json()["config"]["signing_secret"] == shown_http["signing_secret"]
    forged = api.put(
        "/destinations/hooks",
        headers=key,
        json={"config": {**shown_http, "signing_secret": "whsec_bm90IG1pbmU="}},
    )
    assert forged.status_code == 400
    one = api.get("/destinations/hooks", headers=key).json()
    assert "signing_secret" not in one
    assert one["config"]["signing_secret"].startswith("****")

    # The config given back as shown (masked) keeps the stored secret; a new one replaces it.
    shown = api.get("/destinations/search", headers=key).json()["config"]
    kept = api.put(
        "/destinations/search", headers=key, json={"config": {**shown, "index": "events-2"}}
    )
    assert kept.status_code == 200, kept.text
    assert kept.json()["config"]["api_key"] == "****6789"
    assert kept.json()["config"]["index"] == "events-2"
    changed = api.put(
        "/destinations/search",
        headers=key,
        json={"config": {**shown, "api_key": "another-key-abcd"}, "batching": {"max_events": 7}},
    ).json()
    assert changed["config"]["api_key"] == "****abcd"
    assert changed["batching"]["max_events"] == 7

    deleted = api.delete("/destinations/search", headers=key)
    assert deleted.json() == {"destination_id": "search", "deleted": True}
    assert api.get("/destinations/search", headers=key).status_code == 404


def test_secrets_are_stored_sealed(api: httpx.Client, tenants: Tenants, settings: Settings) -> None:
    key = bearer(tenants.key("acme"))
    api.post("/destinations", headers=key, json=ELASTIC)

    async def stored(session: AsyncSession) -> list[tuple[object, ...]]:
        rows = await session.execute(text("SELECT config, sealed_secrets FROM destinations"))
        return [tuple(row) for row in rows]

    [(config, sealed)] = tenants.run(stored)
    assert "es-key-123456789" not in str(config)
    assert "es-key-123456789" not in str(sealed)
    assert sealed


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"type": "http", "config": {"url": "http://127.0.0.1:9"}}, "destination_id: is required"),
        ({**HTTP, "destination_id": "a b"}, "destination_id: letters, digits, _ and - only"),
        ({**HTTP, "destination_id": "lake"}, "'lake' is the built-in destination"),
        ({**HTTP, "type": "ftp"}, "type: unknown destination type 'ftp'; known: elasticsearch"),
        ({**HTTP, "config": {}}, "config.url: is required"),
        ({**HTTP, "config": {"url": "http://x", "verb": "PUT"}}, "config.verb: Extra inputs"),
        (
            {**HTTP, "config": {"url": "http://127.0.0.1:9", "signing_secret": "whsec_x"}},
            "config.signing_secret: is generated by the server",
        ),
        (
            {"destination_id": "s", "type": "syslog", "config": {"host": "h", "port": 0}},
            "config.port: Input should be greater than or equal to 1",
        ),
        (
            {"destination_id": "s", "type": "s3", "config": {"bucket": "Bad!"}},
            "config.bucket: String should match pattern",
        ),
        ({**HTTP, "batching": {"max_events": 0}}, "batching.max_events: Input should be greater"),
        ({**HTTP, "extra": 1}, "extra: Extra inputs are not permitted"),
        (
            {**HTTP, "config": {"url": "http://127.0.0.1:9", "headers": {"a b": "c"}}},
            "config.headers: Value error, 'a b' is not a valid header name and value",
        ),
        (
            {**HTTP, "config": {"url": "http://127.0.0.1:9", "headers": {"Webhook-Id": "x"}}},
            "config.headers: Value error, 'Webhook-Id' is set by the server",
        ),
    ],
)
def test_bad_bodies_are_400s_that_say_why(
    api: httpx.Client, tenants: Tenants, body: dict[str, object], message: str
) -> None:
    response = api.post("/destinations", headers=bearer(tenants.key("acme")), json=body)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


def test_an_id_is_taken_once(api: httpx.Client, tenants: Tenants) -> None:
    key = bearer(tenants.key("acme"))
    assert api.post("/destinations", headers=key, json=HTTP).status_code == 201
    again = api.post("/destinations", headers=key, json=HTTP)
    assert again.status_code == 409
    assert again.json() == {"error": "Destination hooks already exists"}


def test_the_lake_cannot_be_changed(api: httpx.Client, tenants: Tenants) -> None:
    key = bearer(tenants.key("acme"))
    assert api.get("/destinations/lake", headers=key).json()["builtin"] is True
    for response in (
        api.put("/destinations/lake", headers=key, json={"config": {}}),
        api.delete("/destinations/lake", headers=key),
        api.post("/destinations/lake/retry", headers=key),
    ):
        assert response.status_code == 400
        assert "built-in" in response.json()["error"]


def test_roles_and_tenants(api: httpx.Client, tenants: Tenants) -> None:
    admin = bearer(tenants.key("acme"))
    member = bearer(tenants.key("acme", role="member"))
    reader = bearer(tenants.key("acme", role="read"))
    other = bearer(tenants.key("globex"))
    assert api.post("/destinations", headers=member, json=HTTP).status_code == 403
    assert api.post("/destinations", headers=admin, json=HTTP).status_code == 201
    assert api.get("/destinations/hooks", headers=reader).status_code == 200
    assert api.get("/destinations/hooks/batches", headers=reader).status_code == 200
    assert api.delete("/destinations/hooks", headers=reader).status_code == 403
    assert api.put("/destinations/hooks", headers=member, json={}).status_code == 403
    # Another tenant's destination does not exist for it.
    assert api.get("/destinations/hooks", headers=other).status_code == 404
    assert api.delete("/destinations/hooks", headers=other).status_code == 404
    assert api.get("/destinations", headers=other).json()["destinations"][1:] == []
    assert api.post("/destinations", headers=other, json=HTTP).status_code == 201  # its own


def test_private_addresses_are_refused_unless_allowed(settings: Settings, tenants: Tenants) -> None:
    key = bearer(tenants.key("acme"))
    with (
        LiveServer(create_app(settings)) as live,
        httpx.Client(base_url=live.url, timeout=30) as api,
    ):
        for body in (
            {**HTTP, "config": {"url": "https://127.0.0.1/in"}},
            {**HTTP, "config": {"url": "http://example.com/in"}},
            {"destination_id": "s", "type": "syslog", "config": {"host": "169.254.169.254"}},
            {
                "destination_id": "s3",
                "type": "s3",
                "config": {"bucket": "b-1", "endpoint_url": "https://10.0.0.1"},
            },
        ):
            response = api.post("/destinations", headers=key, json=body)
            assert response.status_code == 400, (body, response.text)
        refusal = api.post(
            "/destinations",
            headers=key,
            json={"destination_id": "s", "type": "syslog", "config": {"host": "127.0.0.1"}},
        )
        assert refusal.json() == {
            "error": "config.host: the host 127.0.0.1 resolves to a non-public address"
        }
        insecure = api.post(
            "/destinations", headers=key, json={**HTTP, "config": {"url": "http://example.com"}}
        )
        assert "only https URLs are allowed" in insecure.json()["error"]

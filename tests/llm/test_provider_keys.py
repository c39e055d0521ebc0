"""Provider keys over HTTP (`/v1/settings/api-keys…` and `/api/settings/api-keys…`):
stored encrypted, listed by prefix, per tenant, in each surface's error body."""

from __future__ import annotations

import os
import stat

import httpx
import pytest
from sqlalchemy import create_engine, text

from helpers.server import LiveServer
from helpers.tenants import Tenants
from openenrich.app import create_app
from openenrich.config import Settings

SECRET = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize("base", ["/v1/settings/api-keys", "/api/settings/api-keys"])
def test_store_list_replace_and_delete(
    client: httpx.Client, tenants: Tenants, settings: Settings, base: str
) -> None:
    key = tenants.key("acme", role="member")
    stored = client.put(f"{base}/OPENAI", json={"api_key": SECRET}, headers=auth(key))
    assert stored.status_code == 200, stored.text
    body = stored.json()
    assert body["provider"] == "OPENAI"
    assert body["configured"] is True
    assert body["key_prefix"] == "sk-proj-…"
    assert SECRET not in stored.text

    listed = client.get(base, headers=auth(key)).json()["api_keys"]
    assert [(k["provider"], k["key_prefix"], k["source"]) for k in listed] == [
        ("OPENAI", "sk-proj-…", "tenant")
    ]

    # Case-insensitive names and the Gemini alias.
    assert (
        client.put(
            f"{base}/gemini", json={"api_key": "AIza-123456789012"}, headers=auth(key)
        ).json()["provider"]
        == "GOOGLE"
    )
    # Ollama needs no key. (A private address needs the operator's allow-list: below.)
    compatible = client.put(
        f"{base}/openai_compatible", json={"base_url": "http://8.8.8.8:11434/v1"}, headers=auth(key)
    )
    assert compatible.status_code == 200, compatible.text
    assert compatible.json()["base_url"] == "http://8.8.8.8:11434/v1"

    replaced = client.put(
        f"{base}/OPENAI", json={"api_key": "sk-other-0123456789"}, headers=auth(key)
    )
    assert replaced.json()["key_prefix"] == "sk-oth…"  # a third of a short key at most
    providers = [k["provider"] for k in client.get(base, headers=auth(key)).json()["api_keys"]]
    assert providers == ["GOOGLE", "OPENAI", "OPENAI_COMPATIBLE"]

    deleted = client.delete(f"{base}/openai", headers=auth(key))
    assert deleted.json() == {"provider": "OPENAI", "deleted": True}
    assert client.delete(f"{base}/OPENAI", headers=auth(key)).status_code == 404


def test_keys_are_encrypted_at_rest(
    client: httpx.Client, tenants: Tenants, settings: Settings
) -> None:
    key = tenants.key("acme")
    client.put("/v1/settings/api-keys/ANTHROPIC", json={"api_key": SECRET}, headers=auth(key))
    engine = create_engine(settings.sync_database)
    with engine.connect() as connection:
        (stored,) = connection.execute(text("SELECT encrypted_key FROM provider_keys")).one()
    engine.dispose()
    assert SECRET not in stored
    assert stored.startswith("gAAAA")  # a Fernet token
    secret_file = settings.data_dir / "secret.key"
    assert stat.S_IMODE(os.stat(secret_file).st_mode) == 0o600


def test_tenants_never_see_each_others_keys(client: httpx.Client, tenants: Tenants) -> None:
    mine = tenants.key("acme")
    theirs = tenants.key("globex")
    test_env = tenants.key("acme", environment="test")
    client.put("/v1/settings/api-keys/OPENAI", json={"api_key": SECRET}, headers=auth(mine))
    for other in (theirs, test_env):
        assert client.get("/v1/settings/api-keys", headers=auth(other)).json() == {"api_keys": []}
        assert client.delete("/v1/settings/api-keys/OPENAI", headers=auth(other)).status_code == 404
    assert len(client.get("/v1/settings/api-keys", headers=auth(mine)).json()["api_keys"]) == 1


def test_errors_in_each_surfaces_body(client: httpx.Client, tenants: Tenants) -> None:
    member = tenants.key("acme", role="member")
    reader = tenants.key("acme", role="read")

    unknown = client.put("/v1/settings/api-keys/NOPE", json={"api_key": "x"}, headers=auth(member))
    assert unknown.status_code == 400
    assert unknown.json()["error"].startswith("Unknown provider 'NOPE'. Known providers: ANTHROPIC")
    unknown = client.put("/api/settings/api-keys/NOPE", json={"api_key": "x"}, headers=auth(member))
    assert unknown.status_code == 400
    assert unknown.json()["detail"].startswith("Unknown provider 'NOPE'")

    empty = client.put("/v1/settings/api-keys/OPENAI", json={"api_key": " "}, headers=auth(member))
    assert (empty.status_code, empty.json()) == (400, {"error": "api_key is required"})
    wrong = client.put("/v1/settings/api-keys/OPENAI", json={"api_key": 5}, headers=auth(member))
    assert wrong.status_code == 400
    assert "api_key" in wrong.json()["error"]
    bad_url = client.put(
        "/v1/settings/api-keys/OPENAI",
        json={"api_key": "sk-123456", "base_url": "file:///etc/passwd"},
        headers=auth(member),
    )
    assert bad_url.status_code == 400
    assert bad_url.json()["error"].startswith("base_url:")

    for method in ("GET", "PUT", "DELETE"):
        path = "/v1/settings/api-keys" + ("" if method == "GET" else "/OPENAI")
        refused = client.request(
            method,
            path,
            json={"api_key": "sk-x"} if method == "PUT" else None,
            headers=auth(reader),
        )
        assert refused.status_code == 403, (method, refused.text)
    assert client.get("/v1/settings/api-keys").status_code == 401


def test_enrichment_options(client: httpx.Client, tenants: Tenants) -> None:
    key = tenants.key("acme", role="read")
    options = client.get("/api/enrichment/options", headers={"X-API-Key": key})
    assert options.status_code == 200
    body = options.json()
    by_key = {m["key"]: m for m in body["models"]}
    for composite in (
        "anthropic::claude-sonnet-4-5-20250514",
        "openai::gpt-4o",
        "google::gemini-2.5-pro",
        "deepseek::deepseek-chat",
        "perplexity::sonar-pro",
    ):
        assert composite in by_key
    assert by_key["openai::gpt-4o"] == {
        "key": "openai::gpt-4o",
        "provider": "openai",
        "provider_name": "OpenAI",
        "model": "gpt-4o",
        "configured": False,
    }
    assert {"id": "multi_expertise"}.items() <= body["strategies"][1].items()
    assert {"code": "en", "name": "English"} in body["languages"]

    admin = tenants.key("acme")
    client.put("/api/settings/api-keys/ANTHROPIC", json={"api_key": SECRET}, headers=auth(admin))
    after = {
        m["key"]: m
        for m in client.get("/api/enrichment/options", headers=auth(key)).json()["models"]
    }
    assert after["anthropic::claude-sonnet-4-5-20250514"]["configured"] is True
    assert after["openai::gpt-4o"]["configured"] is False


# Hosts that are not on the public internet, written so that none needs a DNS server:
# address literals, and `localhost` from /etc/hosts.
NOT_PUBLIC = [
    "http://169.254.169.254/latest",  # cloud metadata (link-local)
    "http://127.0.0.1:11434/v1",
    "http://localhost:11434/v1",
    "http://[::1]:8080/v1",
    "http://10.0.0.5/v1",
    "http://192.168.1.20:8000/v1",
    "http://100.64.0.1/v1",  # carrier-grade NAT
    "http://[fd00::1]/v1",  # unique-local
    "http://[fe80::1]/v1",  # link-local
    "http://[::ffff:169.254.169.254]/latest",  # IPv4-mapped
    "http://2130706433/v1",  # 127.0.0.1 as one number
    "http://0.0.0.0:8080/v1",
]


@pytest.mark.parametrize("base", ["/v1/settings/api-keys", "/api/settings/api-keys"])
@pytest.mark.parametrize("url", NOT_PUBLIC)
def test_a_base_url_that_is_not_public_is_refused_when_stored(
    client: httpx.Client, tenants: Tenants, base: str, url: str
) -> None:
    key = tenants.key("acme", role="member")
    for provider in ("OPENAI", "OPENAI_COMPATIBLE", "FIRECRAWL"):
        refused = client.put(
            f"{base}/{provider}", json={"api_key": SECRET, "base_url": url}, headers=auth(key)
        )
        assert refused.status_code == 400, (provider, refused.text)
        message = refused.json()["error" if base.startswith("/v1") else "detail"]
        assert message.startswith("base_url: the host "), message
        assert message.endswith("resolves to a non-public address"), message
    assert client.get(base, headers=auth(key)).json() == {"api_keys": []}  # nothing stored


def test_a_refused_base_url_leaves_the_stored_key_as_it_was(
    client: httpx.Client, tenants: Tenants
) -> None:
    key = tenants.key("acme", role="member")
    public = "https://8.8.8.8/v1"  # stored without being called: no connection is made
    stored = client.put(
        "/v1/settings/api-keys/OPENAI",
        json={"api_key": SECRET, "base_url": public},
        headers=auth(key),
    )
    assert stored.status_code == 200, stored.text
    refused = client.put(
        "/v1/settings/api-keys/OPENAI",
        json={"api_key": "sk-other-0123456789", "base_url": "http://169.254.169.254/latest"},
        headers=auth(key),
    )
    assert refused.status_code == 400
    (listed,) = client.get("/v1/settings/api-keys", headers=auth(key)).json()["api_keys"]
    assert (listed["key_prefix"], listed["base_url"]) == ("sk-proj-…", public)


def test_the_operator_allow_list_and_switch_apply_when_a_base_url_is_stored(
    settings: Settings, tenants: Tenants
) -> None:
    key = auth(tenants.key("acme", role="member"))
    ollama = {"base_url": "http://127.0.0.1:11434/v1"}
    elsewhere = {"base_url": "http://127.0.0.1:8080/v1"}
    allowed = settings.model_copy(update={"allowed_private_hosts": ["127.0.0.1:11434"]})
    with LiveServer(create_app(allowed)) as live, httpx.Client(base_url=live.url) as client:
        path = "/v1/settings/api-keys/OPENAI_COMPATIBLE"
        assert client.put(path, json=ollama, headers=key).status_code == 200
        refused = client.put(path, json=elsewhere, headers=key)
        assert refused.status_code == 400
        assert "non-public" in refused.json()["error"]
    private = settings.model_copy(update={"allow_private_urls": True})
    with LiveServer(create_app(private)) as live, httpx.Client(base_url=live.url) as client:
        assert client.put(path, json=elsewhere, headers=key).status_code == 200
        metadata = {"api_key": SECRET, "base_url": "http://169.254.169.254/latest"}
        assert (
            client.put("/v1/settings/api-keys/OPENAI", json=metadata, headers=key).status_code
            == 200
        )

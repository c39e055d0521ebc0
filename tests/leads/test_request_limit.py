"""The reference's "Requests / token: 600 / minute … Returns 429", on every route of the
surface (`OPENENRICH_LEADS_REQUESTS_PER_MINUTE`, 3 here)."""

from __future__ import annotations

import httpx

from helpers.tenants import Tenants, bearer
from leads.conftest import addresses, serve
from openenrich.config import Settings

UNKNOWN = "0190a000-0000-7000-8000-000000000000"


def test_the_fourth_request_of_a_key_in_a_minute_is_a_429(
    settings: Settings, tenants: Tenants
) -> None:
    key, same_org, other_org = tenants.key("acme"), tenants.key("acme"), tenants.key("globex")
    with (
        serve(settings, leads_requests_per_minute=3) as live,
        httpx.Client(base_url=live.url, timeout=30) as client,
    ):
        # One bucket for the whole surface, one token per request: three routers, and an
        # upload (whose route asks for the caller through its upload slot too).
        created = client.post("/v1/pipelines", headers=bearer(key), json={"pipeline_name": "Q3"})
        pipeline = created.json()["pipeline_id"]
        upload = client.post(
            f"/v1/pipelines/{pipeline}/leads", headers=bearer(key), json=addresses(2)
        )
        missing = client.get(f"/v1/enrichment/jobs/{UNKNOWN}", headers=bearer(key))
        assert [created.status_code, upload.status_code, missing.status_code] == [201, 202, 404]
        refused = client.get("/v1/columns/ai-templates", headers=bearer(key))
        again = client.post(f"/v1/validation/jobs/{UNKNOWN}/cancel", headers=bearer(key))
        # Other keys, of the same organisation or another, have buckets of their own; the
        # key's requests to another surface are not counted here.
        neighbour = client.get(f"/v1/pipelines/{pipeline}", headers=bearer(same_org))
        stranger = client.get("/v1/pipelines", headers=bearer(other_org))
        elsewhere = client.get("/api/v1/usage", headers=bearer(key))
        unauthenticated = client.get("/v1/pipelines")
    assert refused.status_code == 429
    assert refused.json() == {"error": "Rate limit exceeded: 3 requests per minute per API key"}
    # A token comes back every 20 s (3 a minute).
    assert 1 <= int(refused.headers["Retry-After"]) <= 20
    assert refused.headers["X-RateLimit-Limit"] == "3"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert again.status_code == 429  # before the route looks for the job
    assert neighbour.status_code == 200  # a pipeline of its organisation
    assert stranger.status_code == 200
    assert elsewhere.status_code == 200
    assert unauthenticated.status_code == 401  # the key is checked first

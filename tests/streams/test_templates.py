"""Enrichment templates over HTTP: the reference's list, a tenant's own, and their use."""

from __future__ import annotations

from helpers.tenants import Tenants, bearer
from streams.conftest import Lake


def test_get_templates_answers_the_references_body(lake: Lake) -> None:
    response = lake.client.get("/templates", headers=lake.headers)
    assert response.status_code == 200
    by_id = {t["id"]: t for t in response.json()["templates"]}
    clickstream, transaction = by_id["clickstream"], by_id["transaction"]
    assert clickstream["name"] == "clickstream"
    assert clickstream["description"] == (
        "Web and app analytics with session tracking, geo, and domain enrichment"
    )
    # The reference's fields first, then the others the template reads.
    assert clickstream["fields"][:3] == [
        {"name": "url", "type": "string"},
        {"name": "timestamp", "type": "int64"},
        {"name": "user_id", "type": "string"},
    ]
    assert transaction["description"] == "Payment and purchase event enrichment"
    assert transaction["fields"] == [
        {"name": "txn_id", "type": "string"},
        {"name": "txn_amount", "type": "string"},
        {"name": "txn_currency", "type": "string"},
    ]
    assert [e["enricher"] for e in clickstream["enrichers"]] == [
        "url",
        "user_agent",
        "geo_ip",
        "session",
    ]
    outputs = {o["name"]: o["type"] for o in clickstream["outputs"]}
    assert outputs["url_host"] == "string"
    assert outputs["ua_is_bot"] == "boolean"
    assert all(t["builtin"] for t in by_id.values())


def test_an_admin_defines_a_template_a_stream_uses(lake: Lake, tenants: Tenants) -> None:
    body = {
        "id": "pages",
        "description": "Page URLs only",
        "fields": [{"name": "page", "type": "string"}],
        "enrichers": [{"enricher": "url", "options": {"field": "page"}}],
    }
    created = lake.client.post("/templates", headers=lake.headers, json=body)
    assert created.status_code == 201, created.text
    template = created.json()
    assert template["id"] == "pages"
    assert template["builtin"] is False
    assert {"name": "page_host", "type": "string"} in [
        {"name": o["name"], "type": o["type"]} for o in template["outputs"]
    ]
    assert lake.client.post("/templates", headers=lake.headers, json=body).status_code == 409

    assert lake.create("site", template="pages").status_code == 201
    lake.ingest("site", [{"page": "https://www.example.co.uk/a?utm_source=news"}])
    lake.flush("site")
    assert lake.rows("SELECT page_host, page_domain, page_suffix FROM site") == [
        ["www.example.co.uk", "example.co.uk", "co.uk"]
    ]

    # A change is used from the next flush on.
    changed = lake.client.put(
        "/templates/pages",
        headers=lake.headers,
        json={"enrichers": [{"enricher": "url", "options": {"field": "page", "prefix": "p_"}}]},
    )
    assert changed.status_code == 200, changed.text
    lake.ingest("site", [{"page": "https://shop.example.com/b"}])
    lake.flush("site")
    assert lake.rows("SELECT p_host FROM site WHERE p_host IS NOT NULL") == [["shop.example.com"]]

    refused = lake.client.delete("/templates/pages", headers=lake.headers)
    assert refused.status_code == 409
    assert refused.json()["error"] == (
        "Template 'pages' is used by stream(s) site; change them first"
    )
    assert (
        lake.client.put("/streams/site", headers=lake.headers, json={"template": None}).status_code
        == 200
    )
    deleted = lake.client.delete("/templates/pages", headers=lake.headers)
    assert deleted.json() == {"id": "pages", "deleted": True}
    assert lake.client.get("/templates/pages", headers=lake.headers).status_code == 404

    # Another tenant sees only the built-ins; a member key cannot define templates.
    other = bearer(tenants.key("globex"))
    ids = [t["id"] for t in lake.client.get("/templates", headers=other).json()["templates"]]
    assert ids == ["clickstream", "transaction"]
    member = bearer(tenants.key("acme", role="member"))
    assert (
        lake.client.post("/templates", headers=member, json={**body, "id": "x"}).status_code == 403
    )


def test_bad_templates_are_refused_with_the_reason(lake: Lake) -> None:
    def create(body: dict[str, object]) -> str:
        response = lake.client.post("/templates", headers=lake.headers, json=body)
        assert response.status_code in (400, 409), response.text
        return str(response.json()["error"])

    assert create({"enrichers": [{"enricher": "url"}]}) == "id is required"
    assert create({"id": "clickstream", "enrichers": [{"enricher": "url"}]}) == (
        "Template 'clickstream' is built in; choose another id"
    )
    assert create({"id": "t", "enrichers": []}).startswith("enrichers must be a non-empty array")
    assert "enrichers[0]" in create({"id": "t", "enrichers": [{"enricher": "nope"}]})
    assert "enrichers[0]" in create(
        {"id": "t", "enrichers": [{"enricher": "url", "options": {"colour": "red"}}]}
    )
    assert create(
        {"id": "t", "fields": [{"name": "a", "type": "date"}], "enrichers": [{"enricher": "url"}]}
    ).startswith("fields[0].type must be one of")
    builtin = lake.client.put("/templates/clickstream", headers=lake.headers, json={"name": "x"})
    assert builtin.status_code == 400
    assert builtin.json()["error"] == "Template 'clickstream' is built in and cannot be changed"
    assert lake.create("s", template="nope").json()["error"] == "Template 'nope' not found"

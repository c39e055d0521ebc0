"""Columns and templates: the reference's curl examples as written, and what they refuse."""

from __future__ import annotations

import httpx
import pytest

from helpers.tenants import Tenants, bearer
from leads import seed
from leads.conftest import Api, serve
from openenrich.config import Settings


@pytest.fixture
def pipeline_id(leads_settings: Settings, api: Api) -> str:
    return seed.pipeline(
        leads_settings,
        [
            {
                "email": "ada@example.com",
                "first_name": "Ada",
                "company": "Analytical Engines",
                "company_website": "https://analyticalengines.com",
                "custom_fields": {"source": "Apollo", "tier": "A"},
            },
            {"email": "alan@bletchley.test"},
        ],
    ).pipeline_id


def columns(pipeline_id: str) -> str:
    return f"/v1/pipelines/{pipeline_id}/columns"


def test_a_base_column_is_a_lead_field(api: Api, pipeline_id: str) -> None:
    # curl -X POST …/columns -d '{ "type": "base", "key": "industry" }' (no content type)
    response = api.client.post(
        columns(pipeline_id), headers=api.headers, content=b'{ "type": "base", "key": "industry" }'
    )
    column = api.ok(response, 201)
    assert column["pipeline_id"] == pipeline_id
    assert (column["type"], column["key"], column["template_id"], column["field"]) == (
        "base",
        "industry",
        None,
        None,
    )
    assert column["custom_field_key"] is None
    assert column["created_at"].endswith("Z")
    # The same column again is the same column.
    again = api.ok(api.post(columns(pipeline_id), {"type": "base", "key": "industry"}), 200)
    assert again["column_id"] == column["column_id"]
    for key in ("lead_industry", "favourite_colour", None):
        refused = api.post(columns(pipeline_id), {"type": "base", "key": key})
        assert refused.status_code == 400
        assert refused.json()["error"].startswith("key must be a lead field: email, first_name")
    refused = api.post(columns(pipeline_id), {"type": "base", "key": "industry", "field": "x"})
    assert refused.json() == {"error": "field is not used by a base column"}


def test_ai_columns_inline_or_by_template_id(api: Api, pipeline_id: str) -> None:
    inline = api.ok(
        api.post(
            columns(pipeline_id),
            {
                "type": "ai",
                "template": {
                    "name": "Company summary",
                    "prompt_template": "Summarize {{company}} in one sentence.",
                    "model": "gpt-4o-mini",
                    "max_tokens": 200,
                },
            },
        ),
        201,
    )
    assert inline["type"] == "ai"
    assert inline["custom_field_key"] == "Company summary"
    listed = api.ok(api.get("/v1/columns/ai-templates"))
    [template] = listed["data"]
    assert template["ai_column_template_id"] == inline["template_id"]
    assert template["provider"] == "OPENAI"  # found from the model's name
    assert listed["pagination"] == {"limit": 1000, "offset": 0, "total": 1, "has_more": False}

    # curl -X POST …/columns -d '{ "type": "ai", "template_id": "<ai_column_template_id>" }'
    other = api.ai_template(name="Pitch", prompt_template="Write a pitch for {{first_name}}.")
    by_id = api.ok(
        api.post(
            columns(pipeline_id), {"type": "ai", "template_id": other["ai_column_template_id"]}
        ),
        201,
    )
    assert (by_id["template_id"], by_id["custom_field_key"]) == (
        other["ai_column_template_id"],
        "Pitch",
    )
    both = api.post(
        columns(pipeline_id),
        {"type": "ai", "template_id": other["ai_column_template_id"], "template": {}},
    )
    assert both.status_code == 400
    assert api.post(columns(pipeline_id), {"type": "ai"}).status_code == 400
    bad_inline = api.post(columns(pipeline_id), {"type": "ai", "template": {"name": "x"}})
    assert bad_inline.status_code == 400
    assert "template.prompt_template: is required" in bad_inline.json()["error"]


def test_models_are_checked_against_the_catalogue(api: Api) -> None:
    refused = api.post(
        "/v1/columns/ai-templates",
        {"name": "x", "prompt_template": "Hi {{company}}", "model": "gemini-2.0-flash-exp"},
    )
    assert refused.status_code == 400
    assert refused.json()["error"].startswith("Unknown model 'gemini-2.0-flash-exp'")
    assert "gemini-2.0-flash" in refused.json()["allowed_models"]
    for model, provider in [
        ("gemini-2.0-flash", "GOOGLE"),
        ("gemini-2.5-flash", "GOOGLE"),
        ("gpt-4o-mini", "OPENAI"),
        ("sonar-pro", "PERPLEXITY"),
        ("o4-mini", "OPENAI"),
    ]:
        assert api.ai_template(model=model)["provider"] == provider
    multi = api.post(
        "/v1/columns/multi-ai-templates",
        {"name": "P", "output_fields": ["a"], "prompt_template": "x", "model": "gpt-4o-x"},
    )
    assert multi.status_code == 400
    assert multi.json()["error"].startswith("Unknown model 'gpt-4o-x'")


def test_an_endpoint_url_must_pass_the_ssrf_guard(
    leads_settings: Settings, tenants: Tenants, fake: object
) -> None:
    settings = leads_settings.model_copy(
        update={"allowed_private_hosts": [*leads_settings.allowed_private_hosts, "127.0.0.1:7"]}
    )
    with serve(settings) as live, httpx.Client(base_url=live.url) as client:
        api = Api(client, tenants.key("acme"))
        for url, reason in [
            ("http://169.254.169.254/v1", "resolves to a non-public address"),
            ("http://127.0.0.1:9/v1", "resolves to a non-public address"),
            ("http://10.0.0.1/v1", "resolves to a non-public address"),
            ("ftp://models.example/v1", "only http(s) URLs"),
            ("http://user:pw@127.0.0.1:7/v1", "credentials"),
        ]:
            refused = api.post(
                "/v1/columns/ai-templates",
                {"name": "x", "prompt_template": "Hi", "model": "llama3", "endpoint_url": url},
            )
            assert refused.status_code == 400, url
            assert refused.json()["error"].startswith("endpoint_url: ")
            assert reason in refused.json()["error"]
        # A custom OpenAI-compatible deployment the operator allows: any model name.
        custom = api.ai_template(model="llama3.1:8b", endpoint_url="http://127.0.0.1:7/v1/")
        assert custom["provider"] == "OPENAI_COMPATIBLE"
        assert custom["endpoint_url"] == "http://127.0.0.1:7/v1"
        assert custom["model"] == "llama3.1:8b"


def test_multi_ai_templates_and_their_columns(api: Api, pipeline_id: str) -> None:
    # The reference's example, JSON braces in the prompt included.
    created = api.ok(
        api.post(
            "/v1/columns/multi-ai-templates",
            {
                "name": "CompanyProfile",
                "output_fields": ["headquarters_city", "founded_year", "industry"],
                "prompt_template": 'For {{company}}, return JSON: {"headquarters_city":"…",'
                '"founded_year":"…","industry":"…"}',
                "model": "gpt-4o",
                "max_tokens": 300,
            },
        ),
        201,
    )
    multi_ai_id = created["multi_ai_id"]
    assert created["output_fields"] == ["headquarters_city", "founded_year", "industry"]
    column = api.ok(
        api.post(
            columns(pipeline_id),
            {"type": "multi_ai", "template_id": multi_ai_id, "field": "headquarters_city"},
        ),
        201,
    )
    assert column["custom_field_key"] == "CompanyProfile: headquarters_city"
    assert column["field"] == "headquarters_city"

    wrong_field = api.post(
        columns(pipeline_id), {"type": "multi_ai", "template_id": multi_ai_id, "field": "ceo"}
    )
    assert wrong_field.json() == {
        "error": "field must be one of the template's output_fields: "
        "headquarters_city, founded_year, industry"
    }
    inline = api.post(
        columns(pipeline_id),
        {"type": "multi_ai", "template": {"name": "P"}, "field": "headquarters_city"},
    )
    assert inline.status_code == 400
    assert inline.json()["error"].startswith("Inline multi-AI templates aren't supported")
    assert "POST /v1/columns/multi-ai-templates" in inline.json()["error"]
    missing = api.post(columns(pipeline_id), {"type": "multi_ai", "template_id": multi_ai_id})
    assert missing.status_code == 400
    for bad in ([], ["a", "a"], [" "], ["x" * 101]):
        refused = api.post(
            "/v1/columns/multi-ai-templates",
            {"name": "P", "output_fields": bad, "prompt_template": "x", "model": "gpt-4o"},
        )
        assert refused.status_code == 400, bad
        assert refused.json()["error"].startswith("output_fields")
    listed = api.ok(api.get("/v1/columns/multi-ai-templates"))
    assert [t["multi_ai_id"] for t in listed["data"]] == [multi_ai_id]
    # The pipeline's columns, as they were added, each with where its values are.
    api.ok(api.post(columns(pipeline_id), {"type": "base", "key": "industry"}), 201)
    shown = api.ok(api.get(columns(pipeline_id)))["data"]
    assert [(c["type"], c["key"], c["field"], c["custom_field_key"]) for c in shown] == [
        ("multi_ai", None, "headquarters_city", "CompanyProfile: headquarters_city"),
        ("base", "industry", None, None),
    ]
    assert shown[0] == column


def test_firecrawl_templates_and_their_columns(api: Api, pipeline_id: str) -> None:
    created = api.ok(
        api.post(
            "/v1/columns/firecrawl-templates",
            {
                "name": "WebExtract",
                "url_column": "company_website",
                "prompt": "Extract the tagline and main product from this company website.",
                "output_fields": ["tagline", "main_product"],
            },
        ),
        201,
    )
    firecrawl_id = created["firecrawl_id"]
    column = api.ok(
        api.post(
            columns(pipeline_id),
            {"type": "firecrawl", "template_id": firecrawl_id, "field": "tagline"},
        ),
        201,
    )
    # The literal "Firecrawl: ", not the template's name.
    assert column["custom_field_key"] == "Firecrawl: tagline"
    inline = api.post(
        columns(pipeline_id), {"type": "firecrawl", "template": {}, "field": "tagline"}
    )
    assert inline.json()["error"].startswith("Inline Firecrawl templates aren't supported")
    prefixed = api.post(
        "/v1/columns/firecrawl-templates",
        {"name": "W", "url_column": "lead_company_website", "prompt": "x", "output_fields": ["a"]},
    )
    assert prefixed.json() == {
        "error": 'url_column is the lead-field suffix: pass "company_website", '
        'not "lead_company_website"'
    }
    unknown = api.post(
        "/v1/columns/firecrawl-templates",
        {"name": "W", "url_column": "homepage", "prompt": "x", "output_fields": ["a"]},
    )
    assert unknown.status_code == 400
    assert unknown.json()["unknown_fields"] == ["homepage"]
    # A URL kept in a custom field is a url_column too.
    api.ok(
        api.post(
            "/v1/columns/firecrawl-templates",
            {"name": "W", "url_column": "source", "prompt": "x", "output_fields": ["a"]},
        ),
        201,
    )
    assert len(api.ok(api.get("/v1/columns/firecrawl-templates"))["data"]) == 2


def test_placeholders_name_known_fields(
    api: Api, pipeline_id: str, leads_settings: Settings
) -> None:
    refused = api.post(
        "/v1/columns/ai-templates",
        {"name": "x", "prompt_template": "Hi {{compnay}} / {{ tier }}", "model": "gpt-4o-mini"},
    )
    assert refused.status_code == 400
    body = refused.json()
    assert body["error"].startswith("Unknown field {{compnay}} in prompt_template. Known fields: ")
    assert body["unknown_fields"] == ["compnay"]
    assert body["known_fields"][:3] == ["email", "first_name", "last_name"]
    assert {"company", "location", "source", "tier"} <= set(body["known_fields"])
    # Lead fields, email and the custom-field keys of the tenant's leads are known.
    api.ai_template(prompt_template="{{email}} {{ first_name }} at {{company}}, tier {{tier}}")
    # A key the keys table never heard of is still found among the newest leads.
    seed.pipeline(
        leads_settings,
        [{"email": "x@example.com", "custom_fields": {"Employees (LinkedIn)": 40}}],
        remember=False,
    )
    api.ai_template(prompt_template="Size: {{Employees (LinkedIn)}}")
    # Another tenant's keys are not this one's.
    seed.pipeline(
        leads_settings, [{"email": "y@globex.test", "custom_fields": {"secret": 1}}], org="globex"
    )
    assert (
        api.post(
            "/v1/columns/ai-templates",
            {"name": "x", "prompt_template": "{{secret}}", "model": "gpt-4o-mini"},
        ).status_code
        == 400
    )


def test_templates_are_listed_newest_first_page_by_page(api: Api, tenants: Tenants) -> None:
    made = [api.ai_template(name=f"T{n}")["ai_column_template_id"] for n in range(5)]
    first = api.ok(api.get("/v1/columns/ai-templates?limit=2"))
    assert [t["ai_column_template_id"] for t in first["data"]] == made[::-1][:2]
    assert first["pagination"] == {"limit": 2, "offset": 0, "total": 5, "has_more": True}
    last = api.ok(api.get("/v1/columns/ai-templates?limit=2&offset=4"))
    assert [t["ai_column_template_id"] for t in last["data"]] == made[:1]
    assert last["pagination"]["has_more"] is False
    clamped = api.ok(api.get("/v1/columns/ai-templates?limit=999999&offset=0"))
    assert clamped["pagination"]["limit"] == 10_000
    assert api.ok(api.get("/v1/columns/ai-templates?limit=0"))["pagination"]["limit"] == 1
    assert api.get("/v1/columns/ai-templates?offset=-1").status_code == 400
    stranger = api.client.get("/v1/columns/ai-templates", headers=bearer(tenants.key("globex")))
    assert stranger.json()["data"] == []


def test_ids_of_nothing_or_of_another_tenant_are_404(
    api: Api, pipeline_id: str, tenants: Tenants, leads_settings: Settings
) -> None:
    template = api.ai_template()["ai_column_template_id"]
    other = seed.pipeline(leads_settings, [{"email": "z@globex.test"}], org="globex")
    for path_id in (other.pipeline_id, "not-a-uuid", "00000000-0000-7000-8000-000000000000"):
        response = api.post(columns(path_id), {"type": "base", "key": "industry"})
        assert (response.status_code, response.json()) == (404, {"error": "Pipeline not found"})
        listing = api.get(columns(path_id))
        assert (listing.status_code, listing.json()) == (404, {"error": "Pipeline not found"})
    stranger = bearer(tenants.key("globex"))
    theirs = api.client.post(
        columns(other.pipeline_id),
        headers=stranger,
        json={"type": "ai", "template_id": template},
    )
    assert (theirs.status_code, theirs.json()) == (404, {"error": "AI template not found"})
    for kind in ("multi_ai", "firecrawl"):
        missing = api.post(
            columns(pipeline_id), {"type": kind, "template_id": template, "field": "a"}
        )
        assert missing.status_code == 404
        assert missing.json()["error"].endswith("template not found")


@pytest.mark.parametrize(
    "body",
    [
        {"type": "AI"},
        {"type": "unknown"},
        {},
        {"type": 3},
        {"type": "base", "key": 5},
        {"type": "ai", "template": "x"},
        {"type": "base", "key": "industry", "colour": "red"},
        [],
        None,
    ],
)
def test_bad_column_bodies_are_400(api: Api, pipeline_id: str, body: object) -> None:
    response = api.post(columns(pipeline_id), body)
    assert response.status_code == 400, response.text
    assert isinstance(response.json()["error"], str)


def test_read_keys_may_list_but_not_create(api: Api, tenants: Tenants) -> None:
    reader = bearer(tenants.key("acme", role="read"))
    assert api.client.get("/v1/columns/firecrawl-templates", headers=reader).status_code == 200
    refused = api.client.post("/v1/columns/ai-templates", headers=reader, json={})
    assert refused.status_code == 403
    assert api.client.get("/v1/columns/ai-templates").status_code == 401

"""Enrichment jobs over HTTP: the reference's curl examples and body shapes as written,
against the fake LLM provider and a local web site; where the values land; progress."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from fixtures.fake_llm import Answer
from fixtures.site import StaticSite
from helpers.http import LocalServer, Received, Reply
from helpers.tenants import Tenants, bearer
from leads import seed
from leads.conftest import Api, EchoLLM, people, serve
from openenrich.config import Settings


def values(settings: Settings, lead_ids: list[str]) -> list[dict[str, Any]]:
    found = seed.leads(settings, lead_ids)
    return [found[lead_id]["custom_fields"] for lead_id in lead_ids]


def test_ai_column_over_the_whole_pipeline(
    api: Api, leads_settings: Settings, fake: EchoLLM
) -> None:
    seeded = seed.pipeline(leads_settings, people(3, custom_fields={"source": "Apollo"}))
    template = api.ai_template()
    # curl -X POST …/v1/enrichment/start -d '{ "pipeline_id": "…", "enrichment_type":
    # "AI_COLUMN", "ai_template_id": "…" }' (curl's -d: no JSON content type)
    body = {
        "pipeline_id": seeded.pipeline_id,
        "enrichment_type": "AI_COLUMN",
        "ai_template_id": template["ai_column_template_id"],
    }
    response = api.client.post(
        "/v1/enrichment/start", headers=api.headers, content=json.dumps(body).encode()
    )
    job = api.ok(response, 202)
    assert job["enrichment_type"] == "AI_COLUMN"
    assert job["pipeline_id"] == seeded.pipeline_id
    assert job["total_leads"] == 3
    assert job["status"] in ("PENDING", "IN_PROGRESS", "COMPLETED")
    assert job["config"]["name"] == "Company summary"

    progress = api.wait(job["job_id"])
    assert progress == {
        "job_id": job["job_id"],
        "enrichment_type": "AI_COLUMN",
        "status": "COMPLETED",
        "progress_percentage": 100.0,
        "processed_leads": 3,
        "total_leads": 3,
        "failed_leads": 0,
        "completed_lead_ids": seeded.lead_ids[::-1],  # newest first
        "failed_lead_ids": [],
        "lead_errors": {},
        "lead_ids_truncated": False,
    }
    assert values(leads_settings, seeded.lead_ids) == [
        {"source": "Apollo", "Company summary": f"Re: Summarize Company {n} in one sentence."}
        for n in range(3)
    ]
    stored = seed.leads(leads_settings, seeded.lead_ids)
    assert {lead["enrichment_status"] for lead in stored.values()} == {"ENRICHED"}
    assert seed.counters(leads_settings, seeded.pipeline_id) == {
        "total_leads": 3,
        "enriched_leads": 3,
    }
    [request] = fake.requests()[:1]
    assert request["model"] == "gpt-4o-mini"
    assert request["max_completion_tokens"] == 200
    record = api.ok(api.get(f"/v1/enrichment/jobs/{job['job_id']}"))
    assert record["status"] == "COMPLETED"
    assert (record["processed_leads"], record["failed_leads"]) == (3, 0)
    assert record["started_at"] <= record["completed_at"]

    # Enriching the same leads again writes the new values; the counters count leads once.
    again = api.start(body)
    assert api.wait(again["job_id"])["processed_leads"] == 3
    assert seed.counters(leads_settings, seeded.pipeline_id)["enriched_leads"] == 3


def test_the_top_n_most_recent_leads(api: Api, leads_settings: Settings) -> None:
    seeded = seed.pipeline(leads_settings, people(5))
    template = api.ai_template()
    job = api.start(
        {
            "pipeline_id": seeded.pipeline_id,
            "limit": 2,
            "enrichment_type": "AI_COLUMN",
            "ai_template_id": template["ai_column_template_id"],
        }
    )
    assert job["total_leads"] == 2
    progress = api.wait(job["job_id"])
    assert progress["completed_lead_ids"] == [seeded.lead_ids[4], seeded.lead_ids[3]]
    enriched = [bool(fields) for fields in values(leads_settings, seeded.lead_ids)]
    assert enriched == [False, False, False, True, True]
    assert seed.counters(leads_settings, seeded.pipeline_id)["enriched_leads"] == 2


def test_specific_leads(api: Api, leads_settings: Settings, tenants: Tenants) -> None:
    seeded = seed.pipeline(leads_settings, people(4))
    theirs = seed.pipeline(leads_settings, people(1), org="globex")
    template = api.ai_template()
    # curl -X POST …/v1/enrichment/start -d '{ "lead_ids": ["<id1>", "<id2>"], … }'
    chosen = [seeded.lead_ids[0], seeded.lead_ids[2]]
    job = api.start(
        {
            "lead_ids": [*chosen, theirs.lead_ids[0], "not-an-id"],
            "enrichment_type": "AI_COLUMN",
            "ai_template_id": template["ai_column_template_id"],
        }
    )
    assert (job["pipeline_id"], job["total_leads"]) == (None, 2)  # not theirs, not nonsense
    assert sorted(api.wait(job["job_id"])["completed_lead_ids"]) == sorted(chosen)
    enriched = [bool(fields) for fields in values(leads_settings, seeded.lead_ids)]
    assert enriched == [True, False, True, False]
    # The pipeline that holds them counts them, though the job named no pipeline.
    assert seed.counters(leads_settings, seeded.pipeline_id)["enriched_leads"] == 2
    assert values(leads_settings, theirs.lead_ids) == [{}]
    # lead_ids and a pipeline: those of the pipeline's leads.
    within = api.start(
        {
            "pipeline_id": seeded.pipeline_id,
            "lead_ids": [seeded.lead_ids[1], theirs.lead_ids[0]],
            "enrichment_type": "AI_COLUMN",
            "ai_template_id": template["ai_column_template_id"],
        }
    )
    assert within["total_leads"] == 1
    nothing = api.start(
        {
            "lead_ids": [],
            "enrichment_type": "AI_COLUMN",
            "ai_template_id": template["ai_column_template_id"],
        }
    )
    assert nothing["total_leads"] == 0
    done = api.wait(nothing["job_id"])
    assert (done["status"], done["progress_percentage"]) == ("COMPLETED", 100.0)


def test_multi_ai_column(api: Api, leads_settings: Settings, fake: EchoLLM) -> None:
    seeded = seed.pipeline(leads_settings, people(2, custom_fields={"tier": "A"}))
    multi = api.ok(
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
    job = api.start(
        {
            "pipeline_id": seeded.pipeline_id,
            "enrichment_type": "MULTI_AI_COLUMN",
            "multi_ai_template_id": multi["multi_ai_id"],
        }
    )
    assert api.wait(job["job_id"])["processed_leads"] == 2
    for n, fields in enumerate(values(leads_settings, seeded.lead_ids)):
        prompt = (
            f'For Company {n}, return JSON: {{"headquarters_city":"…","founded_year":"…",'
            '"industry":"…"}'
        )
        assert fields == {
            "tier": "A",
            "CompanyProfile: headquarters_city": f"headquarters_city of {prompt}",
            "CompanyProfile: founded_year": f"founded_year of {prompt}",
            "CompanyProfile: industry": f"industry of {prompt}",
        }
    schema = fake.requests()[0]["response_format"]["json_schema"]["schema"]
    assert schema["required"] == ["headquarters_city", "founded_year", "industry"]


def test_firecrawl_extract_reads_each_leads_page(
    api: Api, leads_settings: Settings, fake: EchoLLM, site: StaticSite
) -> None:
    seeded = seed.pipeline(
        leads_settings,
        [
            {"email": "a@acme.test", "company_website": f"{site.url}/article"},
            {"email": "b@tiny.test", "company_website": f"{site.url}/landing"},
            {"email": "c@nowhere.test"},
            {"email": "d@gone.test", "company_website": f"{site.url}/missing"},
        ],
    )
    fake.script(
        Answer(json={"tagline": "Warehouses that move themselves.", "main_product": "Mover"}),
        Answer(json={"tagline": None, "main_product": "tiny things"}),
    )
    api.ok(
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
    job = api.start(
        {
            "pipeline_id": seeded.pipeline_id,
            "enrichment_type": "FIRECRAWL_EXTRACT",
            "firecrawl_extract_config": {
                "url_column": "company_website",
                "prompt": "Extract the tagline and main product.",
                "output_fields": ["tagline", "main_product"],
            },
        }
    )
    assert job["config"]["model"] == "gpt-4o-mini"
    progress = api.wait(job["job_id"])
    errors = progress["lead_errors"]
    assert (progress["processed_leads"], progress["failed_leads"]) == (4, 2), errors
    no_url, gone = seeded.lead_ids[2], seeded.lead_ids[3]
    assert progress["lead_errors"][no_url] == "The lead has no URL in company_website"
    assert "404" in progress["lead_errors"][gone]
    assert sorted(progress["failed_lead_ids"]) == sorted([no_url, gone])
    found = values(leads_settings, seeded.lead_ids)
    # The literal "Firecrawl: " prefix, not the template's name.
    pages = sorted(
        [found[0], found[1]], key=lambda fields: str(fields.get("Firecrawl: main_product"))
    )
    assert pages == [
        {
            "Firecrawl: tagline": "Warehouses that move themselves.",
            "Firecrawl: main_product": "Mover",
        },
        {"Firecrawl: tagline": None, "Firecrawl: main_product": "tiny things"},
    ]
    assert found[2:] == [{}, {}]
    statuses = seed.leads(leads_settings, seeded.lead_ids)
    assert [statuses[i]["enrichment_status"] for i in seeded.lead_ids] == [
        "ENRICHED",
        "ENRICHED",
        "FAILED",
        "FAILED",
    ]
    prompts = fake.prompts()
    assert any("Founded" in p or "founded in 2014" in p for p in prompts)


def test_firecrawl_extract_url_from_a_custom_field(
    api: Api, leads_settings: Settings, fake: EchoLLM, site: StaticSite
) -> None:
    host = site.url.removeprefix("http://")
    seeded = seed.pipeline(
        leads_settings,
        [
            {"email": "a@acme.test", "custom_fields": {"Website (Apollo)": f"{site.url}/article"}},
            {"email": "b@acme.test", "custom_fields": {"Website (Apollo)": "mailto:x@y.z"}},
            # A bare host is taken as https: the site speaks http, so this one fails.
            {"email": "c@acme.test", "custom_fields": {"Website (Apollo)": f"{host}/article"}},
        ],
    )
    job = api.start(
        {
            "pipeline_id": seeded.pipeline_id,
            "enrichment_type": "FIRECRAWL_EXTRACT",
            "firecrawl_extract_config": {
                "url_column": "Website (Apollo)",
                "prompt": "Extract the tagline.",
                "output_fields": ["tagline"],
            },
        }
    )
    progress = api.wait(job["job_id"])
    assert progress["failed_leads"] == 2
    errors = progress["lead_errors"]
    assert errors[seeded.lead_ids[1]].startswith("Website (Apollo) is not an http(s) URL")
    assert seeded.lead_ids[2] in errors
    [first] = values(leads_settings, seeded.lead_ids[:1])
    assert first["Website (Apollo)"] == f"{site.url}/article"
    assert first["Firecrawl: tagline"].startswith("tagline of Extract the tagline.")
    refused = api.post(
        "/v1/enrichment/start",
        {
            "pipeline_id": seeded.pipeline_id,
            "enrichment_type": "FIRECRAWL_EXTRACT",
            "firecrawl_extract_config": {
                "url_column": "lead_company_website",
                "prompt": "x",
                "output_fields": ["tagline"],
            },
        },
    )
    assert refused.status_code == 400
    assert refused.json()["error"].startswith("url_column is the lead-field suffix")
    for config in (None, {"url_column": "company_website", "prompt": "x", "output_fields": []}):
        refused = api.post(
            "/v1/enrichment/start",
            {
                "pipeline_id": seeded.pipeline_id,
                "enrichment_type": "FIRECRAWL_EXTRACT",
                "firecrawl_extract_config": config,
            },
        )
        assert refused.status_code == 400


def test_firecrawl_extract_through_the_tenants_firecrawl_provider(
    leads_settings: Settings, tenants: Tenants, fake: EchoLLM
) -> None:
    def firecrawl(number: int, received: Received) -> Reply:
        request = json.loads(received.body)
        data = {"json": {"tagline": f"tagline of {request['url']}"}}
        return Reply(200, json.dumps({"success": True, "data": data}).encode())

    with LocalServer(firecrawl) as provider:
        settings = leads_settings.model_copy(update={"allow_private_urls": True})
        with serve(settings) as live, httpx.Client(base_url=live.url) as client:
            tenant = Api(client, tenants.key("acme"))
            tenant.ok(
                tenant.put(
                    "/v1/settings/api-keys/FIRECRAWL",
                    {"api_key": "fc-tenant", "base_url": provider.url},
                )
            )
            seeded = seed.pipeline(
                leads_settings, [{"email": "a@acme.test", "company_website": "acme.example"}]
            )
            job = tenant.start(
                {
                    "pipeline_id": seeded.pipeline_id,
                    "enrichment_type": "FIRECRAWL_EXTRACT",
                    "firecrawl_extract_config": {
                        "url_column": "company_website",
                        "prompt": "Extract the tagline.",
                        "output_fields": ["tagline"],
                    },
                }
            )
            assert tenant.wait(job["job_id"])["processed_leads"] == 1
    assert values(leads_settings, seeded.lead_ids) == [
        {"Firecrawl: tagline": "tagline of https://acme.example"}
    ]
    [call] = provider.received
    assert call.path == "/v1/scrape"
    assert call.headers["authorization"] == "Bearer fc-tenant"
    assert json.loads(call.body)["jsonOptions"]["prompt"] == "Extract the tagline."
    assert fake.received == []  # the provider extracted: no model call of ours


@pytest.mark.parametrize("value", ["ai_column", "Ai_Column", "AI-COLUMN", "SUMMARY", 7, None, []])
def test_an_invalid_enrichment_type(api: Api, leads_settings: Settings, value: object) -> None:
    seeded = seed.pipeline(leads_settings, people(1))
    body: dict[str, object] = {"pipeline_id": seeded.pipeline_id, "ai_template_id": "x"}
    if value is not None:
        body["enrichment_type"] = value
    response = api.post("/v1/enrichment/start", body)
    assert (response.status_code, response.json()) == (400, {"error": "invalid enrichment_type"})


def test_no_provider_key_is_refused_before_any_work(
    settings: Settings, tenants: Tenants, fake: EchoLLM
) -> None:
    """No key of the tenant's and none of the server's: a 400 naming the provider, and no
    job."""
    bare = settings.model_copy(update={"job_poll_seconds": 0.2})
    with serve(bare) as live, httpx.Client(base_url=live.url) as client:
        api = Api(client, tenants.key("acme"))
        seeded = seed.pipeline(settings, people(2))
        for model, provider in [
            ("gpt-4o-mini", "OPENAI"),
            ("gemini-2.5-flash", "GOOGLE"),
            ("sonar", "PERPLEXITY"),
        ]:
            template = api.ai_template(model=model)
            response = api.post(
                "/v1/enrichment/start",
                {
                    "pipeline_id": seeded.pipeline_id,
                    "enrichment_type": "AI_COLUMN",
                    "ai_template_id": template["ai_column_template_id"],
                },
            )
            assert (response.status_code, response.json()) == (
                400,
                {"error": f"No API key found for {provider}"},
            )
        firecrawl = api.post(
            "/v1/enrichment/start",
            {
                "pipeline_id": seeded.pipeline_id,
                "enrichment_type": "FIRECRAWL_EXTRACT",
                "firecrawl_extract_config": {
                    "url_column": "company_website",
                    "prompt": "x",
                    "output_fields": ["a"],
                },
            },
        )
        assert firecrawl.json() == {"error": "No API key found for FIRECRAWL"}
        # Add the key, then retry: it starts.
        api.ok(
            api.put(
                "/v1/settings/api-keys/OPENAI",
                {"api_key": "sk-tenant"},
            )
        )
        template = api.ai_template()
        started = api.post(
            "/v1/enrichment/start",
            {
                "pipeline_id": seeded.pipeline_id,
                "enrichment_type": "AI_COLUMN",
                "ai_template_id": template["ai_column_template_id"],
            },
        )
        assert started.status_code == 202
    assert fake.received == []


def test_bad_start_bodies(api: Api, leads_settings: Settings, tenants: Tenants) -> None:
    seeded = seed.pipeline(leads_settings, people(1))
    theirs = seed.pipeline(leads_settings, people(1), org="globex")
    template = api.ai_template()["ai_column_template_id"]
    ai = {"enrichment_type": "AI_COLUMN", "ai_template_id": template}
    cases: list[tuple[object, int, str]] = [
        (ai, 400, "pipeline_id or lead_ids is required"),
        ({**ai, "pipeline_id": theirs.pipeline_id}, 404, "Pipeline not found"),
        ({**ai, "pipeline_id": "nope"}, 404, "Pipeline not found"),
        (
            {"pipeline_id": seeded.pipeline_id, "enrichment_type": "AI_COLUMN"},
            400,
            "ai_template_id is required for AI_COLUMN",
        ),
        (
            {"pipeline_id": seeded.pipeline_id, "enrichment_type": "MULTI_AI_COLUMN"},
            400,
            "multi_ai_template_id is required for MULTI_AI_COLUMN",
        ),
        (
            {**ai, "pipeline_id": seeded.pipeline_id, "ai_template_id": seeded.pipeline_id},
            404,
            "AI template not found",
        ),
        (
            {
                "pipeline_id": seeded.pipeline_id,
                "enrichment_type": "MULTI_AI_COLUMN",
                "multi_ai_template_id": template,
            },
            404,
            "Multi-AI template not found",
        ),
    ]
    for body, status, error in cases:
        response = api.post("/v1/enrichment/start", body)
        assert (response.status_code, response.json()) == (status, {"error": error}), body
    for body in (
        {**ai, "pipeline_id": seeded.pipeline_id, "limit": 0},
        {**ai, "pipeline_id": seeded.pipeline_id, "limit": "ten"},
        {**ai, "lead_ids": "abc"},
        {**ai, "lead_ids": ["x"] * 10_001},
        {**ai, "pipeline_id": seeded.pipeline_id, "colour": "red"},
        [],
        "x",
    ):
        response = api.post("/v1/enrichment/start", body)
        assert response.status_code == 400, body
        assert isinstance(response.json()["error"], str)


def test_failed_leads_are_reported_per_lead(
    api: Api, leads_settings: Settings, fake: EchoLLM
) -> None:
    seeded = seed.pipeline(leads_settings, people(3))
    fake.script(
        Answer(status=400, error_body={"error": {"message": "context length exceeded"}}),
    )
    settings_limited = api.ai_template()
    job = api.start(
        {
            "pipeline_id": seeded.pipeline_id,
            "limit": 1,
            "enrichment_type": "AI_COLUMN",
            "ai_template_id": settings_limited["ai_column_template_id"],
        }
    )
    progress = api.wait(job["job_id"])
    newest = seeded.lead_ids[-1]
    assert progress["status"] == "COMPLETED"  # a lead's failure is the lead's, not the job's
    assert (progress["processed_leads"], progress["failed_leads"]) == (1, 1)
    assert progress["failed_lead_ids"] == [newest]
    assert progress["lead_errors"][newest].startswith("OpenAI answered 400")
    assert seed.leads(leads_settings, [newest])[newest]["enrichment_status"] == "FAILED"
    assert seed.counters(leads_settings, seeded.pipeline_id)["enriched_leads"] == 0
    # Retried on 429 and 500 as the provider asks; each lead gets its value once.
    fake.script(
        Answer(status=429, headers={"retry-after": "0"}),
        Answer(status=500),
    )
    retried = api.start(
        {
            "pipeline_id": seeded.pipeline_id,
            "limit": 1,
            "enrichment_type": "AI_COLUMN",
            "ai_template_id": settings_limited["ai_column_template_id"],
        }
    )
    assert api.wait(retried["job_id"])["failed_leads"] == 0
    assert seed.leads(leads_settings, [newest])[newest]["enrichment_status"] == "ENRICHED"
    assert seed.counters(leads_settings, seeded.pipeline_id)["enriched_leads"] == 1


def test_cookbook_wait_for_an_enrichment_job_to_finish(
    api: Api, leads_settings: Settings, fake: EchoLLM
) -> None:
    """The cookbook loop: GET …/progress, print "<status>  <processed>/<total>", stop on
    COMPLETED, FAILED or CANCELLED."""
    fake.delay = 0.05
    seeded = seed.pipeline(leads_settings, people(20))
    template = api.ai_template()
    job_id = api.start(
        {
            "pipeline_id": seeded.pipeline_id,
            "enrichment_type": "AI_COLUMN",
            "ai_template_id": template["ai_column_template_id"],
        }
    )["job_id"]
    printed = []
    for _ in range(400):
        resp = api.client.get(f"/v1/enrichment/jobs/{job_id}/progress", headers=api.headers)
        answer = resp.json()
        printed.append(f"{answer['status']}  {answer['processed_leads']}/{answer['total_leads']}")
        if answer["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
            break
        time.sleep(0.05)  # the cookbook sleeps 5 s
    assert printed[-1] == "COMPLETED  20/20"
    counts = [int(line.split()[1].split("/")[0]) for line in printed]
    assert counts == sorted(counts)  # never goes back


def test_jobs_of_nothing_or_of_another_tenant_are_404(
    api: Api, leads_settings: Settings, tenants: Tenants
) -> None:
    seeded = seed.pipeline(leads_settings, people(1))
    template = api.ai_template()
    job = api.start(
        {
            "pipeline_id": seeded.pipeline_id,
            "enrichment_type": "AI_COLUMN",
            "ai_template_id": template["ai_column_template_id"],
        }
    )
    stranger = bearer(tenants.key("globex"))
    for job_id, headers in [
        (job["job_id"], stranger),
        ("not-a-job", api.headers),
        ("00000000-0000-7000-8000-000000000000", api.headers),
    ]:
        for method, path in [
            ("GET", f"/v1/enrichment/jobs/{job_id}"),
            ("GET", f"/v1/enrichment/jobs/{job_id}/progress"),
            ("GET", f"/v1/enrichment/jobs/{job_id}/events"),
            ("POST", f"/v1/enrichment/jobs/{job_id}/cancel"),
        ]:
            response = api.client.request(method, path, headers=headers)
            assert (response.status_code, response.json()) == (
                404,
                {"error": "Enrichment job not found"},
            ), path


def test_a_custom_endpoint_gets_the_tenants_key_never_the_servers(
    leads_settings: Settings, tenants: Tenants, fake: EchoLLM
) -> None:
    with EchoLLM() as custom:
        settings = leads_settings.model_copy(
            update={
                "allowed_private_hosts": [
                    *leads_settings.allowed_private_hosts,
                    f"127.0.0.1:{custom.port}",
                ],
                "provider_openai_compatible_api_key": "sk-server-secret",
                "provider_openai_compatible_base_url": f"{fake.url}/v1",
            }
        )
        with serve(settings) as live, httpx.Client(base_url=live.url) as client:
            api = Api(client, tenants.key("acme"))
            seeded = seed.pipeline(leads_settings, people(2))
            template = api.ai_template(model="llama3.1:8b", endpoint_url=f"{custom.url}/v1")
            body = {
                "pipeline_id": seeded.pipeline_id,
                "enrichment_type": "AI_COLUMN",
                "ai_template_id": template["ai_column_template_id"],
            }
            api.wait(api.start(body)["job_id"])  # no key of the tenant's: none is sent
            api.ok(api.put("/v1/settings/api-keys/OPENAI_COMPATIBLE", {"api_key": "sk-mine"}))
            api.wait(api.start(body)["job_id"])
    sent = [r.headers.get("authorization") for r in custom.received]
    assert sent == [None, None, "Bearer sk-mine", "Bearer sk-mine"]
    assert [r["model"] for r in custom.requests()] == ["llama3.1:8b"] * 4
    assert fake.received == []
    assert values(leads_settings, seeded.lead_ids)[0]["Company summary"].startswith("Re: ")


def test_cookbook_20000_leads_then_enrich_the_freshest_1000(
    api: Api, leads_settings: Settings, fake: EchoLLM
) -> None:
    """The cookbook's "Upload 20,000 leads, then enrich the freshest 1,000" (the leads are
    written by the seed helper here, in five batches of 4,000 as the recipe uploads them)."""
    pipeline_id = None
    lead_ids: list[str] = []
    for offset in range(0, 20_000, 4_000):
        batch = [{"email": f"user{n}@stresstest.example"} for n in range(offset, offset + 4_000)]
        if pipeline_id is None:
            seeded = seed.pipeline(leads_settings, batch)
            pipeline_id = seeded.pipeline_id
        else:
            seeded = seed.more_leads(leads_settings, pipeline_id, batch)
        lead_ids += seeded.lead_ids
    template = api.ai_template(prompt_template="Guess the company of {{email}}.")
    job = api.start(
        {
            "pipeline_id": pipeline_id,
            "limit": 1000,
            "enrichment_type": "AI_COLUMN",
            "ai_template_id": template["ai_column_template_id"],
        }
    )
    assert job["total_leads"] == 1000
    progress = api.wait(job["job_id"], timeout=120)
    assert (progress["status"], progress["processed_leads"], progress["failed_leads"]) == (
        "COMPLETED",
        1000,
        0,
    )
    assert progress["completed_lead_ids"] == lead_ids[::-1][:1000]
    prompts = set(fake.prompts())
    assert prompts == {
        f"Guess the company of user{n}@stresstest.example." for n in range(19_000, 20_000)
    }
    assert seed.counters(leads_settings, pipeline_id) == {
        "total_leads": 20_000,
        "enriched_leads": 1000,
    }

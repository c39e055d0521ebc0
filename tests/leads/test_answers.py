"""The columns, templates and enrichment routes answer what /openapi.json says they do."""

from __future__ import annotations

from typing import Any

import jsonschema

from leads import seed
from leads.conftest import Api, people
from openenrich.config import Settings


class Checked:
    """Calls made with one key, each answer validated against its route's schema."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.spec = api.client.get("/openapi.json").json()
        self.seen: set[tuple[str, str, int]] = set()

    def __call__(self, method: str, path: str, route: str | None = None, **kwargs: Any) -> Any:
        headers = {**self.api.headers, **kwargs.pop("headers", {})}
        response = self.api.client.request(method, path, headers=headers, **kwargs)
        assert 200 <= response.status_code < 300, f"{method} {path}: {response.text}"
        route = route or path.split("?")[0]
        answer = self.spec["paths"][route][method.lower()]["responses"][str(response.status_code)]
        schema = answer["content"]["application/json"]["schema"]
        validator = jsonschema.Draft202012Validator(
            {**schema, "components": self.spec["components"]}
        )
        body = response.json()
        errors = [
            f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
            for error in validator.iter_errors(body)
        ]
        assert errors == [], f"{method} {route} {response.status_code}: {errors}"
        self.seen.add((method, route, response.status_code))
        return body


def test_columns_templates_and_enrichment_answer_as_described(
    api: Api, leads_settings: Settings
) -> None:
    call = Checked(api)
    seeded = seed.pipeline(leads_settings, people(3))
    columns = "/v1/pipelines/{pipeline_id}/columns"
    path = f"/v1/pipelines/{seeded.pipeline_id}/columns"
    call("POST", path, columns, json={"type": "base", "key": "company"})
    call("POST", path, columns, json={"type": "base", "key": "company"})  # 200: it exists
    template = {"name": "S", "prompt_template": "About {{company}}", "model": "gpt-4o-mini"}
    ai = call("POST", path, columns, json={"type": "ai", "template": template})
    call("POST", "/v1/columns/ai-templates", json=template)
    call("GET", "/v1/columns/ai-templates?limit=1")
    multi = call(
        "POST",
        "/v1/columns/multi-ai-templates",
        json={**template, "output_fields": ["city"], "max_tokens": 50},
    )
    call("GET", "/v1/columns/multi-ai-templates")
    call(
        "POST",
        path,
        columns,
        json={"type": "multi_ai", "template_id": multi["multi_ai_id"], "field": "city"},
    )
    firecrawl = call(
        "POST",
        "/v1/columns/firecrawl-templates",
        json={"name": "W", "url_column": "company_website", "prompt": "x", "output_fields": ["a"]},
    )
    call("GET", "/v1/columns/firecrawl-templates")
    call(
        "POST",
        path,
        columns,
        json={"type": "firecrawl", "template_id": firecrawl["firecrawl_id"], "field": "a"},
    )
    body = {
        "pipeline_id": seeded.pipeline_id,
        "enrichment_type": "AI_COLUMN",
        "ai_template_id": ai["template_id"],
    }
    key = {"Idempotency-Key": "answers"}
    job = call("POST", "/v1/enrichment/start", json=body, headers=key)
    call("POST", "/v1/enrichment/start", json=body, headers=key)  # 200: the same job
    job_path = "/v1/enrichment/jobs/{job_id}"
    api.wait(job["job_id"])
    call("GET", f"/v1/enrichment/jobs/{job['job_id']}", job_path)
    call("GET", f"/v1/enrichment/jobs/{job['job_id']}/progress?wait=1", f"{job_path}/progress")
    call("POST", f"/v1/enrichment/jobs/{job['job_id']}/cancel", f"{job_path}/cancel")
    assert {
        ("POST", columns, 200),
        ("POST", columns, 201),
        ("POST", "/v1/enrichment/start", 200),
        ("POST", "/v1/enrichment/start", 202),
    } <= call.seen

"""/openapi.json describes the surface's answers, and the answers are what it says (the
upload and the listing are written by orjson, not by their models: this keeps the two
together)."""

from __future__ import annotations

from typing import Any

import jsonschema

from leads.conftest import Leads, addresses
from openenrich.leads.listing import CSV_HEADER
from openenrich.leads.schemas import LeadOut, PipelineLeadOut


def check(spec: dict[str, Any], route: str, method: str, status: int, body: Any) -> None:
    answer = spec["paths"][route][method]["responses"][str(status)]
    schema = answer["content"]["application/json"]["schema"]
    validator = jsonschema.Draft202012Validator({**schema, "components": spec["components"]})
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
    assert errors == [], f"{method} {route}: {errors}"


def test_answers_match_their_description(leads: Leads) -> None:
    spec = leads.client.get("/openapi.json").json()
    created = leads.create_pipeline("described", pipeline_color="#fff")
    check(spec, "/v1/pipelines", "post", 201, created)
    pipeline = created["pipeline_id"]
    check(spec, "/v1/pipelines", "get", 200, leads.request("GET", "/v1/pipelines").json())
    check(spec, "/v1/pipelines/{pipeline_id}", "get", 200, leads.pipeline(pipeline))
    uploaded = leads.upload(
        pipeline,
        [
            {"email": "ada@example.com", "first_name": "Ada", "custom_fields": {"a": [1]}},
            {"email": "ada@example.com"},
            {"email": "nope"},
            *addresses(3),
        ],
    )
    check(spec, "/v1/pipelines/{pipeline_id}/leads", "post", 202, uploaded)
    page = leads.page(pipeline, limit=2)
    check(spec, "/v1/pipelines/{pipeline_id}/leads", "get", 200, page)
    cursor_page = leads.page(pipeline, after=page["pagination"]["next_cursor"])
    check(spec, "/v1/pipelines/{pipeline_id}/leads", "get", 200, cursor_page)

    # The upload's body is described though the route reads it itself.
    body = spec["paths"]["/v1/pipelines/{pipeline_id}/leads"]["post"]["requestBody"]
    items = body["content"]["application/json"]["schema"]["items"]
    assert items["required"] == ["email"]
    assert items["additionalProperties"] is False


def test_the_models_follow_the_lead_fields() -> None:
    """A field added to LEAD_FIELDS shows in the listing's description and the CSV."""
    row = list(PipelineLeadOut.model_fields)
    lead = list(LeadOut.model_fields)
    assert [*row[:-1], *lead] == list(CSV_HEADER)

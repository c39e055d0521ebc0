"""The reference's Pipelines section, example by example, and what it leaves to us."""

from __future__ import annotations

import re

import pytest

from helpers.tenants import Tenants
from leads.conftest import Leads, addresses

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
STATS = (
    "total_leads",
    "imported_leads",
    "validated_leads",
    "enriched_leads",
    "valid_emails",
    "invalid_emails",
    "risky_emails",
    "unknown_emails",
)
FIELDS = {
    "pipeline_id",
    "pipeline_name",
    "pipeline_description",
    "pipeline_color",
    "pipeline_created_at",
    "pipeline_updated_at",
    *STATS,
}


def test_create_a_pipeline_as_the_reference_does(leads: Leads) -> None:
    # curl -X POST …/v1/pipelines -H "Content-Type: application/json" -d '{…}'
    answer = leads.request(
        "POST",
        "/v1/pipelines",
        headers={"Content-Type": "application/json"},
        content=b"""{
    "pipeline_name": "Q3 outbound",
    "pipeline_description": "SaaS leads from Apollo",
    "pipeline_color": "#8B5CF6"
  }""",
    )
    assert answer.status_code == 201
    pipeline = answer.json()
    assert set(pipeline) == FIELDS
    assert UUID.fullmatch(pipeline["pipeline_id"])
    assert pipeline["pipeline_name"] == "Q3 outbound"
    assert pipeline["pipeline_description"] == "SaaS leads from Apollo"
    assert pipeline["pipeline_color"] == "#8B5CF6"
    assert ISO.fullmatch(pipeline["pipeline_created_at"])
    assert pipeline["pipeline_updated_at"] == pipeline["pipeline_created_at"]
    assert all(pipeline[name] == 0 for name in STATS)


def test_only_the_name_is_required(leads: Leads) -> None:
    # curl's -d sends a form content type; the body is read as JSON all the same.
    answer = leads.request(
        "POST",
        "/v1/pipelines",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        content=b'{"pipeline_name": "Bare"}',
    )
    assert answer.status_code == 201, answer.text
    pipeline = answer.json()
    assert pipeline["pipeline_description"] is None
    assert pipeline["pipeline_color"] is None


def test_list_and_get_show_the_kept_stats(leads: Leads) -> None:
    first = leads.create_pipeline("first")["pipeline_id"]
    second = leads.create_pipeline("second")["pipeline_id"]
    leads.upload(first, addresses(3))
    leads.upload(second, [*addresses(2, start=3), {"email": "user0@stresstest.example"}])

    # curl https://…/v1/pipelines -H "Authorization: Bearer $TOKEN"
    answer = leads.request("GET", "/v1/pipelines")
    assert answer.status_code == 200
    listed = answer.json()
    assert [p["pipeline_name"] for p in listed["data"]] == ["second", "first"]  # newest first
    assert listed["pagination"] == {"limit": 1000, "offset": 0, "total": 2, "has_more": False}
    by_name = {p["pipeline_name"]: p for p in listed["data"]}
    assert by_name["first"]["total_leads"] == by_name["first"]["imported_leads"] == 3
    # user0 is already in the account (in `first`): skipped, not counted again.
    assert by_name["second"]["total_leads"] == by_name["second"]["imported_leads"] == 2
    for pipeline in listed["data"]:
        assert set(pipeline) == FIELDS
        assert all(pipeline[name] == 0 for name in STATS[2:])

    one = leads.pipeline(first)
    assert one == by_name["first"]
    # Adding leads changed the pipeline: its updated_at moved, its created_at did not.
    assert one["pipeline_updated_at"] >= one["pipeline_created_at"]


def test_listing_pipelines_pages(leads: Leads) -> None:
    names = [f"p{n}" for n in range(5)]
    for name in names:
        leads.create_pipeline(name)
    page = leads.request("GET", "/v1/pipelines", params={"limit": 2, "offset": 1}).json()
    assert [p["pipeline_name"] for p in page["data"]] == ["p3", "p2"]
    assert page["pagination"] == {"limit": 2, "offset": 1, "total": 5, "has_more": True}
    clamped = leads.request("GET", "/v1/pipelines", params={"limit": 0}).json()
    assert clamped["pagination"]["limit"] == 1
    negative = leads.request("GET", "/v1/pipelines", params={"offset": -1})
    assert negative.status_code == 400
    assert negative.json() == {"error": "offset must be >= 0"}


@pytest.mark.parametrize(
    "pipeline_id",
    [
        "not-a-uuid",
        "00000000-0000-7000-8000-000000000000",
        "01A24E7D-8B14-767D-919B-21BC6AFB38EC",
        "x" * 300,
    ],
)
def test_an_unknown_pipeline_is_a_404(leads: Leads, pipeline_id: str) -> None:
    for method, path in [
        ("GET", f"/v1/pipelines/{pipeline_id}"),
        ("GET", f"/v1/pipelines/{pipeline_id}/leads"),
        ("GET", f"/v1/pipelines/{pipeline_id}/leads?format=ndjson"),
    ]:
        answer = leads.request(method, path)
        assert answer.status_code == 404, (path, answer.text)
        assert answer.json() == {"error": "Pipeline not found"}
    answer = leads.upload_raw(pipeline_id, addresses(1))
    assert answer.status_code == 404
    assert answer.json() == {"error": "Pipeline not found"}


def test_another_accounts_pipeline_is_a_404_and_ids_are_case_blind(
    leads: Leads, other: Leads, pipeline: str
) -> None:
    leads.upload(pipeline, addresses(2))
    assert other.request("GET", "/v1/pipelines").json()["data"] == []
    for answer in (
        other.request("GET", f"/v1/pipelines/{pipeline}"),
        other.request("GET", f"/v1/pipelines/{pipeline}/leads"),
        other.request("GET", f"/v1/pipelines/{pipeline}/leads?format=csv"),
        other.upload_raw(pipeline, addresses(1, start=50)),
    ):
        assert answer.status_code == 404
        assert answer.json() == {"error": "Pipeline not found"}
    assert leads.pipeline(pipeline)["total_leads"] == 2  # nothing of the other's landed
    assert leads.pipeline(pipeline.upper())["pipeline_id"] == pipeline


def test_test_keys_are_a_tenant_of_their_own(leads: Leads, tenants: Tenants, pipeline: str) -> None:
    test = Leads(leads.client, tenants.key("acme", environment="test"))
    assert test.request("GET", f"/v1/pipelines/{pipeline}").status_code == 404
    assert test.request("GET", "/v1/pipelines").json()["data"] == []


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{}", "pipeline_name: is required"),
        (b'{"pipeline_name": ""}', "pipeline_name is required"),
        (b'{"pipeline_name": "   "}', "pipeline_name is required"),
        (b'{"pipeline_name": 5}', "pipeline_name: Input should be a valid string"),
        (b'{"pipeline_name": null}', "pipeline_name: Input should be a valid string"),
        (b'{"pipeline_name": ["a"]}', "pipeline_name: Input should be a valid string"),
        (
            b'{"pipeline_name": "a", "pipeline_color": 7}',
            "pipeline_color: Input should be a valid string",
        ),
        (
            b'{"pipeline_name": "a", "pipeline_description": {}}',
            "pipeline_description: Input should be a valid string",
        ),
        (b'{"pipeline_name": "a", "color": "#fff"}', "color: Extra inputs are not permitted"),
        (
            b'{"pipeline_name": "' + b"x" * 201 + b'"}',
            "pipeline_name: String should have at most 200 characters",
        ),
        (
            b'{"pipeline_name": "a", "pipeline_color": "' + b"x" * 33 + b'"}',
            "pipeline_color: String should have at most 32 characters",
        ),
        (b"[]", "Request body must be a JSON object"),
        (b"not json", "Request body is not valid JSON"),
        (b'{"pipeline_name": "a\\u0000b"}', None),
    ],
)
def test_bad_pipeline_bodies_are_400s(leads: Leads, body: bytes, error: str | None) -> None:
    answer = leads.request("POST", "/v1/pipelines", content=body)
    assert answer.status_code == 400, answer.text
    message = answer.json()["error"]
    assert set(answer.json()) == {"error"}
    if error is not None:
        assert message.startswith(error), message
    assert leads.request("GET", "/v1/pipelines").json()["data"] == []


def test_keys_are_needed_and_read_keys_only_read(
    leads: Leads, tenants: Tenants, pipeline: str
) -> None:
    for answer in (
        leads.client.get("/v1/pipelines"),
        leads.client.post("/v1/pipelines", json={"pipeline_name": "x"}),
        leads.client.get("/v1/pipelines", headers={"Authorization": "Bearer sk_live_nope"}),
    ):
        assert answer.status_code == 401
        assert answer.json() == {"error": "Invalid, revoked, or expired API key"}
    reader = Leads(leads.client, tenants.key("acme", role="read"))
    assert reader.request("GET", f"/v1/pipelines/{pipeline}").status_code == 200
    assert reader.request("GET", f"/v1/pipelines/{pipeline}/leads").status_code == 200
    for answer in (
        reader.request("POST", "/v1/pipelines", json={"pipeline_name": "x"}),
        reader.upload_raw(pipeline, addresses(1)),
    ):
        assert answer.status_code == 403
        assert answer.json() == {"error": "This API key is read-only"}

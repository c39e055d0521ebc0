"""Following and steering jobs: the classification pause, continue, cancel, and what a
read key may do."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import httpx

from entities.engine.conftest import GPT, Api, Oracle, check_order, record_costs, truth
from fixtures.fake_llm import Answer
from helpers.tenants import Tenants


def test_a_classification_mismatch_pauses_until_continue(
    api: Api, schema_id: str, fake: Oracle, tenants: Tenants
) -> None:
    fake.not_companies = {"Jane Doe"}
    job_id = api.start(
        "/api/enrichment/batch/start",
        {
            "entities": [{"name": "Acme"}, {"name": "Jane Doe"}, {"name": "Globex"}],
            "schema_id": schema_id,
            "models": [GPT],
        },
    )
    job = api.wait_for(job_id, "paused")
    assert job["paused"] == {
        "reason": "classification_mismatch",
        "entity_index": 1,
        "entity_type": "company",
        "detail": "a person",
    }
    assert api.post(f"/api/llm/cancel/{job_id}/x").status_code == 404
    resumed = api.ok(api.post(f"/api/llm/continue/{job_id}"))
    assert resumed["status"] in ("queued", "running", "completed")
    events = api.events(job_id)
    check_order(events)
    types = [event["type"] for event in events]
    assert types.index("classification_mismatch") < types.index("paused") < types.index("resumed")
    assert events[-1]["status"] == "completed"
    assert events[-1]["completed_entities"] == 3
    # Jane Doe was checked once (the continue skips the check), every entity enriched once.
    assert fake.calls["classify"] <= 4
    assert fake.calls["whole:gpt-4o"] == 3
    outputs = [e["result"] for e in events if e["type"] == "model_completed"]
    assert truth({"name": "Jane Doe"}) in outputs
    # Every classification's cost is in a record: the job's total is their sum.
    costs = record_costs(tenants, job_id)
    assert Decimal(str(api.job(job_id)["total_cost"])) == sum(costs, Decimal(0))
    per_call = costs[0] / 2  # Acme's record: its check and its enrichment, alike in tokens
    assert sum(costs, Decimal(0)) == per_call * (3 + fake.calls["classify"])
    # Continue on a job that is not paused: 409 with a clear detail.
    again = api.post(f"/api/llm/continue/{job_id}")
    assert again.status_code == 409
    assert "not paused" in again.json()["detail"]


def test_cancel_a_paused_job_and_a_finished_one(api: Api, schema_id: str, fake: Oracle) -> None:
    fake.not_companies = {"Jane Doe"}
    job_id = api.start(
        "/api/single/enrich/stream",
        {"entity_data": {"name": "Jane Doe"}, "schema_id": schema_id, "models": [GPT]},
    )
    api.wait_for(job_id, "paused")
    cancelled = api.ok(api.post(f"/api/llm/cancel/{job_id}"))
    assert cancelled["status"] == "cancelled"
    events = api.events(job_id)
    check_order(events)
    assert events[-1]["status"] == "cancelled"
    # Idempotent: a finished job is answered as it is, and nothing is added to its log.
    assert api.ok(api.post(f"/api/llm/cancel/{job_id}"))["status"] == "cancelled"
    assert [e["_id"] for e in api.events(job_id)] == [e["_id"] for e in events]
    assert api.post(f"/api/llm/continue/{job_id}").status_code == 409
    assert "whole:gpt-4o" not in fake.calls


def test_cancel_a_running_job_stops_it_at_its_next_commit(
    api: Api, schema_id: str, fake: Oracle
) -> None:
    gate = threading.Event()

    def hold_globex(model: str, prompt: str, request: dict[str, object]) -> Answer | None:
        if "Globex" in prompt:
            gate.wait(20)
            return Answer(status=500)
        return None

    fake.override = hold_globex
    job_id = api.start(
        "/api/enrichment/batch/start",
        {
            "entities": [{"name": "Acme"}, {"name": "Globex"}],
            "schema_id": schema_id,
            "models": [GPT],
            "skip_classification": True,
        },
    )
    # Acme is done; Globex's call is held.
    deadline = time.monotonic() + 20
    while api.ok(api.get("/api/records"))["total"] < 1:
        assert time.monotonic() < deadline, "Acme was never recorded"
        time.sleep(0.05)
    assert api.ok(api.post(f"/api/llm/cancel/{job_id}"))["status"] == "cancelled"
    gate.set()
    events = api.events(job_id)
    check_order(events)
    assert events[-1]["status"] == "cancelled"
    job = api.job(job_id)
    assert job["status"] == "cancelled"
    assert job["completed_entities"] == 1
    assert len(api.ok(api.get("/api/records"))["records"]) == 1


def test_read_keys_read_and_stream_but_do_not_start_cancel_or_continue(
    http: httpx.Client, tenants: Tenants, api: Api, schema_id: str, fake: Oracle
) -> None:
    job_id = api.start(
        "/api/single/enrich/stream",
        {"entity_data": {"name": "Acme"}, "schema_id": schema_id, "models": [GPT]},
    )
    reader = Api(http, tenants.key("acme", role="read"))
    events = reader.events(job_id)
    assert events[-1]["type"] == "completed"
    assert reader.job(job_id)["status"] == "completed"
    records = reader.ok(reader.get("/api/records"))["records"]
    assert len(records) == 1
    assert reader.ok(reader.get(f"/api/records/{records[0]['id']}"))["model"] == GPT
    body = {"entity_data": {"name": "Acme"}, "schema_id": schema_id, "models": [GPT]}
    for path, sent in (
        ("/api/single/enrich/stream", body),
        ("/api/enrichment/batch/start", {"entities": [{"name": "A"}], **body}),
        (f"/api/llm/cancel/{job_id}", None),
        (f"/api/llm/continue/{job_id}", None),
        ("/api/records/batch-delete", {"ids": [records[0]["id"]]}),
    ):
        refused = reader.post(path, sent)
        assert refused.status_code == 403, path
        assert refused.json()["detail"].startswith("Insufficient role"), path
    # Another organisation sees none of it.
    other = Api(http, tenants.key("globex"))
    assert other.get(f"/api/llm/jobs/{job_id}").status_code == 404
    assert other.get(f"/api/llm/stream/{job_id}").status_code == 404
    assert other.post(f"/api/llm/cancel/{job_id}").status_code == 404

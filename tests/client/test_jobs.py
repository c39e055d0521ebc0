"""The client and CLI over the surfaces' jobs, against a real server and the fake LLM
server: entity enrichment (`entities enrich`, events, records, fusion), lead enrichment
and validation jobs, and webhook endpoints."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from helpers.server import LiveServer
from helpers.tenants import Tenants
from leads.conftest import EchoLLM
from openenrich.app import create_app
from openenrich.cli import app
from openenrich.client import AsyncClient, Client, InvalidRequest, NotFound
from openenrich.config import Settings

SCHEMA = {
    "type": "object",
    "properties": {"legal_name": {"type": "string"}, "industry": {"type": "string"}},
    "required": ["legal_name"],
}
MODELS = ["openai::gpt-4o-mini", "openai::gpt-4o"]


@pytest.fixture
def fake() -> Iterator[EchoLLM]:
    with EchoLLM() as server:
        yield server


@pytest.fixture
def server(settings: Settings, fake: EchoLLM) -> Iterator[LiveServer]:
    changed = settings.model_copy(
        update={
            "provider_openai_api_key": "sk-server-openai",
            "provider_openai_base_url": f"{fake.url}/v1",
            "llm_backoff_seconds": 0.01,
            "job_poll_seconds": 0.2,
            "sse_heartbeat_seconds": 0.3,
            "allow_private_urls": True,
        }
    )
    with LiveServer(create_app(changed)) as live:
        yield live


@pytest.fixture
def key(tenants: Tenants) -> str:
    return tenants.key("acme")


@pytest.fixture
def api(server: LiveServer, key: str) -> Iterator[Client]:
    with Client(server.url, key) as client:
        yield client


@pytest.fixture
def schema_id(server: LiveServer, key: str) -> str:
    body = {"name": "Companies", "entity_type": "company", "json_schema": SCHEMA}
    saved = httpx.post(f"{server.url}/api/schema/saved", headers={"X-API-Key": key}, json=body)
    assert saved.status_code == 201, saved.text
    return str(saved.json()["id"])


def test_entities_enrich_prints_each_entity_and_the_cost(
    server: LiveServer, key: str, schema_id: str, tmp_path: Path, api: Client
) -> None:
    file = tmp_path / "companies.ndjson"
    names = ["Acme", "Globex", "Initech"]
    file.write_text("".join(json.dumps({"name": name}) + "\n" for name in names))
    cli = CliRunner(env={"OPENENRICH_URL": server.url, "OPENENRICH_API_KEY": key})
    result = cli.invoke(
        app,
        [
            "entities",
            "enrich",
            str(file),
            "--schema",
            schema_id,
            "--models",
            ",".join(MODELS),
            "--skip-classification",
        ],
    )
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("✓")]
    assert sorted(line.split(":")[0] for line in lines) == [
        "✓ #0 Acme",
        "✓ #1 Globex",
        "✓ #2 Initech",
    ]
    assert all("; fused " in line for line in lines), result.output
    assert re.search(r"^3 of 3 entities enriched, 0 failed; cost 0\.\d{6}$", result.stdout, re.M)

    # What the lines name is there: each entity's two records and the fused one.
    fused = api.entities.records(type="fusion")
    assert fused["total"] == 3
    acme = next(r for r in fused["records"] if r["entity_name"].lower() == "acme")
    record = api.entities.record(acme["id"])
    assert record["fusion"]["legal_name"]["agreed"]
    assert record["models"] == MODELS

    refused = cli.invoke(
        app, ["entities", "enrich", str(file), "--schema", schema_id, "--models", "nope::x"]
    )
    assert refused.exit_code == 1
    assert refused.output.strip().startswith("error: the server refused: Unknown model")
    assert "Traceback" not in refused.output


def test_entity_jobs_records_and_fusion_through_the_client(api: Client, schema_id: str) -> None:
    job_id = api.entities.enrich(
        {"name": "Acme"}, schema_id=schema_id, models=MODELS, skip_classification=True
    )
    kinds = [event.data["type"] for event in api.entities.events(job_id)]
    assert kinds[0] == "started" or "entity_started" in kinds
    assert kinds[-1] == "completed"
    assert kinds.count("model_completed") == 2
    job = api.entities.wait(job_id)
    assert (job["status"], job["completed_entities"]) == ("completed", 1)
    records = api.entities.records(type="enrichment")["records"]
    assert sorted(r["model"] for r in records) == sorted(MODELS)
    fused = api.entities.fuse([r["id"] for r in records])
    assert fused["type"] == "fusion"
    assert fused["structured_output"]["legal_name"].startswith("legal_name of")
    with pytest.raises(NotFound):
        api.entities.record("00000000-0000-7000-8000-000000000000")
    batch = api.entities.enrich_batch(
        [{"name": "Globex"}, {"name": "Initech"}],
        schema_id=schema_id,
        models=MODELS[:1],
        skip_classification=True,
    )
    assert batch["count"] == 2
    assert api.entities.wait(batch["job_id"])["completed_entities"] == 2


def test_lead_jobs_through_the_client(api: Client, fake: EchoLLM) -> None:
    pipeline = api.leads.create_pipeline("Q4")
    api.leads.upload(
        pipeline["pipeline_id"],
        [{"email": "ada@acme.example", "company": "Acme"}, {"email": "bo@initech.example"}],
    )
    template = api.request(
        "POST",
        "/v1/columns/ai-templates",
        json={"name": "Pitch", "prompt_template": "Pitch {{company}}", "model": "gpt-4o-mini"},
    ).json()
    started = api.leads.start_enrichment(
        "AI_COLUMN",
        pipeline_id=pipeline["pipeline_id"],
        ai_template_id=template["ai_column_template_id"],
        idempotency_key="q4-pitch",
    )
    again = api.leads.start_enrichment(
        "AI_COLUMN",
        pipeline_id=pipeline["pipeline_id"],
        ai_template_id=template["ai_column_template_id"],
        idempotency_key="q4-pitch",
    )
    assert again["job_id"] == started["job_id"]
    seen: list[str] = []
    done = api.leads.wait_job(
        "enrichment", started["job_id"], on_progress=lambda p: seen.append(p["status"])
    )
    assert (done["status"], done["processed_leads"], done["failed_leads"]) == ("COMPLETED", 2, 0)
    assert seen[-1] == "COMPLETED"
    assert sorted(fake.prompts()) == ["Pitch ", "Pitch Acme"]
    pitches = {
        row["lead"]["lead_custom_fields"]["Pitch"]
        for row in api.leads.export(pipeline["pipeline_id"])
    }
    assert pitches == {"Re: Pitch", "Re: Pitch Acme"}  # stored trimmed
    with pytest.raises(InvalidRequest, match="ai_template_id is required"):
        api.leads.start_enrichment("AI_COLUMN", pipeline_id=pipeline["pipeline_id"])

    validation = api.leads.start_validation("MAILVERI", lead_ids=[])
    assert validation["service"] == "MAILVERI"


def test_webhook_endpoints_through_the_client(api: Client, server: LiveServer, key: str) -> None:
    made = api.webhooks.create(
        "https://127.0.0.1:9/hook", event_types=["run.completed"], description="ops"
    )
    assert made["secret"].startswith("whsec_")
    assert [w["id"] for w in api.webhooks.list()] == [made["id"]]
    paused = api.webhooks.update(made["id"], is_active=False)
    assert paused["is_active"] is False
    assert api.webhooks.deliveries(made["id"]) == []
    with pytest.raises(InvalidRequest):
        api.webhooks.create("not a url")

    async def from_asyncio() -> list[dict[str, Any]]:
        async with AsyncClient(server.url, key) as client:
            listed = await client.webhooks.list()
            await client.webhooks.delete(made["id"])
            return listed

    assert [w["id"] for w in asyncio.run(from_asyncio())] == [made["id"]]
    assert api.webhooks.list() == []


def test_the_async_client_follows_an_entity_job(
    server: LiveServer, key: str, schema_id: str
) -> None:
    async def main() -> tuple[list[str], dict[str, Any]]:
        async with AsyncClient(server.url, key) as client:
            job_id = await client.entities.enrich(
                {"name": "Acme"}, schema_id=schema_id, models=MODELS, skip_classification=True
            )
            kinds = [event.data["type"] async for event in client.entities.events(job_id)]
            return kinds, await client.entities.wait(job_id)

    kinds, job = asyncio.run(main())
    assert kinds[-1] == "completed"
    assert "fusion_completed" in kinds
    assert job["status"] == "completed"

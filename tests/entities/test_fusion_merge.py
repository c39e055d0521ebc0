"""POST /api/fusion/merge over HTTP: records made in the database (as enrichment jobs make
them), the fake LLM provider as the arbiter, the answer checked against /openapi.json."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import jsonschema
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fixtures.fake_llm import Answer, FakeLLM
from helpers.server import LiveServer
from helpers.tenants import Tenants
from openenrich.app import create_app
from openenrich.config import Settings
from openenrich.entities.models import EntityRecord, EntitySchema, EntitySchemaVersion
from openenrich.ids import new_uuid
from openenrich.tenancy import service

GPT = "openai::gpt-4o"
CLAUDE = "anthropic::claude-sonnet-4-5"
GEMINI = "google::gemini-2.5-pro"
ARBITER = "openai::gpt-4o-mini"
MODERNA = {"name": "Moderna Inc", "country": "US"}
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "legal_name": {"type": "string", "description": "The registered name"},
        "employees": {"type": "integer", "description": "Headcount, latest annual report"},
        "founded": {"type": "string", "format": "date"},
        "website": {"type": "string"},
        "therapeutic_areas": {"type": "array", "items": {"type": "string"}},
        "headquarters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
        },
    },
    "required": ["legal_name"],
}


class Store:
    """Schemas and records written straight to the database, as the surface writes them."""

    def __init__(self, tenants: Tenants) -> None:
        self.tenants = tenants

    def schema(self, org: str = "acme", schema: dict[str, Any] = SCHEMA, version: int = 1) -> str:
        schema_id = new_uuid()

        async def work(session: AsyncSession) -> None:
            organization = await service.ensure_organization(session, org)
            fields = {"name": "Company", "entity_type": "company", "json_schema": schema}
            session.add(
                EntitySchema(
                    id=schema_id,
                    org_id=organization.id,
                    environment="live",
                    version=version,
                    **fields,
                )
            )
            await session.flush()
            for number in range(1, version + 1):
                session.add(
                    EntitySchemaVersion(
                        schema_id=schema_id, version=number, change="created", **fields
                    )
                )

        self.tenants.run(work)
        return schema_id

    def record(
        self,
        schema_id: str,
        model: str,
        output: dict[str, Any],
        *,
        org: str = "acme",
        entity: dict[str, Any] = MODERNA,
        version: int = 1,
        type: str = "enrichment",
    ) -> str:
        record_id = new_uuid()

        async def work(session: AsyncSession) -> None:
            organization = await service.ensure_organization(session, org)
            session.add(
                EntityRecord(
                    id=record_id,
                    org_id=organization.id,
                    environment="live",
                    type=type,
                    entity_data=entity,
                    entity_name=str(entity["name"]).lower(),
                    schema_id=schema_id,
                    schema_version=version,
                    model=model,
                    models=[model],
                    strategy="single_pass",
                    structured_output=output,
                    input_tokens=900,
                    output_tokens=300,
                    cost=Decimal("0.0123"),
                )
            )

        self.tenants.run(work)
        return record_id

    def stored(self, record_id: str) -> EntityRecord:
        async def work(session: AsyncSession) -> EntityRecord:
            row = await session.scalar(select(EntityRecord).where(EntityRecord.id == record_id))
            assert row is not None
            return row

        return self.tenants.run(work)


@pytest.fixture
def fake() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


@pytest.fixture
def client(settings: Settings, fake: FakeLLM) -> Iterator[httpx.Client]:
    """The live app with the server's OpenAI key pointing at the fake."""
    changed = settings.model_copy(
        update={
            "provider_openai_api_key": "sk-server-openai",
            "provider_openai_base_url": f"{fake.url}/v1",
            "llm_backoff_seconds": 0.01,
            "llm_backoff_max_seconds": 0.5,
        }
    )
    with (
        LiveServer(create_app(changed)) as live,
        httpx.Client(base_url=live.url, timeout=30) as http,
    ):
        yield http


@pytest.fixture
def store(tenants: Tenants) -> Store:
    return Store(tenants)


@pytest.fixture
def key(tenants: Tenants) -> dict[str, str]:
    return {"X-API-Key": tenants.key("acme")}


def agreed_on_all_but_employees(store: Store) -> tuple[str, list[str]]:
    """Two models that agree on every field (each in its own notation) but `employees`."""
    schema_id = store.schema()
    gpt = {
        "legal_name": "Moderna, Inc.",
        "employees": 5600,
        "founded": "2010-09-01",
        "website": "https://www.modernatx.com/",
        "therapeutic_areas": ["Infectious diseases", "Oncology"],
        "headquarters": {"city": "Cambridge", "country": "US"},
    }
    claude = {
        "legal_name": "MODERNA,  INC.",
        "employees": "5,800",
        "founded": "2010-09-01T00:00:00Z",
        "website": "modernatx.com",
        "therapeutic_areas": ["oncology", "infectious diseases"],
        "headquarters": {"city": "cambridge", "country": "us"},
    }
    return schema_id, [store.record(schema_id, GPT, gpt), store.record(schema_id, CLAUDE, claude)]


def check_against_openapi(client: httpx.Client, answer: httpx.Response) -> None:
    spec = client.get("/openapi.json").json()
    schema = spec["paths"]["/api/fusion/merge"]["post"]["responses"]["200"]["content"][
        "application/json"
    ]["schema"]
    validator = jsonschema.Draft202012Validator({**schema, "components": spec["components"]})
    assert [error.message for error in validator.iter_errors(answer.json())] == []


def test_only_the_disputed_field_goes_to_the_arbiter(
    client: httpx.Client, fake: FakeLLM, store: Store, key: dict[str, str]
) -> None:
    schema_id, record_ids = agreed_on_all_but_employees(store)
    asked: list[tuple[str, dict[str, Any]]] = []

    def arbiter(model: str, request: dict[str, Any]) -> Answer:
        asked.append((model, request))
        return Answer(json={"employees": 5800}, input_tokens=400, output_tokens=10)

    fake.responder = arbiter
    # The reference's body: the records and the arbitration model.
    answer = client.post(
        "/api/fusion/merge",
        headers=key,
        json={"record_ids": record_ids, "arbitration_model": ARBITER},
    )
    assert answer.status_code == 200, answer.text
    check_against_openapi(client, answer)
    record = answer.json()

    # One call, of the arbiter, about `employees` alone, whose value must be a candidate.
    [(model, request)] = asked
    assert model == "gpt-4o-mini"
    output_schema = request["response_format"]["json_schema"]["schema"]
    assert output_schema == {
        "type": "object",
        "properties": {
            "employees": {
                "type": "integer",
                "enum": [5600, 5800],
                "description": "Headcount, latest annual report",
            }
        },
        "required": ["employees"],
        "additionalProperties": False,
    }
    prompt = request["messages"][-1]["content"]
    assert "employees" in prompt
    assert "Moderna Inc" in prompt  # the entity
    for agreed in ("legal_name", "founded", "website", "therapeutic_areas", "headquarters"):
        assert agreed not in prompt

    assert record["type"] == "fusion"
    assert record["model"] == "fusion"
    assert record["models"] == [GPT, CLAUDE]
    assert record["arbitration_model"] == ARBITER
    assert (record["schema_id"], record["schema_version"]) == (schema_id, 1)
    assert record["entity_data"] == MODERNA
    assert record["strategy"] == "single_pass"
    assert record["structured_output"] == {
        "legal_name": "Moderna, Inc.",
        "employees": 5800,
        "founded": "2010-09-01",
        "website": "https://www.modernatx.com/",
        "therapeutic_areas": ["Infectious diseases", "Oncology"],
        "headquarters": {"city": "Cambridge", "country": "US"},
    }
    assert (record["valid"], record["validation_errors"]) == (True, [])
    fusion = record["fusion"]
    assert list(fusion) == [
        "legal_name",
        "employees",
        "founded",
        "website",
        "therapeutic_areas",
        "headquarters.city",
        "headquarters.country",
    ]
    for name, field in fusion.items():
        if name != "employees":
            assert field["decided_by"] == "majority", name
            assert field["agreed"] == [GPT, CLAUDE]
            assert field["confidence"] == 1.0
    assert fusion["employees"] == {
        "value": 5800,
        "candidates": [
            {"value": 5600, "normalized": 5600, "originals": [5600], "models": [GPT]},
            {"value": 5800, "normalized": 5800, "originals": ["5,800"], "models": [CLAUDE]},
        ],
        "agreed": [CLAUDE],
        "confidence": 0.5,
        "decided_by": "arbiter",
        "tie": False,
    }
    # Its cost and tokens are the arbiter's.
    assert (record["input_tokens"], record["output_tokens"]) == (400, 10)
    assert record["cost"] > 0
    assert record["duration_ms"] >= 0

    stored = store.stored(record["id"])
    assert stored.structured_output == record["structured_output"]
    assert stored.fusion == fusion
    assert stored.cost == Decimal(str(record["cost"]))
    assert stored.job_id is None


def test_an_arbiter_that_invents_a_value_is_asked_again(
    client: httpx.Client, fake: FakeLLM, store: Store, key: dict[str, str]
) -> None:
    _schema_id, record_ids = agreed_on_all_but_employees(store)
    answers = iter([{"employees": 6000}, {"employees": 5600}])
    fake.responder = lambda model, request: Answer(json=next(answers))
    answer = client.post(
        "/api/fusion/merge",
        headers=key,
        json={"record_ids": record_ids, "arbitration_model": ARBITER},
    )
    assert answer.status_code == 200, answer.text
    employees = answer.json()["fusion"]["employees"]
    assert (employees["value"], employees["decided_by"]) == (5600, "arbiter")
    _first, second = fake.requests()
    assert "5600" in second["messages"][-1]["content"]  # the re-ask names the allowed values


def test_without_an_arbiter_the_most_supported_value_wins_and_ties_are_flagged(
    client: httpx.Client, fake: FakeLLM, store: Store, key: dict[str, str]
) -> None:
    schema_id = store.schema()
    outputs = [
        {"legal_name": "Moderna", "employees": 5600, "headquarters": {"city": "Cambridge"}},
        {"legal_name": "Moderna", "employees": 5800, "headquarters": {"city": "Boston"}},
        {"legal_name": "Moderna", "employees": 6000, "headquarters": {"city": "boston"}},
        {"legal_name": "Moderna", "employees": 5700, "headquarters": {"city": "Norwood"}},
    ]
    models = [GPT, CLAUDE, GEMINI, "deepseek::deepseek-chat"]
    record_ids = [store.record(schema_id, m, out) for m, out in zip(models, outputs, strict=True)]

    answer = client.post("/api/fusion/merge", headers=key, json={"record_ids": record_ids})
    assert answer.status_code == 200, answer.text
    record = answer.json()
    assert fake.requests() == []  # nobody asked
    assert record["arbitration_model"] is None
    assert (record["cost"], record["input_tokens"], record["output_tokens"]) == (0, 0, 0)
    fusion = record["fusion"]
    # Four answers, four values: a tie, won by the first model given.
    employees = fusion["employees"]
    assert (employees["value"], employees["decided_by"], employees["tie"]) == (
        5600,
        "plurality",
        True,
    )
    assert employees["confidence"] == 0.25
    # Two of four is no majority, but the most support: no tie.
    city = fusion["headquarters.city"]
    assert (city["value"], city["decided_by"], city["tie"]) == ("Boston", "plurality", False)
    assert city["agreed"] == [CLAUDE, GEMINI]
    assert fusion["legal_name"]["decided_by"] == "majority"
    assert fusion["founded"]["decided_by"] == "none"
    assert record["structured_output"] == {
        "legal_name": "Moderna",
        "employees": 5600,
        "headquarters": {"city": "Boston"},
    }

    # The order of record_ids breaks ties.
    again = client.post("/api/fusion/merge", headers=key, json={"record_ids": record_ids[::-1]})
    assert again.json()["structured_output"]["employees"] == 5700

    # An arbiter with nothing to decide is not called.
    agreed = [store.record(schema_id, m, outputs[0]) for m in (GPT, CLAUDE)]
    body = {"record_ids": agreed, "arbitration_model": ARBITER}
    quiet = client.post("/api/fusion/merge", headers=key, json=body)
    assert quiet.status_code == 200, quiet.text
    assert quiet.json()["arbitration_model"] == ARBITER
    assert quiet.json()["cost"] == 0
    assert fake.requests() == []


def test_what_cannot_be_merged(
    client: httpx.Client, fake: FakeLLM, store: Store, tenants: Tenants, key: dict[str, str]
) -> None:
    schema_id = store.schema()
    output = {"legal_name": "Moderna"}
    mine = [store.record(schema_id, m, output) for m in (GPT, CLAUDE, GEMINI)]
    theirs_schema = store.schema(org="globex")
    theirs = store.record(theirs_schema, GPT, output, org="globex")
    other_entity = store.record(schema_id, GEMINI, output, entity={"name": "Pfizer Inc"})
    # Entity data that differs in case and spacing only is the same entity.
    same_entity = store.record(
        schema_id, GEMINI, output, entity={"name": "moderna  inc", "country": "us"}
    )
    two_versions = store.schema(version=2)
    v1 = store.record(two_versions, GPT, output, version=1)
    v2 = store.record(two_versions, CLAUDE, output, version=2)
    fused = store.record(schema_id, "fusion", output, type="fusion")
    again = store.record(schema_id, GPT, output)

    def merge(body: Any, headers: dict[str, str] = key) -> tuple[int, str]:
        answer = client.post("/api/fusion/merge", headers=headers, json=body)
        detail = answer.json()["detail"]
        assert isinstance(detail, str), answer.text
        return answer.status_code, detail

    unknown = new_uuid()
    assert merge({"record_ids": [mine[0], unknown]}) == (404, f"Record {unknown} not found")
    assert merge({"record_ids": [mine[0], "nonsense"]}) == (404, "Record nonsense not found")
    assert merge({"record_ids": [mine[0], theirs]}) == (404, f"Record {theirs} not found")
    assert merge({"record_ids": [mine[0]]}) == (400, "record_ids needs at least 2 records to merge")
    assert merge({"record_ids": [mine[0]] * 21})[0] == 400
    assert merge({"record_ids": [mine[0], mine[0]]}) == (
        400,
        "record_ids names a record more than once",
    )
    status, detail = merge({"record_ids": [mine[0], other_entity]})
    assert (status, "not of one entity" in detail) == (400, True)
    status, detail = merge({"record_ids": [v1, v2]})
    assert (status, "different schemas" in detail) == (400, True)
    status, detail = merge({"record_ids": [mine[0], fused]})
    assert (status, "only enrichment records merge" in detail) == (400, True)
    status, detail = merge({"record_ids": [mine[0], again]})
    assert (status, detail) == (400, f"Two of the records are by {GPT}: merge different models")
    lost_schema = new_uuid()
    lost = [store.record(lost_schema, m, output) for m in (GPT, CLAUDE)]
    status, detail = merge({"record_ids": lost})
    assert (status, detail) == (404, f"Schema {lost_schema} version 1 no longer exists")
    status, detail = merge({"record_ids": mine[:2], "arbitration_model": "openai::gpt-1"})
    assert status == 400
    assert "gpt-4o-mini" in detail  # names the allowed models
    assert merge({"record_ids": mine[:2], "other": 1})[0] == 400
    assert merge({"record_ids": "x"})[0] == 400
    reader = {"X-API-Key": tenants.key("acme", role="read")}
    assert merge({"record_ids": mine[:2]}, reader)[0] == 403
    assert fake.requests() == []

    ok = client.post("/api/fusion/merge", headers=key, json={"record_ids": [mine[0], same_entity]})
    assert ok.status_code == 200, ok.text
    assert ok.json()["entity_data"] == MODERNA  # the first record's


def test_a_fused_object_the_schema_refuses_is_reported(
    client: httpx.Client, store: Store, key: dict[str, str]
) -> None:
    schema = {
        "type": "object",
        "properties": {"ticker": {"type": "string"}, "isin": {"type": "string"}},
        "maxProperties": 1,
    }
    schema_id = store.schema(schema=schema)
    record_ids = [
        store.record(schema_id, GPT, {"ticker": "MRNA"}),
        store.record(schema_id, CLAUDE, {"isin": "US60770K1079"}),
    ]
    answer = client.post("/api/fusion/merge", headers=key, json={"record_ids": record_ids})
    assert answer.status_code == 200, answer.text
    record = answer.json()
    assert record["structured_output"] == {"ticker": "MRNA", "isin": "US60770K1079"}
    assert record["valid"] is False
    assert record["validation_errors"] == [
        "(root): {'ticker': 'MRNA', 'isin': 'US60770K1079'} has too many properties"
    ]
    assert json.dumps(record["fusion"])  # stored and shown all the same

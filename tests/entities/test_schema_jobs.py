"""The schema jobs over HTTP: POST /api/schema/generate/stream and
POST /api/schema/saved/{id}/prompt/stream, followed on /api/llm/stream/{job_id}, with the
fake LLM answering each request by what it asks."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from entities.conftest import COMPANY_SCHEMA, Api
from fixtures.fake_llm import Answer, FakeLLM
from helpers.server import LiveServer
from helpers.tenants import Tenants
from openenrich.app import create_app
from openenrich.config import Settings
from openenrich.entities.generation import EDIT_SYSTEM, REFINE_SYSTEM
from openenrich.entities.models import EntityJob
from openenrich.llm.models import LlmCall

MODEL = "openai::gpt-4o-mini"
COMPANIES: list[dict[str, Any]] = [
    {
        "name": "Moderna Inc",
        "country": "US",
        "founded": 2010,
        "website": "https://www.modernatx.com",
        "ipo_date": "2018-12-07",
        "employees": 5600,
        "headquarters": {"city": "Cambridge", "state": "MA"},
    },
    {
        "name": "Roche Holding AG",
        "country": "CH",
        "founded": 1896,
        "website": "https://www.roche.com",
        "ipo_date": None,
        "employees": 101000,
        "headquarters": {"city": "Basel"},
    },
    {
        "name": "Pfizer Inc",
        "country": "US",
        "founded": 1849,
        "website": "https://www.pfizer.com",
        "ipo_date": "1942-06-22",
        "revenue_usd": 58.5e9,
        "headquarters": {"city": "New York", "state": "NY"},
    },
]
GROUPS = {
    "name": "company_profile",
    "country": "company_profile",
    "founded": "company_profile",
    "website": "Online Presence",
    "ipo_date": "financials",
    "employees": "company_profile",
    "headquarters": "company_profile",
    "revenue_usd": "financials",
}
FORMATS = {"website": "uri", "ipo_date": "date"}
HEADCOUNT = {
    **COMPANY_SCHEMA,
    "properties": {
        **COMPANY_SCHEMA["properties"],
        "headcount": {"type": ["integer", "null"], "x-expertise": "company_profile"},
    },
}


@pytest.fixture
def client(llm_settings: Settings) -> Iterator[httpx.Client]:
    """The live app, its OpenAI and Anthropic keys pointing at the fake."""
    with (
        LiveServer(create_app(llm_settings)) as live,
        httpx.Client(base_url=live.url, timeout=30) as http,
    ):
        yield http


def system_of(request: dict[str, Any]) -> str:
    """An OpenAI-protocol request's system prompt."""
    return "".join(
        str(message["content"]) for message in request["messages"] if message["role"] == "system"
    )


def prompt_of(request: dict[str, Any]) -> str:
    return str(request["messages"][-1]["content"])


def describing(fake: FakeLLM, groups: dict[str, str] = GROUPS) -> None:
    """The model describes every property a refinement asks about."""

    def respond(model: str, request: dict[str, Any]) -> Answer | None:
        if system_of(request) != REFINE_SYSTEM:
            return None
        asked = request["response_format"]["json_schema"]["schema"]["properties"]
        return Answer(
            json={
                name: {
                    "description": f"The company's {name.replace('_', ' ')}.",
                    "format": FORMATS.get(name),
                    "x-expertise": groups.get(name, "general"),
                }
                for name in asked
            }
        )

    fake.responder = respond


def editing_to(fake: FakeLLM, schema: Any, gate: threading.Event | None = None) -> None:
    """The model answers an AI edit with `schema` (once `gate` is set, when given)."""

    def respond(model: str, request: dict[str, Any]) -> Answer | None:
        if system_of(request) != EDIT_SYSTEM:
            return None
        if gate is not None:
            gate.wait(20)
        return Answer(json={"json_schema": schema})

    fake.responder = respond


def events(api: Api, job_id: str, **headers: str) -> list[tuple[int, dict[str, Any]]]:
    """The job's events, (id, data), read until the stream closes after `completed`."""
    found: list[tuple[int, dict[str, Any]]] = []
    with api.client.stream(
        "GET", f"/api/llm/stream/{job_id}", headers={**api.headers, **headers}
    ) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        seq: int | None = None
        data: dict[str, Any] | None = None
        for line in response.iter_lines():
            if line.startswith("event:"):
                raise AssertionError(f"an event: line on the wire: {line}")
            if line.startswith("id: "):
                seq = int(line[4:])
            elif line.startswith("data: "):
                data = json.loads(line[6:])
            elif line == "" and data is not None:  # the end of an event: both were there
                assert seq is not None
                found.append((seq, data))
                seq, data = None, None
    return found


def types(found: list[tuple[int, dict[str, Any]]]) -> list[str]:
    return [data["type"] for _, data in found]


def of_type(found: list[tuple[int, dict[str, Any]]], type: str) -> dict[str, Any]:
    (data,) = [data for _, data in found if data["type"] == type]
    return data


def start(api: Api, path: str, body: dict[str, Any]) -> str:
    answer = api.ok(api.post(path, body))
    assert set(answer) == {"job_id"}
    job_id: str = answer["job_id"]
    return job_id


def generate(api: Api, **body: Any) -> str:
    return start(api, "/api/schema/generate/stream", {"samples": COMPANIES, **body})


def edit(api: Api, schema_id: str, **body: Any) -> str:
    return start(api, f"/api/schema/saved/{schema_id}/prompt/stream", body)


def validates_all(schema: dict[str, Any], samples: list[dict[str, Any]]) -> None:
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    for sample in samples:
        assert list(validator.iter_errors(sample)) == []


def job_count(tenants: Tenants) -> int:
    async def work(session: AsyncSession) -> int:
        return int(await session.scalar(select(func.count()).select_from(EntityJob)) or 0)

    return tenants.run(work)


def recorded_cost(tenants: Tenants, job_id: str, calls: int) -> Decimal:
    """What the gateway's call records (written every half second) say the job's calls
    cost."""

    async def work(session: AsyncSession) -> list[Decimal]:
        rows = await session.scalars(select(LlmCall.cost_usd).where(LlmCall.job_id == job_id))
        return list(rows)

    deadline = time.monotonic() + 10
    while len(costs := tenants.run(work)) < calls:
        assert time.monotonic() < deadline, f"{len(costs)} calls recorded, not {calls}"
        time.sleep(0.1)
    assert len(costs) == calls
    return sum(costs, Decimal(0))


# -- generation ------------------------------------------------------------------------------


def test_generation_without_a_model_gives_the_inferred_schema(
    api: Api, fake: FakeLLM, tenants: Tenants
) -> None:
    job_id = generate(api)
    found = events(api, job_id)
    assert [seq for seq, _ in found] == list(range(1, len(found) + 1))
    assert types(found) == ["schema_inferred", "refinement_skipped", "completed"]
    inferred = of_type(found, "schema_inferred")
    assert inferred["samples"] == 3
    skipped = of_type(found, "refinement_skipped")
    assert skipped["message"] == (
        "No model was given and OPENENRICH_ENTITIES_DEFAULT_MODEL is not set: the inferred "
        "schema is the result"
    )
    completed = found[-1][1]
    assert completed == {
        "type": "completed",
        "status": "completed",
        "total_entities": 0,
        "completed_entities": 0,
        "failed_entities": 0,
        "total_cost": 0.0,
        "json_schema": inferred["json_schema"],
        "refined": False,
        "model": None,
    }
    schema = completed["json_schema"]
    validates_all(schema, COMPANIES)
    assert set(schema["properties"]) == set(GROUPS)
    assert set(schema["required"]) == {
        "name", "country", "founded", "website", "ipo_date", "headquarters",
    }  # fmt: skip
    assert fake.received == []
    job = api.ok(api.get(f"/api/llm/jobs/{job_id}"))
    assert (job["kind"], job["status"], job["models"], job["total_cost"]) == (
        "schema_generation",
        "completed",
        [],
        0,
    )
    assert api.ok(api.get("/api/schema/saved")) == {"schemas": []}  # not asked to save
    assert job_count(tenants) == 1


def test_generation_with_a_model_describes_groups_and_saves(
    api: Api, fake: FakeLLM, tenants: Tenants
) -> None:
    describing(fake)
    job_id = generate(api, model=MODEL, save=True, name="  Pharma  ", entity_type="Public Company")
    found = events(api, job_id)
    assert types(found) == [
        "schema_inferred", "model_started", "schema_refined", "schema_saved", "completed",
    ]  # fmt: skip
    assert of_type(found, "model_started") == {"type": "model_started", "model": MODEL}
    inferred = of_type(found, "schema_inferred")["json_schema"]
    refined = of_type(found, "schema_refined")
    schema = refined["json_schema"]
    validates_all(schema, COMPANIES)
    properties = schema["properties"]
    assert properties["name"]["description"] == "The company's name."
    assert properties["website"]["format"] == "uri"
    assert properties["ipo_date"]["format"] == "date"
    assert properties["website"]["x-expertise"] == "online_presence"
    assert properties["revenue_usd"]["x-expertise"] == "financials"
    # Descriptions, formats and groups merged; the structure as inferred.
    assert list(properties) == list(inferred["properties"])
    assert schema["required"] == inferred["required"]
    for name, prop in properties.items():
        kept = {k: v for k, v in prop.items() if k not in ("description", "format", "x-expertise")}
        assert kept == inferred["properties"][name]
    assert refined["notes"] == []
    assert refined["model"] == MODEL
    assert (refined["input_tokens"], refined["output_tokens"]) == (100, 20)
    assert refined["cost"] > 0
    saved = of_type(found, "schema_saved")
    assert saved["version"] == 1
    assert (saved["name"], saved["entity_type"]) == ("Pharma", "public company")
    completed = found[-1][1]
    assert completed["type"] == "completed"
    assert completed["status"] == "completed"
    assert completed["json_schema"] == schema
    assert (completed["schema_id"], completed["schema_version"]) == (saved["schema_id"], 1)
    assert (completed["refined"], completed["model"]) == (True, MODEL)
    # The job's total is what its one call cost, as the gateway recorded it too.
    assert completed["total_cost"] == refined["cost"]
    assert Decimal(str(completed["total_cost"])) == recorded_cost(tenants, job_id, 1)
    job = api.ok(api.get(f"/api/llm/jobs/{job_id}"))
    assert (job["status"], job["models"], job["total_cost"]) == (
        "completed",
        [MODEL],
        refined["cost"],
    )
    # The saved schema, readable like any other.
    stored = api.ok(api.get(f"/api/schema/saved/{saved['schema_id']}"))
    assert stored["json_schema"] == schema
    assert (stored["name"], stored["entity_type"], stored["version"]) == (
        "Pharma",
        "public company",
        1,
    )
    assert stored["expertise_groups"] == {
        "company_profile": ["name", "country", "founded", "employees", "headquarters"],
        "online_presence": ["website"],
        "financials": ["ipo_date", "revenue_usd"],
    }
    versions = api.ok(api.get(f"/api/schema/saved/{saved['schema_id']}/versions"))
    assert [(v["version"], v["change"]) for v in versions["versions"]] == [(1, "created")]
    # One request, the samples in its prompt.
    (request,) = fake.requests()
    assert request["model"] == "gpt-4o-mini"
    assert '"Roche Holding AG"' in prompt_of(request)


def test_refinement_that_cannot_be_kept_leaves_the_inferred_schema(api: Api, fake: FakeLLM) -> None:
    # 499 fields, each described at length: the merged schema would be over 256 KB.
    samples = [{f"field_{n}": n for n in range(499)}]

    def respond(model: str, request: dict[str, Any]) -> Answer:
        asked = request["response_format"]["json_schema"]["schema"]["properties"]
        return Answer(
            json={
                name: {"description": "x" * 500, "format": None, "x-expertise": "all"}
                for name in asked
            }
        )

    fake.responder = respond
    job_id = start(api, "/api/schema/generate/stream", {"samples": samples, "model": MODEL})
    found = events(api, job_id)
    assert types(found) == [
        "schema_inferred", "model_started", "refinement_discarded", "completed",
    ]  # fmt: skip
    discarded = of_type(found, "refinement_discarded")
    assert discarded["message"] == (
        "The model's additions were not kept: the inferred schema is the result"
    )
    (note,) = discarded["notes"]
    assert note.startswith("The model's additions were not kept (the inferred schema is): (root): ")
    assert "at most 262,144 (256 KB)" in note
    completed = found[-1][1]
    assert completed["status"] == "completed"
    assert completed["refined"] is False
    assert completed["json_schema"] == of_type(found, "schema_inferred")["json_schema"]
    assert completed["total_cost"] == discarded["cost"] > 0


def test_a_model_that_keeps_failing_fails_the_job(api: Api, fake: FakeLLM) -> None:
    fake.responder = lambda model, request: Answer(status=400, error_body={"error": "refused"})
    job_id = generate(api, model=MODEL, save=True, name="Pharma", entity_type="company")
    found = events(api, job_id)
    assert types(found) == ["schema_inferred", "model_started", "error", "completed"]
    assert of_type(found, "error")["message"].startswith(f"{MODEL}: ")
    completed = found[-1][1]
    assert (completed["status"], completed["total_cost"]) == ("failed", 0.0)
    assert "json_schema" not in completed
    assert api.ok(api.get("/api/schema/saved")) == {"schemas": []}
    job = api.ok(api.get(f"/api/llm/jobs/{job_id}"))
    assert job["status"] == "failed"
    assert job["error"] == of_type(found, "error")["message"]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"samples": []}, "samples must be a non-empty list of JSON objects"),
        ({"samples": [{"name": "x"}, "y"]}, "samples[1] must be a JSON object"),
        ({"samples": [{}, {}]}, "samples have no fields: nothing to infer a schema from"),
        ({"samples": [{"n": 1}] * 51}, "samples: at most 50 (got 51)"),
        (
            {"samples": [{f"f{n}": n for n in range(501)}]},
            "Invalid schema inferred from the samples: properties: 501 in all; at most 500",
        ),
        (
            {"samples": COMPANIES, "save": True, "name": "Pharma"},
            "name and entity_type are required to save the schema (save: true)",
        ),
        (
            {"samples": COMPANIES, "save": True, "name": " ", "entity_type": "company"},
            "name must not be blank",
        ),
        ({"samples": COMPANIES, "model": "google::gemini-2.5-pro"}, "No API key found for GOOGLE"),
    ],
)
def test_generation_refused_before_any_job(
    api: Api, fake: FakeLLM, tenants: Tenants, body: dict[str, Any], detail: str
) -> None:
    answer = api.post("/api/schema/generate/stream", body)
    assert answer.status_code == 400, answer.text
    assert answer.json() == {"detail": detail}
    assert job_count(tenants) == 0
    assert fake.received == []


def test_an_unknown_model_is_refused_naming_the_allowed_ones(api: Api, tenants: Tenants) -> None:
    for path in ("/api/schema/generate/stream", "/api/schema/saved/{id}/prompt/stream"):
        schema = api.create_schema()
        body = {"samples": COMPANIES, "instruction": "Add x", "model": "openai::gpt-9"}
        fields = ("samples", "model") if "generate" in path else ("instruction", "model")
        answer = api.post(path.replace("{id}", schema["id"]), {k: body[k] for k in fields})
        assert answer.status_code == 400, answer.text
        detail = answer.json()["detail"]
        assert detail.startswith("Unknown model 'openai::gpt-9'. Allowed models: ")
        assert "gpt-4o-mini" in detail
    assert job_count(tenants) == 0


def test_the_default_model_refines_when_none_is_given(
    llm_settings: Settings, tenants: Tenants, fake: FakeLLM
) -> None:
    settings = llm_settings.model_copy(update={"entities_default_model": "openai::gpt-4o"})
    describing(fake)
    with (
        LiveServer(create_app(settings)) as live,
        httpx.Client(base_url=live.url, timeout=30) as client,
    ):
        api = Api(client, tenants.key("acme"))
        found = events(api, generate(api))
        assert types(found) == ["schema_inferred", "model_started", "schema_refined", "completed"]
        assert of_type(found, "model_started")["model"] == "openai::gpt-4o"
        completed = found[-1][1]
        assert (completed["status"], completed["refined"]) == ("completed", True)
        assert completed["json_schema"]["properties"]["name"]["description"] == (
            "The company's name."
        )
        # An AI edit takes it too.
        editing_to(fake, HEADCOUNT)
        schema = api.create_schema()
        found = events(api, edit(api, schema["id"], instruction="Add the headcount"))
        assert of_type(found, "model_started")["model"] == "openai::gpt-4o"
        assert found[-1][1]["schema_version"] == 2
    assert [request["model"] for request in fake.requests()] == ["gpt-4o", "gpt-4o"]


# -- AI edits ---------------------------------------------------------------------------------


def test_an_ai_edit_saves_a_new_version(api: Api, fake: FakeLLM, tenants: Tenants) -> None:
    schema = api.create_schema()
    editing_to(fake, HEADCOUNT)
    instruction = "Add the headcount, an integer, in the company_profile group"
    job_id = edit(api, schema["id"], instruction=f"  {instruction} ", model=MODEL)
    found = events(api, job_id)
    assert types(found) == ["model_started", "schema_updated", "completed"]
    assert of_type(found, "model_started") == {
        "type": "model_started",
        "model": MODEL,
        "schema_id": schema["id"],
        "schema_version": 1,
    }
    updated = of_type(found, "schema_updated")
    assert (updated["schema_id"], updated["version"]) == (schema["id"], 2)
    assert updated["json_schema"] == HEADCOUNT
    assert updated["expertise_groups"] == {
        "company_profile": ["legal_name", "founded_year", "headcount"],
        "financials": ["annual_revenue_usd"],
        "general": ["website"],
    }
    assert updated["cost"] > 0
    completed = found[-1][1]
    assert completed["status"] == "completed"
    assert (completed["schema_id"], completed["schema_version"]) == (schema["id"], 2)
    assert completed["json_schema"] == HEADCOUNT
    assert completed["total_cost"] == updated["cost"]
    assert Decimal(str(completed["total_cost"])) == recorded_cost(tenants, job_id, 1)
    stored = api.ok(api.get(f"/api/schema/saved/{schema['id']}"))
    assert (stored["version"], stored["json_schema"]) == (2, HEADCOUNT)
    versions = api.ok(api.get(f"/api/schema/saved/{schema['id']}/versions"))["versions"]
    assert [(v["version"], v["change"], v["note"]) for v in versions] == [
        (2, "ai_edit", instruction),
        (1, "created", None),
    ]
    job = api.ok(api.get(f"/api/llm/jobs/{job_id}"))
    assert (job["kind"], job["schema_id"], job["schema_version"], job["models"]) == (
        "schema_edit",
        schema["id"],
        1,
        [MODEL],
    )
    # The model saw the instruction and the schema as it was.
    (request,) = fake.requests()
    assert f"Instruction: {instruction}\n" in prompt_of(request)
    assert '"annual_revenue_usd"' in prompt_of(request)


def test_an_ai_edit_to_an_invalid_schema_saves_nothing(
    api: Api, fake: FakeLLM, tenants: Tenants
) -> None:
    schema = api.create_schema()
    broken = {**COMPANY_SCHEMA, "type": "array", "properties": {"name": {"type": "strin"}}}
    editing_to(fake, broken)
    job_id = edit(api, schema["id"], instruction="Make it a list", model=MODEL)
    found = events(api, job_id)
    assert types(found) == ["model_started", "error", "completed"]
    message = of_type(found, "error")["message"]
    assert message.startswith("The edited schema is not a valid entity schema: ")
    assert "properties/name/type: 'strin' is not valid under any of the given schemas" in message
    completed = found[-1][1]
    assert completed["status"] == "failed"
    assert "schema_version" not in completed
    # The call was made and paid for: the job's cost says so.
    assert completed["total_cost"] > 0
    assert Decimal(str(completed["total_cost"])) == recorded_cost(tenants, job_id, 1)
    # Nothing saved: the schema and its versions as they were.
    stored = api.ok(api.get(f"/api/schema/saved/{schema['id']}"))
    assert stored == schema
    versions = api.ok(api.get(f"/api/schema/saved/{schema['id']}/versions"))["versions"]
    assert [v["version"] for v in versions] == [1]
    job = api.ok(api.get(f"/api/llm/jobs/{job_id}"))
    assert (job["status"], job["error"]) == ("failed", message)


def test_an_ai_edit_giving_back_the_same_schema_adds_no_version(api: Api, fake: FakeLLM) -> None:
    schema = api.create_schema()
    editing_to(fake, COMPANY_SCHEMA)
    found = events(api, edit(api, schema["id"], instruction="Change nothing", model=MODEL))
    assert types(found) == ["model_started", "schema_unchanged", "completed"]
    unchanged = of_type(found, "schema_unchanged")
    assert unchanged["version"] == 1
    assert unchanged["message"] == "The model gave back the schema as it was: no version was added"
    assert found[-1][1]["status"] == "completed"
    assert found[-1][1]["schema_version"] == 1
    assert api.ok(api.get(f"/api/schema/saved/{schema['id']}"))["version"] == 1


def test_an_ai_edit_of_a_schema_changed_meanwhile_saves_nothing(api: Api, fake: FakeLLM) -> None:
    schema = api.create_schema()
    gate = threading.Event()
    editing_to(fake, HEADCOUNT, gate)
    job_id = edit(api, schema["id"], instruction="Add the headcount", model=MODEL)
    try:
        fake.server.wait_for(1)  # the model is being asked
        api.ok(api.put(f"/api/schema/saved/{schema['id']}", {"name": "Renamed"}))
    finally:
        gate.set()
    found = events(api, job_id)
    assert types(found) == ["model_started", "error", "completed"]
    assert of_type(found, "error")["message"] == (
        "The schema changed since version 1 (it is at version 2): nothing was saved"
    )
    assert found[-1][1]["status"] == "failed"
    assert found[-1][1]["total_cost"] > 0
    stored = api.ok(api.get(f"/api/schema/saved/{schema['id']}"))
    assert (stored["version"], stored["name"], stored["json_schema"]) == (
        2,
        "Renamed",
        COMPANY_SCHEMA,
    )


def test_a_cancelled_ai_edit_saves_nothing(api: Api, fake: FakeLLM) -> None:
    schema = api.create_schema()
    gate = threading.Event()
    editing_to(fake, HEADCOUNT, gate)
    job_id = edit(api, schema["id"], instruction="Add the headcount", model=MODEL)
    try:
        fake.server.wait_for(1)
        cancelled = api.ok(api.post(f"/api/llm/cancel/{job_id}"))
        assert cancelled["status"] == "cancelled"
    finally:
        gate.set()
    found = events(api, job_id)
    assert types(found) == ["model_started", "completed"]
    assert found[-1][1]["status"] == "cancelled"
    # The answer comes back after the cancel (in a few milliseconds once the gate is
    # open): the worker drops it.
    time.sleep(0.5)
    assert api.ok(api.get(f"/api/llm/jobs/{job_id}"))["status"] == "cancelled"
    assert api.ok(api.get(f"/api/schema/saved/{schema['id']}"))["version"] == 1
    assert types(events(api, job_id)) == ["model_started", "completed"]


def test_ai_edits_refused_before_any_job(
    api: Api, other: Api, fake: FakeLLM, tenants: Tenants
) -> None:
    schema = api.create_schema()
    path = f"/api/schema/saved/{schema['id']}/prompt/stream"
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        (path, {"instruction": " ", "model": MODEL}, 400, "instruction must be a non-empty string"),
        (
            path,
            {"instruction": "x" * 4001, "model": MODEL},
            400,
            "instruction must be at most 4,000 characters",
        ),
        (
            path,
            {"instruction": "Add x"},
            400,
            "model is required (a provider::model key): no OPENENRICH_ENTITIES_DEFAULT_MODEL "
            "is set",
        ),
        (
            path.replace(schema["id"], "00000000-0000-7000-8000-000000000000"),
            {"instruction": "Add x", "model": MODEL},
            404,
            "Schema not found",
        ),
        ("/api/schema/saved/nope/prompt/stream", {"instruction": "x"}, 404, "Schema not found"),
    ]
    for where, body, status, detail in cases:
        answer = api.post(where, body)
        assert (answer.status_code, answer.json()) == (status, {"detail": detail}), where
    # Another organisation's schema is not found either.
    answer = other.post(path, {"instruction": "Add x", "model": MODEL})
    assert (answer.status_code, answer.json()) == (404, {"detail": "Schema not found"})
    assert job_count(tenants) == 0
    assert fake.received == []


# -- streams and keys --------------------------------------------------------------------------


def test_a_schema_job_stream_resumes_after_the_last_event_id(api: Api, fake: FakeLLM) -> None:
    describing(fake)
    job_id = generate(api, model=MODEL)
    found = events(api, job_id)
    assert len(found) == 4
    for k in range(len(found)):
        rest = events(api, job_id, **{"Last-Event-ID": str(k)})
        assert rest == found[k:]
    by_query = api.client.get(f"/api/llm/stream/{job_id}?after=2", headers=api.headers)
    assert [
        json.loads(line[6:])["type"]
        for line in by_query.text.splitlines()
        if line.startswith("data: ")
    ] == types(found[2:])


def test_a_read_key_follows_schema_jobs_but_cannot_start_them(
    api: Api, client: httpx.Client, fake: FakeLLM, tenants: Tenants
) -> None:
    schema = api.create_schema()
    reader = Api(client, tenants.key("acme", role="read"))
    editing_to(fake, HEADCOUNT)
    for path, body in [
        ("/api/schema/generate/stream", {"samples": COMPANIES}),
        (f"/api/schema/saved/{schema['id']}/prompt/stream", {"instruction": "x", "model": MODEL}),
    ]:
        answer = reader.post(path, body)
        assert answer.status_code == 403, answer.text
        assert answer.json()["detail"].startswith("Insufficient role")
    assert job_count(tenants) == 0
    job_id = edit(api, schema["id"], instruction="Add the headcount", model=MODEL)
    assert types(events(reader, job_id)) == ["model_started", "schema_updated", "completed"]
    assert reader.ok(reader.get(f"/api/llm/jobs/{job_id}"))["status"] == "completed"

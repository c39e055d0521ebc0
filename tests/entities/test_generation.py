"""Schemas made from samples and edited by a model (`entities.generation`), with the fake
LLM answering each request by what it asks. The schema jobs call these functions."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from fixtures.fake_llm import Answer, FakeLLM
from helpers.llm import with_gateway
from openenrich.config import Settings
from openenrich.entities import generation
from openenrich.entities.generation import InvalidEditedSchema, Refinement
from openenrich.entities.schema_store import DIALECT, expertise_groups, schema_problems
from openenrich.errors import BadRequest
from openenrich.llm.gateway import Gateway, Result
from openenrich.tenancy.tenant import Tenant

COMPANIES: list[dict[str, Any]] = [
    {
        "name": "Moderna Inc",
        "country": "US",
        "founded": 2010,
        "website": "https://www.modernatx.com",
        "ipo_date": "2018-12-07",
        "employees": 5600,
        "tickers": ["MRNA"],
        "headquarters": {"city": "Cambridge", "state": "MA"},
    },
    {
        "name": "Roche Holding AG",
        "country": "CH",
        "founded": 1896,
        "website": "https://www.roche.com",
        "ipo_date": None,
        "employees": 101000,
        "tickers": ["ROG", "RHHBY"],
        "headquarters": {"city": "Basel"},
    },
    {
        "name": "Pfizer Inc",
        "country": "US",
        "founded": 1849,
        "website": "https://www.pfizer.com",
        "ipo_date": "1942-06-22",
        "revenue_usd": 58.5e9,
        "tickers": [],
        "headquarters": {"city": "New York", "state": "NY"},
    },
]


def run(settings: Settings, work: Any) -> Any:
    async def call(gateway: Gateway) -> Any:
        return await work(gateway)

    return with_gateway(settings, call)


def structured(request: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema an OpenAI-protocol request asked the answer to match."""
    schema: dict[str, Any] = request["response_format"]["json_schema"]["schema"]
    return schema


def test_infer_gives_a_schema_every_sample_validates_against() -> None:
    schema = generation.infer(COMPANIES)
    assert schema["$schema"] == DIALECT
    assert schema["type"] == "object"
    assert list(schema)[:2] == ["$schema", "type"]
    assert schema_problems(schema) == []
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    for sample in COMPANIES:
        assert list(validator.iter_errors(sample)) == []
    properties = schema["properties"]
    assert list(properties) == [
        "name", "country", "founded", "website", "ipo_date", "employees", "tickers",
        "headquarters", "revenue_usd",
    ]  # fmt: skip
    assert properties["ipo_date"] == {"type": ["null", "string"]}
    assert properties["revenue_usd"] == {"type": "number"}
    assert properties["tickers"] == {"type": "array", "items": {"type": "string"}}
    assert properties["headquarters"]["required"] == ["city"]
    # In every sample: required; in some: not.
    assert set(schema["required"]) == {
        "name", "country", "founded", "website", "ipo_date", "tickers", "headquarters",
    }  # fmt: skip
    # Something else does not validate.
    assert list(validator.iter_errors({**COMPANIES[0], "founded": "2010"}))


@pytest.mark.parametrize(
    ("samples", "message"),
    [
        ([], "samples must be a non-empty list of JSON objects"),
        ({"name": "x"}, "samples must be a non-empty list of JSON objects"),
        ([{"name": "x"}, "y"], "samples[1] must be a JSON object"),
        ([{}, {}], "samples have no fields: nothing to infer a schema from"),
        ([{"n": 1}] * 51, "samples: at most 50 (got 51)"),
        (
            [{f"f{n}": n for n in range(300)}, {f"g{n}": n for n in range(201)}],
            "Invalid schema inferred from the samples: properties: 501 in all; at most 500",
        ),
    ],
)
def test_samples_that_cannot_be_inferred_from_are_refused(samples: Any, message: str) -> None:
    with pytest.raises(BadRequest) as refused:
        generation.infer(samples)
    assert refused.value.message == message


GROUPS = {
    "name": "company_profile",
    "country": "Company Profile",
    "founded": "company_profile",
    "website": "online presence",
    "ipo_date": "financials",
    "employees": "company_profile",
    "tickers": "financials",
    "headquarters": "company_profile",
    "revenue_usd": "financials",
}
FORMATS = {"website": "uri", "ipo_date": "date", "founded": "date", "country": "email"}


def describing(fake: FakeLLM, groups: dict[str, str] = GROUPS) -> None:
    """The model describes every property it is asked about."""

    def respond(model: str, request: dict[str, Any]) -> Answer:
        asked = structured(request)["properties"]
        return Answer(
            json={
                name: {
                    "description": f"The company's {name.replace('_', ' ')}.",
                    "format": FORMATS.get(name),
                    "x-expertise": groups[name],
                }
                for name in asked
            }
        )

    fake.responder = respond


def refine(settings: Settings, tenant: Tenant, inferred: Any, samples: Any) -> Refinement:
    async def work(gateway: Gateway) -> Refinement:
        return await generation.refine(gateway, tenant, "gpt-4o-mini", inferred, samples)

    result: Refinement = run(settings, work)
    return result


def test_refine_adds_descriptions_formats_and_groups_and_changes_no_type(
    llm_settings: Settings, tenant: Tenant, fake: FakeLLM
) -> None:
    describing(fake)
    inferred = generation.infer(COMPANIES)
    refinement = refine(llm_settings, tenant, inferred, COMPANIES)
    assert refinement.refined
    schema = refinement.json_schema
    assert schema_problems(schema) == []
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    for sample in COMPANIES:
        assert list(validator.iter_errors(sample)) == []
    # Structure as inferred: the same properties, types and required.
    assert list(schema["properties"]) == list(inferred["properties"])
    assert schema["required"] == inferred["required"]
    for name, prop in schema["properties"].items():
        added = {key for key in prop if key not in inferred["properties"][name]}
        assert added <= {"description", "format", "x-expertise"}
        assert {k: v for k, v in prop.items() if k not in added} == inferred["properties"][name]
    properties = schema["properties"]
    assert properties["name"]["description"] == "The company's name."
    assert properties["website"]["format"] == "uri"
    assert properties["ipo_date"]["format"] == "date"  # null or a date: dates given
    assert "format" not in properties["founded"]  # an integer
    assert "format" not in properties["country"]  # "US" is not an email address
    assert refinement.notes == [
        "founded: format date left out (its values are not strings)",
        "country: format email left out (samples[0] does not match it)",
    ]
    # Group names as snake_case.
    assert expertise_groups(schema) == {
        "company_profile": ["name", "country", "founded", "employees", "headquarters"],
        "online_presence": ["website"],
        "financials": ["ipo_date", "tickers", "revenue_usd"],
    }
    # The inferred schema was not changed in place.
    assert inferred == generation.infer(COMPANIES)
    # One call, asking for every top-level property, with the samples in the prompt.
    result = refinement.result
    assert isinstance(result, Result)
    assert result.model == "openai::gpt-4o-mini"
    assert result.cost > 0
    (request,) = fake.requests()
    asked = structured(request)
    assert asked["required"] == list(inferred["properties"])
    assert asked["additionalProperties"] is False
    prompt = request["messages"][-1]["content"]
    assert json.dumps(COMPANIES[2]["headquarters"]).replace(" ", "") in prompt.replace(" ", "")


def test_too_many_groups_are_left_out_for_derived_ones(
    llm_settings: Settings, tenant: Tenant, fake: FakeLLM
) -> None:
    samples = [{f"field_{n}": n for n in range(12)}]
    describing(fake, groups={f"field_{n}": f"group {n}" for n in range(12)})
    refinement = refine(llm_settings, tenant, generation.infer(samples), samples)
    assert refinement.refined
    properties = refinement.json_schema["properties"]
    assert all("x-expertise" not in p for p in properties.values())
    assert all(p["description"] for p in properties.values())
    assert refinement.notes == [
        "x-expertise left out: 12 groups proposed, at most 10 (the groups are derived from "
        "the schema instead)"
    ]
    assert expertise_groups(refinement.json_schema) == {
        "general": [f"field_{n}" for n in range(8)],
        "general_2": [f"field_{n}" for n in range(8, 12)],
    }


def test_the_inferred_schema_is_kept_when_the_merge_fails_a_sample(
    llm_settings: Settings, tenant: Tenant, fake: FakeLLM
) -> None:
    describing(fake)
    # A caller's inferred schema that one of the samples does not match: whatever the
    # model adds, the result would not validate it.
    inferred = generation.infer(COMPANIES[:2])
    odd = {**COMPANIES[1], "founded": "1896"}
    refinement = refine(llm_settings, tenant, inferred, [*COMPANIES[:2], odd])
    assert not refinement.refined
    assert refinement.json_schema == inferred
    assert refinement.notes[-1] == (
        "The model's additions were not kept (the inferred schema is): "
        "samples[2]/founded: '1896' is not of type 'integer'"
    )
    assert refinement.result.cost > 0


EMPLOYEES_ADDED = generation.infer(COMPANIES)
EMPLOYEES_ADDED["properties"]["headcount"] = {
    "type": ["integer", "null"],
    "description": "Employees at the last annual report",
    "x-expertise": "company_profile",
}


def edit(settings: Settings, tenant: Tenant, model: str = "gpt-4o-mini") -> Any:
    async def work(gateway: Gateway) -> Any:
        return await generation.edit(
            gateway, tenant, model, generation.infer(COMPANIES), "Add the headcount"
        )

    return run(settings, work)


def test_edit_returns_the_model_s_schema(
    llm_settings: Settings, tenant: Tenant, fake: FakeLLM
) -> None:
    fake.responder = lambda model, request: Answer(json={"json_schema": EMPLOYEES_ADDED})
    edited, result = edit(llm_settings, tenant)
    assert edited == EMPLOYEES_ADDED
    assert result.model == "openai::gpt-4o-mini"
    assert result.cost > 0
    (request,) = fake.requests()
    prompt = request["messages"][-1]["content"]
    assert prompt.startswith("Instruction: Add the headcount\n")
    assert '"tickers"' in prompt
    assert structured(request)["required"] == ["json_schema"]


def test_edit_through_a_prompted_provider(
    llm_settings: Settings, tenant: Tenant, fake: FakeLLM
) -> None:
    """Anthropic has no JSON-schema mode here: the schema goes in the instructions, and
    the answer is checked all the same."""
    fake.responder = lambda model, request: Answer(json={"json_schema": EMPLOYEES_ADDED})
    edited, result = edit(llm_settings, tenant, "anthropic::claude-sonnet-4-5-20250514")
    assert edited == EMPLOYEES_ADDED
    assert result.model == "anthropic::claude-sonnet-4-5-20250514"


@pytest.mark.parametrize(
    ("answer", "problems"),
    [
        (
            {"type": "object", "properties": {"headcount": {"type": "int"}}},
            ["properties/headcount/type: 'int' is not valid under any of the given schemas"],
        ),
        (
            {"type": "array", "items": {"type": "string"}},
            [
                'type: must be "object" (an entity is a JSON object), not "array"',
                "properties: must name at least one property",
            ],
        ),
        (
            {
                "type": "object",
                "properties": {"a": {"type": "string", "x-expertise": ""}, "b": {"minimum": "1"}},
            },
            [
                "properties/b/minimum: '1' is not of type 'number'",
            ],
        ),
        (
            {"type": "object", "properties": {"a": {"type": "string", "x-expertise": ""}}},
            [
                "properties/a/x-expertise: must be a non-empty string of at most 64 characters "
                "(the name of an expertise group)"
            ],
        ),
    ],
    ids=["an unknown type", "not an object", "a meta-schema error", "an empty group"],
)
def test_an_edit_that_is_not_a_valid_schema_is_an_error_naming_what_is_wrong(
    llm_settings: Settings,
    tenant: Tenant,
    fake: FakeLLM,
    answer: dict[str, Any],
    problems: list[str],
) -> None:
    fake.responder = lambda model, request: Answer(json={"json_schema": answer})
    with pytest.raises(InvalidEditedSchema) as refused:
        edit(llm_settings, tenant)
    error = refused.value
    assert error.problems == problems
    assert error.message == "The edited schema is not a valid entity schema: " + "; ".join(problems)
    assert error.code == "invalid_schema"
    assert error.result.cost > 0  # spent all the same


@pytest.mark.parametrize(
    ("instruction", "message"),
    [
        ("", "instruction must be a non-empty string"),
        ("  ", "instruction must be a non-empty string"),
        (None, "instruction must be a non-empty string"),
        ("x" * 4001, "instruction must be at most 4,000 characters"),
    ],
)
def test_instructions_are_checked(instruction: Any, message: str) -> None:
    with pytest.raises(BadRequest) as refused:
        generation.check_instruction(instruction)
    assert refused.value.message == message
    assert generation.check_instruction("  Add the CEO ") == "Add the CEO"

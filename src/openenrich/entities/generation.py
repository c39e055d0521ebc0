"""Schemas made for the tenant: inferred from sample entities, refined and edited by a
model. The schema jobs (generate, AI edit) call these; nothing here saves anything.

- `infer(samples)`: the structure of the samples (genson), as a draft 2020-12 schema that
  every sample validates against.
- `refine(...)`: a model adds a description, a format and an expertise group to each
  top-level property. It never changes a type nor adds or drops a property: its answer
  is merged into a copy of the inferred schema, field by field. A format that a sample's
  value does not match is left out; more than `MAX_GROUPS` groups are left out (the
  groups are then derived, see `schema_store.expertise_groups`). Should the merged schema
  still fail the meta-schema or a sample, the inferred schema is kept as it was
  (`Refinement.refined` False); `notes` says what was left out either way.
- `edit(...)`: a model rewrites a schema after an instruction; the result must pass
  `schema_store.schema_problems`, else `InvalidEditedSchema` lists the problems.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

import orjson
from genson import SchemaBuilder
from jsonschema import Draft202012Validator

from openenrich.entities.schema_store import (
    DIALECT,
    MAX_GROUP_NAME,
    InvalidSchema,
    schema_problems,
)
from openenrich.errors import BadRequest
from openenrich.llm.gateway import Gateway, LlmError, Result
from openenrich.tenancy.tenant import Tenant

MAX_SAMPLES = 50
MAX_INSTRUCTION = 4_000
MAX_GROUPS = 10  # each group is one model call per entity under multi_expertise
MAX_DESCRIPTION = 500
PROMPT_SAMPLES_CHARS = 30_000  # the samples shown to the model (whole ones, in order)
# The formats a model may give a string property (those jsonschema can check).
FORMATS = (
    "date", "date-time", "time", "email", "uri", "hostname", "ipv4", "ipv6", "uuid",
)  # fmt: skip
_NOT_GROUP_CHARACTERS = re.compile(r"[^a-z0-9]+")

REFINE_SYSTEM = (
    "You document JSON Schemas used to enrich entities with language models. You describe "
    "the properties you are given; you never rename, add or remove properties, and never "
    "change their types. Answer with the JSON object only."
)
EDIT_SYSTEM = (
    "You edit JSON Schemas (draft 2020-12) that describe one entity to be enriched by "
    "language models. Apply the instruction and change nothing else. The result must "
    'stay a JSON Schema with "type": "object" and "properties". A top-level property may '
    'name its expertise group in "x-expertise" (a short snake_case string); keep the '
    "groups that are there unless the instruction says otherwise. Answer with the JSON "
    "object only."
)


class InvalidEditedSchema(LlmError):
    """The model's edited schema cannot be saved; `problems` lists why (`path: message`),
    `result` is the call (its cost is spent all the same)."""

    code = "invalid_schema"

    def __init__(self, problems: list[str], result: Result) -> None:
        self.problems = problems
        self.result = result
        listed = "; ".join(problems[:5])
        if len(problems) > 5:
            listed += f"; and {len(problems) - 5} more"
        super().__init__(f"The edited schema is not a valid entity schema: {listed}")


@dataclass(frozen=True, slots=True)
class Refinement:
    json_schema: dict[str, Any]  # the refined schema, or the inferred one (`refined` False)
    result: Result  # the model call: usage and cost
    refined: bool
    notes: list[str] = field(default_factory=list)  # what was left out, and why


# -- inferring -----------------------------------------------------------------------------


def check_samples(samples: Any) -> list[dict[str, Any]]:
    """The samples, when they can be inferred from: 1 to 50 JSON objects, not all empty."""
    if not isinstance(samples, list) or not samples:
        raise BadRequest("samples must be a non-empty list of JSON objects")
    if len(samples) > MAX_SAMPLES:
        raise BadRequest(f"samples: at most {MAX_SAMPLES} (got {len(samples)})")
    for index, sample in enumerate(samples):
        if not isinstance(sample, dict):
            raise BadRequest(f"samples[{index}] must be a JSON object")
    if not any(samples):
        raise BadRequest("samples have no fields: nothing to infer a schema from")
    return samples


def infer(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """A draft 2020-12 schema of the samples' structure; every sample validates against
    it. Properties present in every sample are `required`; a field seen with several types
    takes them all. A 400 (`InvalidSchema`) when the result could not be saved (over 500
    fields, over 256 KB)."""
    builder = SchemaBuilder(schema_uri=DIALECT)
    for sample in check_samples(samples):
        builder.add_object(sample)
    schema: dict[str, Any] = builder.to_schema()
    # genson writes `$schema` first when it is given one, and `type: object` for objects:
    # both said again so the result never depends on that.
    inferred = {"$schema": DIALECT, **schema, "type": "object"}
    problems = schema_problems(inferred)  # past the limits: too many fields, too large
    if problems:
        raise InvalidSchema(problems, subject="schema inferred from the samples")
    return inferred


def sample_problems(schema: dict[str, Any], samples: list[dict[str, Any]]) -> list[str]:
    """Where the samples fail `schema`, formats checked (`samples[i]/path: message`)."""
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    return [
        f"samples[{index}]/{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for index, sample in enumerate(samples)
        for error in validator.iter_errors(sample)
    ]


# -- refining ------------------------------------------------------------------------------


def _refine_schema(properties: list[str]) -> dict[str, Any]:
    entry = {
        "type": "object",
        "properties": {
            "description": {"type": "string", "minLength": 1, "maxLength": MAX_DESCRIPTION},
            "format": {"enum": [*FORMATS, None]},
            "x-expertise": {"type": "string", "minLength": 1, "maxLength": MAX_GROUP_NAME},
        },
        "required": ["description", "format", "x-expertise"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": dict.fromkeys(properties, entry),
        "required": properties,
        "additionalProperties": False,
    }


def _shown_samples(samples: list[dict[str, Any]]) -> str:
    shown: list[str] = []
    used = 0
    for sample in samples:
        text = orjson.dumps(sample).decode()
        if shown and used + len(text) > PROMPT_SAMPLES_CHARS:
            break
        shown.append(text)
        used += len(text)
    return "\n".join(shown)


def _refine_prompt(inferred: dict[str, Any], samples: list[dict[str, Any]]) -> str:
    return (
        "This JSON Schema was inferred from sample entities. For each top-level property, "
        "give:\n"
        "- description: one sentence saying what the value is, for a model that will "
        "research and fill it;\n"
        f"- format: one of {', '.join(FORMATS)} when every value is a string of that "
        "format, else null;\n"
        "- x-expertise: the expertise group of the property, a short snake_case name "
        "(company_profile, financials, leadership, online_presence, …). Properties one "
        "researcher would look up together share a group; use 2 to 6 groups in all.\n\n"
        f"Schema:\n{orjson.dumps(inferred, option=orjson.OPT_INDENT_2).decode()}\n\n"
        f"Samples (one JSON object a line):\n{_shown_samples(samples)}"
    )


def _accepts_strings(prop: dict[str, Any]) -> bool:
    kind = prop.get("type")
    return kind == "string" or (isinstance(kind, list) and "string" in kind)


def _group(value: str) -> str:
    """A model's group name as snake_case (`Online Presence` → `online_presence`)."""
    return _NOT_GROUP_CHARACTERS.sub("_", value.lower()).strip("_")[:MAX_GROUP_NAME]


def _merge(inferred: dict[str, Any], answer: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    merged = copy.deepcopy(inferred)
    properties: dict[str, Any] = merged["properties"]
    for name, extra in answer.items():
        prop = properties.get(name)
        if not isinstance(prop, dict) or not isinstance(extra, dict):
            notes.append(f"{name}: not a property of the schema; ignored")
            continue
        description = extra.get("description")
        if isinstance(description, str) and description.strip():
            prop["description"] = description.strip()
        fmt = extra.get("format")
        if fmt in FORMATS:
            if _accepts_strings(prop):
                prop["format"] = fmt
            else:
                notes.append(f"{name}: format {fmt} left out (its values are not strings)")
        group = extra.get("x-expertise")
        if isinstance(group, str) and _group(group):
            prop["x-expertise"] = _group(group)
    groups = {p["x-expertise"] for p in properties.values() if "x-expertise" in p}
    if len(groups) > MAX_GROUPS:
        notes.append(
            f"x-expertise left out: {len(groups)} groups proposed, at most {MAX_GROUPS} "
            "(the groups are derived from the schema instead)"
        )
        for prop in properties.values():
            prop.pop("x-expertise", None)
    return merged


def _drop_failing_formats(
    schema: dict[str, Any], samples: list[dict[str, Any]], notes: list[str]
) -> None:
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    properties = schema["properties"]
    for index, sample in enumerate(samples):
        # Listed first: the loop changes the schema the errors are found in.
        for error in list(validator.iter_errors(sample)):
            path = list(error.absolute_path)
            if error.validator != "format" or not path or path[0] not in properties:
                continue
            prop = properties[path[0]]
            if prop.pop("format", None) is not None:
                notes.append(
                    f"{path[0]}: format {error.validator_value} left out "
                    f"(samples[{index}] does not match it)"
                )


async def refine(
    gateway: Gateway,
    tenant: Tenant,
    model: str,
    inferred: dict[str, Any],
    samples: list[dict[str, Any]],
    job_id: str | None = None,
) -> Refinement:
    """`inferred` with the model's descriptions, formats and expertise groups (see the
    module's doc). Raises the gateway's errors when the call itself fails."""
    properties = list(inferred.get("properties") or {})
    result = await gateway.complete(
        tenant,
        model,
        _refine_prompt(inferred, samples),
        output_schema=_refine_schema(properties),
        system=REFINE_SYSTEM,
        job_id=job_id,
    )
    notes: list[str] = []
    merged = _merge(inferred, result.value, notes)
    _drop_failing_formats(merged, samples, notes)
    problems = schema_problems(merged) + sample_problems(merged, samples)
    if problems:
        notes.append(
            "The model's additions were not kept (the inferred schema is): "
            + "; ".join(problems[:5])
        )
        return Refinement(inferred, result, refined=False, notes=notes)
    return Refinement(merged, result, refined=True, notes=notes)


# -- editing -------------------------------------------------------------------------------


def check_instruction(instruction: Any) -> str:
    if not isinstance(instruction, str) or not instruction.strip():
        raise BadRequest("instruction must be a non-empty string")
    if len(instruction) > MAX_INSTRUCTION:
        raise BadRequest(f"instruction must be at most {MAX_INSTRUCTION:,} characters")
    return instruction.strip()


_EDIT_OUTPUT = {
    "type": "object",
    "properties": {"json_schema": {"type": "object"}},
    "required": ["json_schema"],
    "additionalProperties": False,
}


async def edit(
    gateway: Gateway,
    tenant: Tenant,
    model: str,
    current_schema: dict[str, Any],
    instruction: str,
    job_id: str | None = None,
) -> tuple[dict[str, Any], Result]:
    """The schema the model made of `current_schema` after `instruction`, and the call.
    Raises `InvalidEditedSchema` (with the call) when it cannot be saved, and the
    gateway's errors when the call itself fails."""
    prompt = (
        f"Instruction: {check_instruction(instruction)}\n\n"
        "The schema to edit:\n"
        f"{orjson.dumps(current_schema, option=orjson.OPT_INDENT_2).decode()}\n\n"
        'Answer {"json_schema": <the whole edited schema>}.'
    )
    result = await gateway.complete(
        tenant, model, prompt, output_schema=_EDIT_OUTPUT, system=EDIT_SYSTEM, job_id=job_id
    )
    edited: dict[str, Any] = result.value["json_schema"]
    problems = schema_problems(edited)
    if problems:
        raise InvalidEditedSchema(problems, result)
    return edited, result

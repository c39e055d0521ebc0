"""Fusion: several models' structured outputs for one entity made into one, field by field.

    fuse(results, schema)           pure: per field, the candidates (normalised values, see
                                    normalize.py) and the majority, or "disputed"
    arbitrate(gateway, …)           one model call for all the disputed fields of an entity;
                                    its answer may only be one of each field's candidates
    fusion.settle(chosen)           every field decided; the fused object, checked against
                                    the schema; the per-field account a record keeps
    fuse_entity(gateway, …)         the three in a row: what the enrichment job and
                                    POST /api/fusion/merge call

Fields are the schema's properties; an object property with `properties` of its own is
fused field by field (dotted paths: `address.city`), any other value as a whole (lists of
scalars as sets). A field is decided by:

    single      one model answered (the others gave null, nothing or a blank string)
    majority    more than half of the models that answered agree
    arbiter     no majority: the arbitration model chose one of the candidates
    plurality   no majority and no arbiter (or the arbiter's answer was not a candidate):
                the most-supported candidate; `tie` when another had as much support,
                broken by the order the models were given in (the candidate of the
                earliest model wins)
    none        no model answered: the field keeps what the first model that had the key
                wrote (null or a blank string), or stays out of the fused object

`confidence` is the share of the models that answered the field that gave the chosen
value (agreed / answered): 1.0 for unanimity (or a single answer; the candidates say how
many answered), 0.5 for one of two. A candidate's value (what the fused object takes) is
the first of its models' values, in model order, that is valid for the field's schema;
when none is, its normalised value if that is valid ("5,800" for an integer field is
5800), else the first value as written.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from openenrich.entities.normalize import (
    NO_ANSWER,
    Hint,
    Key,
    hint_for,
    normalize,
    plain,
    resolve,
)

if TYPE_CHECKING:
    from openenrich.llm.gateway import Gateway, Result
    from openenrich.tenancy.tenant import Tenant

Path = tuple[str, ...]
Decision = Literal["single", "majority", "arbiter", "plurality", "none"]

_ABSENT: Any = object()


@dataclass
class Candidate:
    """One normalised value and the models that gave it."""

    key: Key
    normalized: Any  # the normalised value as JSON
    originals: list[Any]  # each distinct value as the models wrote it, in model order
    models: list[str]
    value: Any = None  # what the fused object takes when this candidate wins

    def account(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "normalized": self.normalized,
            "originals": self.originals,
            "models": self.models,
        }


@dataclass
class Field:
    """One field of the fusion, before it is settled."""

    path: Path
    schema: Any  # the field's schema, `$ref`s followed
    hint: Hint
    answered: list[str]  # the models that answered, in model order
    # Most-supported first; equal support in the order of each one's first model.
    candidates: list[Candidate]
    placeholder: Any = _ABSENT  # what the first model that had the key wrote, when none answered

    @property
    def name(self) -> str:
        return ".".join(self.path)

    @property
    def majority(self) -> Candidate | None:
        if self.candidates and len(self.candidates[0].models) * 2 > len(self.answered):
            return self.candidates[0]
        return None

    @property
    def disputed(self) -> bool:
        return bool(self.candidates) and self.majority is None

    def candidate_for(self, value: Any) -> Candidate | None:
        """The candidate an arbiter's answer names, compared normalised."""
        key = normalize(value, self.hint)
        return next((c for c in self.candidates if c.key == key), None)


@dataclass
class Fused:
    """A settled fusion: the fused object, its per-field account, the schema's verdict, and
    the arbiter's call when there was one."""

    value: dict[str, Any]
    account: dict[str, dict[str, Any]]
    problems: list[str]  # where the fused object fails the schema (empty: valid)
    arbitration: Result | None = None

    @property
    def valid(self) -> bool:
        return not self.problems

    @property
    def cost(self) -> Decimal:
        return self.arbitration.cost if self.arbitration is not None else Decimal(0)

    @property
    def tokens(self) -> tuple[int, int]:
        if self.arbitration is None:
            return 0, 0
        usage = self.arbitration.usage
        return usage.input_tokens, usage.output_tokens


@dataclass
class Fusion:
    models: list[str]
    schema: Mapping[str, Any]
    fields: dict[str, Field] = field(default_factory=dict)
    # Objects (paths of object properties whose fields are fused) as the first model that
    # wrote one left it, when it did: null, or {}. What the fused object keeps there when
    # none of their fields was answered, so an object every model left null stays null.
    objects: dict[Path, Any] = field(default_factory=dict)

    @property
    def disputed(self) -> dict[str, Field]:
        """The fields without a majority, by name: what an arbiter is asked about."""
        return {name: f for name, f in self.fields.items() if f.disputed}

    def settle(self, chosen: Mapping[str, Any] | None = None) -> Fused:
        """Every field decided: disputed ones by `chosen` (an arbiter's answer, by field
        name) when it names one of their candidates, else by plurality."""
        chosen = chosen or {}
        account: dict[str, dict[str, Any]] = {}
        decided: dict[Path, Any] = {}
        for name, f in self.fields.items():
            entry = _decide(f, chosen.get(name, _ABSENT))
            account[name] = entry
            if entry["decided_by"] != "none":
                decided[f.path] = entry["value"]
            elif f.placeholder is not _ABSENT:
                decided[f.path] = f.placeholder
        value = _build(self.schema, self.schema, (), decided, self.objects)
        return Fused(value, account, check(self.schema, value))


def fuse(results: Mapping[str, Mapping[str, Any]], schema: Mapping[str, Any]) -> Fusion:
    """The fusion of `results` (model → its structured output for one entity, in the order
    ties are broken by) over the fields of `schema` (a JSON Schema of an object)."""
    models = list(results)
    fusion = Fusion(models, schema)
    for path, node in _fields(schema, schema, (), results):
        hint = hint_for(node, schema)
        validator = _field_validator(node, schema)
        by_key: dict[Key, Candidate] = {}
        answered: list[str] = []
        placeholder: Any = _ABSENT
        for model in models:
            found = _lookup(results[model], path)
            if found is _ABSENT:
                continue
            key = normalize(found, hint)
            if key == NO_ANSWER:
                if placeholder is _ABSENT:
                    placeholder = found
                continue
            answered.append(model)
            candidate = by_key.get(key)
            if candidate is None:
                candidate = by_key[key] = Candidate(key, plain(key), [], [])
            candidate.models.append(model)
            if found not in candidate.originals:
                candidate.originals.append(found)
        order = {model: i for i, model in enumerate(models)}
        candidates = sorted(by_key.values(), key=lambda c: (-len(c.models), order[c.models[0]]))
        for candidate in candidates:
            candidate.value = _representative(candidate, validator)
        fusion.fields[".".join(path)] = Field(path, node, hint, answered, candidates, placeholder)
        for i in range(1, len(path)):
            _note_object(fusion.objects, results, models, path[:i])
    return fusion


def check(schema: Mapping[str, Any], value: Any) -> list[str]:
    """Where `value` fails `schema` (Draft 2020-12), as `path: message`; empty when valid."""
    try:
        validator = _validator(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS).decode())
    except SchemaError as error:
        return [f"the schema is not a valid JSON Schema: {error.message}"]
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in validator.iter_errors(value)
    ][:20]


# -- arbitration ---------------------------------------------------------------------------

ARBITER_SYSTEM = (
    "You are the arbiter of a data-enrichment pipeline. Several language models researched "
    "the same entity and disagree on some fields. For each field, choose the candidate value "
    "that is most likely correct for this entity. Copy the chosen value exactly as listed; "
    "never answer a value that is not one of the field's candidates."
)


async def arbitrate(
    gateway: Gateway,
    tenant: Tenant,
    model: str,
    entity: Mapping[str, Any],
    disputed: Mapping[str, Field] | Sequence[Field],
    schema_fragment: Mapping[str, Any],
    job_id: str | None = None,
) -> tuple[dict[str, Any], Result]:
    """One call of `model` for all the `disputed` fields of one entity: the value it chose
    for each (by field name), and the call's Result (cost, tokens).

    The output schema has exactly these fields, each an `enum` of its candidates' values,
    so the gateway's validation (and its re-asks) keep the arbiter from inventing one;
    `Fusion.settle` also compares its answers normalised, and a field whose answer is no
    candidate is decided by plurality. `schema_fragment` is the entity's schema (whole, or
    any part in which the fields' paths resolve): the fields' descriptions come from it."""
    fields = list(disputed.values()) if isinstance(disputed, Mapping) else list(disputed)
    if not fields:
        raise ValueError("arbitrate() needs at least one disputed field")
    properties: dict[str, Any] = {}
    lines = []
    for f in fields:
        described = _description(schema_fragment, f.path)
        values = [c.value for c in f.candidates]
        properties[f.name] = {**_json_type(values), "enum": values}
        if described:
            properties[f.name]["description"] = described
        lines.append(f"- {f.name}" + (f": {described}" if described else ""))
        for number, c in enumerate(f.candidates, 1):
            given = f"{len(c.models)} of {len(f.answered)} models"
            lines.append(f"  {number}. {json.dumps(c.value, ensure_ascii=False)} ({given})")
    output_schema = {
        "type": "object",
        "properties": properties,
        "required": [f.name for f in fields],
        "additionalProperties": False,
    }
    prompt = (
        "Entity:\n"
        f"{json.dumps(dict(entity), ensure_ascii=False, indent=2)}\n\n"
        "Disputed fields and their candidate values:\n"
        + "\n".join(lines)
        + "\n\nAnswer with a JSON object giving, for each field, the value you choose."
    )
    result = await gateway.complete(
        tenant, model, prompt, output_schema=output_schema, system=ARBITER_SYSTEM, job_id=job_id
    )
    chosen = result.value if isinstance(result.value, dict) else {}
    return dict(chosen), result


async def fuse_entity(
    gateway: Gateway,
    tenant: Tenant,
    results: Mapping[str, Mapping[str, Any]],
    schema: Mapping[str, Any],
    entity: Mapping[str, Any],
    *,
    arbitration_model: str | None = None,
    job_id: str | None = None,
) -> Fused:
    """Fuse, ask the arbiter about the disputed fields (when there are any and a model is
    given), settle. The caller checks the arbiter with `gateway.ready` before its work
    starts; a failing arbiter call raises the gateway's error."""
    fusion = fuse(results, schema)
    disputed = fusion.disputed
    if arbitration_model is None or not disputed:
        return fusion.settle()
    chosen, result = await arbitrate(
        gateway, tenant, arbitration_model, entity, disputed, schema, job_id
    )
    fused = fusion.settle(chosen)
    fused.arbitration = result
    return fused


def _json_type(values: list[Any]) -> dict[str, str]:
    """`type` for an enum whose values share one (some providers want it beside `enum`)."""
    kinds: set[str] = set()
    for value in values:
        kind = _TYPES.get(type(value))
        if kind is None:
            return {}
        kinds.add(kind)
    if len(kinds) == 1:
        return {"type": kinds.pop()}
    return {"type": "number"} if kinds == {"integer", "number"} else {}


_TYPES = {
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    list: "array",
    dict: "object",
}


# -- the parts -----------------------------------------------------------------------------


def _decide(f: Field, chosen: Any) -> dict[str, Any]:
    if not f.candidates:
        return _entry(None, f, None, "none", tie=False)
    winner = f.majority
    if winner is not None:
        return _entry(winner.value, f, winner, "single" if len(f.answered) == 1 else "majority")
    picked = f.candidate_for(chosen) if chosen is not _ABSENT else None
    if picked is not None:
        return _entry(picked.value, f, picked, "arbiter")
    first, second = f.candidates[0], f.candidates[1]
    return _entry(first.value, f, first, "plurality", tie=len(first.models) == len(second.models))


def _entry(
    value: Any, f: Field, winner: Candidate | None, decided_by: Decision, *, tie: bool = False
) -> dict[str, Any]:
    agreed = list(winner.models) if winner is not None else []
    return {
        "value": value,
        "candidates": [c.account() for c in f.candidates],
        "agreed": agreed,
        "confidence": round(len(agreed) / len(f.answered), 4) if f.answered else 0.0,
        "decided_by": decided_by,
        "tie": tie,
    }


def _fields(
    node: Any, root: Any, path: Path, results: Mapping[str, Mapping[str, Any]]
) -> Iterator[tuple[Path, Any]]:
    """(path, schema) of every field: properties, and the properties of object properties
    that list theirs. A root without `properties` fuses the keys the models wrote."""
    node = resolve(node, root)
    properties = node.get("properties") if isinstance(node, dict) else None
    if not isinstance(properties, dict):
        properties = {key: {} for result in results.values() for key in result}
    for name, sub in properties.items():
        sub = resolve(sub, root)
        inner = sub.get("properties") if isinstance(sub, dict) else None
        if isinstance(inner, dict) and inner:
            yield from _fields(sub, root, (*path, name), results)
        else:
            yield (*path, name), sub


def _lookup(result: Any, path: Path) -> Any:
    for part in path:
        if not isinstance(result, dict) or part not in result:
            return _ABSENT
        result = result[part]
    return result


def _representative(candidate: Candidate, validator: Draft202012Validator | None) -> Any:
    if validator is None:
        return candidate.originals[0]
    for value in candidate.originals:
        if validator.is_valid(value):
            return value
    # "5,800" for an integer: the number it was read as, when that fits.
    if validator.is_valid(candidate.normalized):
        return candidate.normalized
    return candidate.originals[0]


def _note_object(
    objects: dict[Path, Any],
    results: Mapping[str, Mapping[str, Any]],
    models: list[str],
    path: Path,
) -> None:
    if path in objects:
        return
    for model in models:
        found = _lookup(results[model], path)
        if found is None or isinstance(found, dict):
            objects[path] = None if found is None else {}
            return


def _build(
    node: Any, root: Any, path: Path, decided: dict[Path, Any], objects: dict[Path, Any]
) -> dict[str, Any]:
    """The fused object from the decided values, in the schema's property order."""
    out: dict[str, Any] = {}
    node = resolve(node, root)
    properties = node.get("properties") if isinstance(node, dict) else None
    if not isinstance(properties, dict):
        properties = {}
    names = list(properties)
    names += [p[len(path)] for p in decided if p[: len(path)] == path and len(p) > len(path)]
    for name in dict.fromkeys(names):
        here = (*path, name)
        if here in decided:
            out[name] = decided[here]
            continue
        inner = _build(properties.get(name, {}), root, here, decided, objects)
        if inner:
            out[name] = inner
        elif here in objects:
            out[name] = objects[here]
    return out


def _description(schema: Mapping[str, Any], path: Path) -> str | None:
    node: Any = schema
    for part in path:
        node = resolve(node, schema)
        properties = node.get("properties") if isinstance(node, dict) else None
        if not isinstance(properties, dict) or part not in properties:
            return None
        node = properties[part]
    node = resolve(node, schema)
    described = node.get("description") if isinstance(node, dict) else None
    return described if isinstance(described, str) and described.strip() else None


def _field_validator(node: Any, root: Mapping[str, Any]) -> Draft202012Validator | None:
    """A validator of one field's values; `$defs` come along for nested `$ref`s."""
    if not isinstance(node, dict) or not node:
        return None
    fragment = dict(node)
    for word in ("$defs", "definitions"):
        if word in root and word not in fragment:
            fragment[word] = root[word]
    try:
        return _validator(orjson.dumps(fragment, option=orjson.OPT_SORT_KEYS).decode())
    except SchemaError:
        return None


@functools.lru_cache(maxsize=1024)
def _validator(schema_json: str) -> Draft202012Validator:
    schema = orjson.loads(schema_json)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)

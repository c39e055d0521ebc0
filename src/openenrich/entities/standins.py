"""Stand-ins for the parts other branches build (saved schemas: `schema_store`; fusion:
`fusion`), the smallest that let enrichment run. Each is marked with what replaces it; the
callers use the interfaces as those modules name them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.entities.models import EntitySchema, EntitySchemaVersion
from openenrich.errors import NotFound
from openenrich.llm.gateway import Gateway, Result
from openenrich.tenancy.tenant import Tenant

# -- saved schemas ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SavedSchema:
    id: str
    version: int
    name: str
    entity_type: str
    json_schema: dict[str, Any]


async def load(
    session: AsyncSession, tenant: Tenant, schema_id: str, version: int | None = None
) -> SavedSchema:  # replaced at merge by schema_store.load
    row = await session.scalar(
        select(EntitySchema).where(
            EntitySchema.id == schema_id,
            EntitySchema.org_id == tenant.org_id,
            EntitySchema.environment == tenant.environment.value,
        )
    )
    if row is None:
        raise NotFound("Schema not found")
    if version is None or version == row.version:
        return SavedSchema(row.id, row.version, row.name, row.entity_type, row.json_schema)
    old = await session.get(EntitySchemaVersion, (schema_id, version))
    if old is None:
        raise NotFound(f"Schema version {version} not found")
    return SavedSchema(row.id, old.version, old.name, old.entity_type, old.json_schema)


@dataclass(frozen=True, slots=True)
class ExpertiseGroup:
    name: str
    properties: tuple[str, ...]
    instructions: str | None = None


def expertise_groups(json_schema: dict[str, Any]) -> list[ExpertiseGroup]:
    # replaced at merge by schema_store.expertise_groups
    """Properties grouped by their `x-expertise` (a name, or `{"name", "instructions"}`);
    those without one form the group `general`."""
    groups: dict[str, list[str]] = {}
    instructions: dict[str, str] = {}
    for name, sub in (json_schema.get("properties") or {}).items():
        label = sub.get("x-expertise") if isinstance(sub, dict) else None
        if isinstance(label, dict):
            if label.get("instructions"):
                instructions[str(label.get("name"))] = str(label["instructions"])
            label = label.get("name")
        groups.setdefault(str(label or "general"), []).append(name)
    return [
        ExpertiseGroup(name, tuple(properties), instructions.get(name))
        for name, properties in groups.items()
    ]


# -- fusion ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Fusion:
    value: dict[str, Any]
    fields: dict[str, dict[str, Any]]
    disputed: list[str] = field(default_factory=list)


def _canonical(value: Any) -> bytes:
    if isinstance(value, str):
        value = " ".join(value.split()).casefold()
    elif isinstance(value, list):
        return orjson.dumps(sorted(_canonical(v).decode() for v in value))
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def fuse(
    results_by_model: dict[str, dict[str, Any]], schema: dict[str, Any]
) -> Fusion:  # replaced at merge by fusion.fuse
    """Per top-level field: the majority value; without one, the most-supported value
    (the first model's on a tie), the field disputed."""
    models = list(results_by_model)
    names = list(
        dict.fromkeys(
            [*(schema.get("properties") or {})]
            + [name for result in results_by_model.values() for name in result]
        )
    )
    fusion = Fusion({}, {})
    for name in names:
        candidates = {model: results_by_model[model].get(name) for model in models}
        counts = Counter(_canonical(value) for value in candidates.values())
        best, support = counts.most_common(1)[0]
        agreed = [model for model, value in candidates.items() if _canonical(value) == best]
        chosen = candidates[agreed[0]]
        majority = support * 2 > len(models)
        fusion.value[name] = chosen
        fusion.fields[name] = {
            "value": chosen,
            "candidates": candidates,
            "agreed": agreed,
            "confidence": round(support / len(models), 4),
            "decided_by": "majority" if majority else "tie",
        }
        if not majority:
            fusion.disputed.append(name)
    return fusion


def _sub_schema(schema: dict[str, Any], names: list[str]) -> dict[str, Any]:
    properties = schema.get("properties") or {}
    sub: dict[str, Any] = {
        "type": "object",
        "properties": {name: properties.get(name, {}) for name in names},
        "required": names,
        "additionalProperties": False,
    }
    if "$defs" in schema:
        sub["$defs"] = schema["$defs"]
    return sub


async def arbitrate(
    gateway: Gateway,
    tenant: Tenant,
    model: str,
    fusion: Fusion,
    schema: dict[str, Any],
    entity: dict[str, Any],
    job_id: str | None = None,
) -> Result | None:  # replaced at merge by fusion.arbitrate
    """One call for the disputed fields: the arbiter's answer replaces them in `fusion`."""
    if not fusion.disputed:
        return None
    disputed = {name: fusion.fields[name]["candidates"] for name in fusion.disputed}
    prompt = (
        "Arbitrate between models that disagree on some fields of an entity.\n"
        f"Entity: {orjson.dumps(entity).decode()}\n"
        f"Candidates per field (by model): {orjson.dumps(disputed).decode()}\n"
        "Answer with the correct value of each field."
    )
    result = await gateway.complete(
        tenant, model, prompt, output_schema=_sub_schema(schema, fusion.disputed), job_id=job_id
    )
    for name in fusion.disputed:
        value = result.value.get(name)
        fusion.value[name] = value
        fusion.fields[name].update(value=value, decided_by="arbiter", arbiter=model)
    return result

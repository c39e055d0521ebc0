"""Saved schemas: the JSON Schemas entities are enriched against, every version kept.

A saved schema is a draft 2020-12 JSON Schema of one entity: an object with properties.
Every change adds a version (`entity_schema_versions`); the schema's row holds a copy of
the newest for listing. Records name the (schema id, version) they were made with and
outlive both, so an old version stays readable until the schema is deleted.

What a schema must be (`schema_problems`, a 400 naming each problem otherwise):
- at most 256 KB as JSON, and at most 500 properties counted at every depth;
- valid against the draft 2020-12 meta-schema (formats such as `regex` checked too);
  `$schema`, when given, is that draft's URI;
- `type: "object"` with at least one property;
- every `$ref` points into the schema itself (`#/$defs/address`): nothing is fetched;
- `x-expertise`, the name of the expertise group a property belongs to, is a non-empty
  string of at most 64 characters, on top-level properties only (a group is filled by one
  model call, and a call fills whole top-level properties).

Expertise groups (`expertise_groups`): when any top-level property has `x-expertise`, the
groups are those names, in the order they first appear, and the properties without one
form the group `general`. When none has, they are derived: a property that is an object
with properties of its own is a group named after it; the others, in schema order, are
`general`, then `general_2`, `general_3`, … of at most 8 properties each.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.entities.models import EntitySchema, EntitySchemaVersion
from openenrich.entities.schema_bodies import (
    SchemaBody,
    SchemaChanges,
    SchemaDeleted,
    SchemaList,
    SchemaOut,
    VersionList,
    VersionOut,
    VersionSummary,
)
from openenrich.errors import BadRequest, Conflict, NotFound
from openenrich.ids import new_uuid, parse_uuid, utcnow
from openenrich.tenancy.tenant import Tenant

DIALECT = "https://json-schema.org/draft/2020-12/schema"
MAX_SCHEMA_BYTES = 256 * 1024
MAX_PROPERTIES = 500
MAX_NAME = 200
MAX_ENTITY_TYPE = 64
MAX_DESCRIPTION = 10_000
MAX_GROUP_NAME = 64
GENERAL = "general"
GROUP_SIZE = 8  # properties per derived `general…` group
_PROBLEMS_SHOWN = 5
MAX_VERSION = 2**31 - 1

_VERSION = re.compile(r"[0-9]{1,9}")
_WHITESPACE = re.compile(r"\s+")
_META = Draft202012Validator(
    Draft202012Validator.META_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER
)

# Where a JSON Schema holds subschemas: maps of them, single ones, lists of them. Nothing
# else is walked: `const`, `enum`, `default` and `examples` hold data, not schemas.
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_ONES = (
    "items", "additionalItems", "additionalProperties", "unevaluatedProperties",
    "unevaluatedItems", "contains", "not", "if", "then", "else", "propertyNames",
    "contentSchema",
)  # fmt: skip
_SCHEMA_LISTS = ("prefixItems", "allOf", "anyOf", "oneOf")


class InvalidSchema(BadRequest):
    """A JSON Schema that cannot be saved; `problems` names each (`path: message`)."""

    def __init__(self, problems: list[str], subject: str = "json_schema") -> None:
        self.problems = problems
        shown = problems[:_PROBLEMS_SHOWN]
        if len(problems) > len(shown):
            shown.append(f"and {len(problems) - len(shown)} more")
        super().__init__(f"Invalid {subject}: {'; '.join(shown)}")


@dataclass(frozen=True, slots=True)
class SavedSchema:
    """One version of a schema, as the enrichment engine uses it."""

    id: str
    version: int
    name: str
    entity_type: str
    description: str | None
    json_schema: dict[str, Any]
    expertise_groups: dict[str, list[str]]


# -- the rules -----------------------------------------------------------------------------


def _subschemas(
    schema: dict[str, Any], path: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], dict[str, Any]]]:
    """Every (path, subschema) in `schema`, itself first; boolean subschemas left out."""
    yield path, schema
    for keyword in _SCHEMA_MAPS:
        children = schema.get(keyword)
        if isinstance(children, dict):
            for name, child in children.items():
                if isinstance(child, dict):
                    yield from _subschemas(child, (*path, keyword, name))
    for keyword in _SCHEMA_ONES:
        child = schema.get(keyword)
        if isinstance(child, dict):
            yield from _subschemas(child, (*path, keyword))
    for keyword in _SCHEMA_LISTS:
        children = schema.get(keyword)
        if isinstance(children, list):
            for index, child in enumerate(children):
                if isinstance(child, dict):
                    yield from _subschemas(child, (*path, keyword, index))


def _where(path: tuple[str | int, ...] | Any) -> str:
    return "/".join(str(part) for part in path) or "(root)"


def _meta_problems(schema: dict[str, Any]) -> list[str]:
    errors = sorted(_META.iter_errors(schema), key=lambda error: [str(p) for p in error.path])
    problems = []
    for error in errors:
        # The deepest, most specific cause (an `anyOf` of types names the bad one).
        cause = best_match([error])
        problems.append(f"{_where(cause.absolute_path)}: {cause.message}")
    return problems


def group_name(value: Any) -> str | None:
    """An `x-expertise` value as the group's name, or None when it cannot be one."""
    if not isinstance(value, str) or len(value) > MAX_GROUP_NAME:
        return None
    return value.strip() or None


def schema_problems(schema: Any) -> list[str]:
    """What keeps `schema` from being saved (`path: message` each), or nothing."""
    if not isinstance(schema, dict):
        return ["(root): must be a JSON object"]
    size = len(orjson.dumps(schema))
    if size > MAX_SCHEMA_BYTES:
        return [f"(root): {size:,} bytes as JSON; at most {MAX_SCHEMA_BYTES:,} (256 KB)"]
    problems = _meta_problems(schema)
    if problems:
        return problems
    dialect = schema.get("$schema")
    if dialect is not None and dialect.rstrip("#") != DIALECT:
        problems.append(f"$schema: must be {DIALECT} (or left out), not {dialect}")
    kind = schema.get("type")
    if kind != "object":
        shown = "" if kind is None else f", not {orjson.dumps(kind).decode()}"
        problems.append(f'type: must be "object" (an entity is a JSON object){shown}')
    if not schema.get("properties"):
        problems.append("properties: must name at least one property")
    count = 0
    for path, subschema in _subschemas(schema):
        properties = subschema.get("properties")
        if isinstance(properties, dict):
            count += len(properties)
        for keyword in ("$ref", "$dynamicRef"):
            if keyword in subschema and not _resolves(schema, subschema[keyword]):
                problems.append(
                    f"{_where((*path, keyword))}: {subschema[keyword]} does not point into "
                    "this schema (only local references, #/…, are followed)"
                )
        if "x-expertise" not in subschema:
            continue
        where = _where((*path, "x-expertise"))
        if len(path) != 2 or path[0] != "properties":
            problems.append(f"{where}: x-expertise is read on top-level properties only")
        elif group_name(subschema["x-expertise"]) is None:
            problems.append(
                f"{where}: must be a non-empty string of at most {MAX_GROUP_NAME} "
                "characters (the name of an expertise group)"
            )
    if count > MAX_PROPERTIES:
        problems.append(f"properties: {count} in all; at most {MAX_PROPERTIES}")
    return problems


def _resolves(schema: dict[str, Any], ref: str) -> bool:
    """Whether `ref` is `#` or a JSON Pointer fragment to a schema within `schema`. Other
    references (another document, an anchor) would fail when the schema is used, since
    validation never fetches anything."""
    if ref == "#":
        return True
    if not ref.startswith("#/"):
        return False
    target: Any = schema
    for token in unquote(ref[2:]).split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(target, dict) and token in target:
            target = target[token]
        elif isinstance(target, list) and token.isdigit() and int(token) < len(target):
            target = target[int(token)]
        else:
            return False
    return isinstance(target, dict | bool)


def check_json_schema(schema: Any) -> None:
    problems = schema_problems(schema)
    if problems:
        raise InvalidSchema(problems)


def _is_object(schema: Any) -> bool:
    if not isinstance(schema, dict):
        return False
    kind = schema.get("type")
    is_object = kind == "object" or (isinstance(kind, list) and "object" in kind)
    return is_object and isinstance(schema.get("properties"), dict) and bool(schema["properties"])


def expertise_groups(json_schema: dict[str, Any]) -> dict[str, list[str]]:
    """Group name → its top-level properties, in schema order (see the module's doc)."""
    properties = json_schema.get("properties")
    if not isinstance(properties, dict):
        return {}
    groups: dict[str, list[str]] = {}
    named = any(isinstance(p, dict) and "x-expertise" in p for p in properties.values())
    ungrouped = 0
    for name, prop in properties.items():
        if named:
            label = group_name(prop.get("x-expertise")) if isinstance(prop, dict) else None
            group = label or GENERAL
        elif _is_object(prop):
            group = name
        else:
            chunk = ungrouped // GROUP_SIZE
            group = GENERAL if chunk == 0 else f"{GENERAL}_{chunk + 1}"
            ungrouped += 1
        groups.setdefault(group, []).append(name)
    return groups


def _text(value: str, field: str, most: int) -> str:
    text = value.strip()
    if not text:
        raise BadRequest(f"{field} must not be blank")
    if len(text) > most:
        raise BadRequest(f"{field} must be at most {most} characters")
    return text


def entity_type(value: str) -> str:
    """Free text, stored lower-case with its whitespace runs made one space."""
    return _text(_WHITESPACE.sub(" ", value).lower(), "entity_type", MAX_ENTITY_TYPE)


def _description(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > MAX_DESCRIPTION:
        raise BadRequest(f"description must be at most {MAX_DESCRIPTION:,} characters")
    return value


def identity(name: str, kind: str, description: str | None) -> tuple[str, str, str | None]:
    """A new schema's name, entity type and description as they are saved (400s naming
    what is wrong): checked by `create`, and by the generation job's route before it
    starts a job that will save one."""
    return _text(name, "name", MAX_NAME), entity_type(kind), _description(description)


# -- reading -------------------------------------------------------------------------------


def not_found() -> NotFound:
    return NotFound("Schema not found")


async def find(session: AsyncSession, tenant: Tenant, schema_id: str) -> EntitySchema:
    """The tenant's schema, or the 404 (also for an id that is not a UUID)."""
    key = parse_uuid(schema_id)
    row = (
        None
        if key is None
        else await session.scalar(
            select(EntitySchema).where(EntitySchema.id == key, tenant.owns(EntitySchema))
        )
    )
    if row is None:
        raise not_found()
    return row


def render(row: EntitySchema) -> SchemaOut:
    return SchemaOut(
        id=row.id,
        name=row.name,
        entity_type=row.entity_type,
        description=row.description,
        version=row.version,
        json_schema=row.json_schema,
        expertise_groups=expertise_groups(row.json_schema),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def list_schemas(session: AsyncSession, tenant: Tenant) -> SchemaList:
    rows = await session.scalars(
        select(EntitySchema)
        .where(tenant.owns(EntitySchema))
        .order_by(EntitySchema.updated_at.desc(), EntitySchema.id.desc())
    )
    return SchemaList(schemas=[render(row) for row in rows])


async def get(session: AsyncSession, tenant: Tenant, schema_id: str) -> SchemaOut:
    return render(await find(session, tenant, schema_id))


async def _version_row(
    session: AsyncSession, tenant: Tenant, schema_id: str, version: int | str
) -> tuple[EntitySchema, EntitySchemaVersion]:
    schema = await find(session, tenant, schema_id)
    number = version if isinstance(version, int) else _parse_version(version)
    if number is not None and not 0 < number <= MAX_VERSION:
        number = None  # past what the column holds: asking would be an error, not a miss
    row = None if number is None else await session.get(EntitySchemaVersion, (schema.id, number))
    if row is None:
        raise NotFound(f"Schema version {version} not found")
    return schema, row


def _parse_version(text: str) -> int | None:
    return int(text) if _VERSION.fullmatch(text) else None


async def versions(session: AsyncSession, tenant: Tenant, schema_id: str) -> VersionList:
    schema = await find(session, tenant, schema_id)
    rows = await session.scalars(
        select(EntitySchemaVersion)
        .where(EntitySchemaVersion.schema_id == schema.id)
        .order_by(EntitySchemaVersion.version.desc())
    )
    return VersionList(
        schema_id=schema.id,
        versions=[
            VersionSummary(
                version=row.version,
                name=row.name,
                entity_type=row.entity_type,
                description=row.description,
                change=row.change,
                note=row.note,
                created_at=row.created_at,
            )
            for row in rows
        ],
    )


async def version(session: AsyncSession, tenant: Tenant, schema_id: str, number: str) -> VersionOut:
    schema, row = await _version_row(session, tenant, schema_id, number)
    return VersionOut(
        schema_id=schema.id,
        version=row.version,
        name=row.name,
        entity_type=row.entity_type,
        description=row.description,
        json_schema=row.json_schema,
        expertise_groups=expertise_groups(row.json_schema),
        change=row.change,
        note=row.note,
        created_at=row.created_at,
    )


async def load(
    session: AsyncSession, tenant: Tenant, schema_id: str, version: int | None = None
) -> SavedSchema:
    """The schema as the enrichment engine uses it: its newest version, or `version`.
    NotFound for another tenant's schema, an id that is not a UUID, a missing version."""
    if version is None:
        row = await find(session, tenant, schema_id)
        return SavedSchema(
            row.id, row.version, row.name, row.entity_type, row.description,
            row.json_schema, expertise_groups(row.json_schema),
        )  # fmt: skip
    schema, old = await _version_row(session, tenant, schema_id, version)
    return SavedSchema(
        schema.id, old.version, old.name, old.entity_type, old.description,
        old.json_schema, expertise_groups(old.json_schema),
    )  # fmt: skip


# -- writing -------------------------------------------------------------------------------


def _version_of(row: EntitySchema, change: str, note: str | None) -> EntitySchemaVersion:
    return EntitySchemaVersion(
        schema_id=row.id,
        version=row.version,
        name=row.name,
        entity_type=row.entity_type,
        description=row.description,
        json_schema=row.json_schema,
        change=change,
        note=note,
        created_at=row.updated_at,
    )


async def create(session: AsyncSession, tenant: Tenant, body: SchemaBody) -> SchemaOut:
    name, kind, description = identity(body.name, body.entity_type, body.description)
    check_json_schema(body.json_schema)
    now = utcnow()
    row = EntitySchema(
        id=new_uuid(),
        org_id=tenant.org_id,
        environment=tenant.environment.value,
        name=name,
        entity_type=kind,
        description=description,
        version=1,
        json_schema=body.json_schema,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.add(_version_of(row, "created", None))
    await session.flush()
    return render(row)


def _changes(row: EntitySchema, changes: SchemaChanges) -> dict[str, Any]:
    """The checked values of `changes` that differ from the row's."""
    given = changes.model_fields_set
    if not given:
        raise BadRequest("Nothing to change: give name, entity_type, description or json_schema")
    values: dict[str, Any] = {}
    if "name" in given:
        if changes.name is None:
            raise BadRequest("name must not be null")
        values["name"] = _text(changes.name, "name", MAX_NAME)
    if "entity_type" in given:
        if changes.entity_type is None:
            raise BadRequest("entity_type must not be null")
        values["entity_type"] = entity_type(changes.entity_type)
    if "description" in given:
        values["description"] = _description(changes.description)
    if "json_schema" in given:
        if changes.json_schema is None:
            raise BadRequest("json_schema must not be null")
        check_json_schema(changes.json_schema)
        values["json_schema"] = changes.json_schema
    return {name: value for name, value in values.items() if getattr(row, name) != value}


async def update_schema(
    session: AsyncSession,
    tenant: Tenant,
    schema_id: str,
    changes: SchemaChanges,
    *,
    change: str = "updated",
    note: str | None = None,
    expected_version: int | None = None,
) -> SchemaOut:
    """Apply `changes` as a new version (`change`: "updated" for a PUT, "ai_edit" with
    the instruction as `note`). Values equal to the current ones change nothing, and a
    body that changes nothing adds no version. With `expected_version`, a schema that
    moved past it meanwhile is a 409 and nothing is saved."""
    row = await find(session, tenant, schema_id)
    values = _changes(row, changes)
    if expected_version is not None and row.version != expected_version:
        raise _moved(row.version, expected_version)
    if not values:
        return render(row)
    # One statement takes the next number: a concurrent change waits for this one's row
    # lock (PostgreSQL) or the write lock (SQLite) and then takes the number after it.
    statement = (
        update(EntitySchema)
        .where(EntitySchema.id == row.id)
        .values(**values, version=EntitySchema.version + 1, updated_at=utcnow())
        .returning(EntitySchema.version)
        .execution_options(synchronize_session=False)
    )
    if expected_version is not None:
        statement = statement.where(EntitySchema.version == expected_version)
    number = await session.scalar(statement)
    if number is None:
        raise _moved(None, expected_version)
    await session.refresh(row)
    session.add(_version_of(row, change, note))
    await session.flush()
    return render(row)


def _moved(current: int | None, expected: int | None) -> Conflict:
    now = f" (it is at version {current})" if current is not None else ""
    return Conflict(f"The schema changed since version {expected}{now}: nothing was saved")


async def delete_schema(session: AsyncSession, tenant: Tenant, schema_id: str) -> SchemaDeleted:
    """The schema and its versions; records keep naming them."""
    row = await find(session, tenant, schema_id)
    count = await session.scalar(
        select(func.count())
        .select_from(EntitySchemaVersion)
        .where(EntitySchemaVersion.schema_id == row.id)
    )
    # Versions first and explicitly: SQLite enforces the cascade only with foreign keys on.
    await session.execute(
        delete(EntitySchemaVersion).where(EntitySchemaVersion.schema_id == row.id)
    )
    await session.delete(row)
    await session.flush()
    return SchemaDeleted(id=row.id, versions_deleted=count or 0)

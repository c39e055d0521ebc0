"""Saved schemas over HTTP (/api/schema/saved…): the reference's listing, versions, every
bad input's 400, tenants, roles; and `load` / `expertise_groups` as the engine uses them."""

from __future__ import annotations

import copy
import json
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from entities.conftest import COMPANY_SCHEMA, Api
from helpers.tenants import Tenants
from openenrich.entities import schema_store
from openenrich.entities.schema_bodies import SchemaChanges
from openenrich.entities.schema_store import SavedSchema, expertise_groups
from openenrich.errors import Conflict, NotFound
from openenrich.tenancy.tenant import Tenant

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
FIELDS = {
    "id",
    "name",
    "entity_type",
    "description",
    "version",
    "json_schema",
    "expertise_groups",
    "created_at",
    "updated_at",
}
PERSON_SCHEMA = {
    "type": "object",
    "properties": {"full_name": {"type": "string"}, "title": {"type": "string"}},
}


def test_the_reference_workflow_reads_the_first_saved_schema(api: Api) -> None:
    created = api.create_schema()
    # schemas = httpx.get(f"{BASE}/api/schema/saved", headers=HEADERS).json()
    # schema_id = schemas["schemas"][0]["id"]
    schemas = api.ok(api.get("/api/schema/saved"))
    schema_id = schemas["schemas"][0]["id"]
    assert schema_id == created["id"]
    assert set(schemas) == {"schemas"}


def test_create_answers_the_saved_schema(api: Api) -> None:
    schema = api.create_schema(
        name="  Pharma companies ", entity_type="  Public\tCompany ", description="Big pharma"
    )
    assert set(schema) == FIELDS
    assert UUID.fullmatch(schema["id"])
    assert schema["name"] == "Pharma companies"
    assert schema["entity_type"] == "public company"  # lower-case, whitespace made one space
    assert schema["description"] == "Big pharma"
    assert schema["version"] == 1
    assert schema["json_schema"] == COMPANY_SCHEMA
    assert schema["expertise_groups"] == {
        "company_profile": ["legal_name", "founded_year"],
        "financials": ["annual_revenue_usd"],
        "general": ["website"],  # no x-expertise of its own
    }
    assert ISO.fullmatch(schema["created_at"])
    assert schema["updated_at"] == schema["created_at"]
    assert api.ok(api.get(f"/api/schema/saved/{schema['id']}")) == schema
    # The description is optional; property order is kept as sent.
    bare = api.create_schema(json_schema=PERSON_SCHEMA, entity_type="person")
    assert bare["description"] is None
    assert list(bare["json_schema"]["properties"]) == ["full_name", "title"]


def test_the_list_is_most_recently_changed_first(api: Api) -> None:
    first = api.create_schema(name="first")
    second = api.create_schema(name="second")
    listed = api.ok(api.get("/api/schema/saved"))["schemas"]
    assert [s["name"] for s in listed] == ["second", "first"]
    assert listed[0] == second
    api.ok(api.put(f"/api/schema/saved/{first['id']}", {"description": "changed"}))
    listed = api.ok(api.get("/api/schema/saved"))["schemas"]
    assert [s["name"] for s in listed] == ["first", "second"]
    assert all(set(s) == FIELDS for s in listed)


def test_every_change_is_a_version_and_old_ones_stay_readable(api: Api) -> None:
    created = api.create_schema(description="v1")
    path = f"/api/schema/saved/{created['id']}"
    changed = copy.deepcopy(COMPANY_SCHEMA)
    changed["properties"]["employees"] = {"type": "integer", "x-expertise": "company_profile"}

    v2 = api.ok(api.put(path, {"json_schema": changed}))
    assert v2["version"] == 2
    assert v2["json_schema"] == changed
    assert v2["name"] == created["name"]
    assert v2["description"] == "v1"
    assert v2["created_at"] == created["created_at"]
    assert v2["updated_at"] >= created["updated_at"]
    assert v2["expertise_groups"]["company_profile"] == ["legal_name", "founded_year", "employees"]

    # A partial update keeps the rest, the schema included; null clears the description.
    v3 = api.ok(api.put(path, {"name": "Renamed", "entity_type": "ORG", "description": None}))
    assert (v3["version"], v3["name"], v3["entity_type"]) == (3, "Renamed", "org")
    assert v3["description"] is None
    assert v3["json_schema"] == changed
    assert api.ok(api.get(path)) == v3

    # Values equal to the current ones change nothing: no new version.
    same = api.ok(api.put(path, {"name": "Renamed", "json_schema": changed}))
    assert same == v3

    versions = api.ok(api.get(f"{path}/versions"))
    assert versions["schema_id"] == created["id"]
    assert [(v["version"], v["change"], v["note"]) for v in versions["versions"]] == [
        (3, "updated", None),
        (2, "updated", None),
        (1, "created", None),
    ]
    assert set(versions["versions"][0]) == {
        "version", "name", "entity_type", "description", "change", "note", "created_at",
    }  # fmt: skip

    first = api.ok(api.get(f"{path}/versions/1"))
    assert first == {
        "schema_id": created["id"],
        "version": 1,
        "name": created["name"],
        "entity_type": "company",
        "description": "v1",
        "json_schema": COMPANY_SCHEMA,
        "expertise_groups": created["expertise_groups"],
        "change": "created",
        "note": None,
        "created_at": created["created_at"],
    }
    assert api.ok(api.get(f"{path}/versions/2"))["json_schema"] == changed
    assert api.ok(api.get(f"{path}/versions/3"))["name"] == "Renamed"


def test_concurrent_changes_each_get_a_version(api: Api) -> None:
    created = api.create_schema()
    path = f"/api/schema/saved/{created['id']}"

    def rename(n: int) -> int:
        answer = api.put(path, {"name": f"name {n}"})
        assert answer.status_code == 200, answer.text
        version: int = answer.json()["version"]
        return version

    with ThreadPoolExecutor(8) as pool:
        numbers = sorted(pool.map(rename, range(8)))
    assert numbers == list(range(2, 10))
    versions = api.ok(api.get(f"{path}/versions"))["versions"]
    assert [v["version"] for v in versions] == list(range(9, 0, -1))
    current = api.ok(api.get(path))
    assert current["version"] == 9
    assert current["name"] == versions[0]["name"]


def test_delete_removes_the_schema_and_its_versions(api: Api) -> None:
    kept = api.create_schema(name="kept")
    created = api.create_schema()
    path = f"/api/schema/saved/{created['id']}"
    api.ok(api.put(path, {"name": "v2"}))
    assert api.ok(api.delete(path)) == {
        "id": created["id"],
        "deleted": True,
        "versions_deleted": 2,
    }
    for gone in (path, f"{path}/versions", f"{path}/versions/1"):
        answer = api.get(gone)
        assert answer.status_code == 404
        assert answer.json() == {"detail": "Schema not found"}
    assert api.delete(path).status_code == 404
    assert api.put(path, {"name": "again"}).status_code == 404
    assert [s["id"] for s in api.ok(api.get("/api/schema/saved"))["schemas"]] == [kept["id"]]
    # The other schema's versions are untouched.
    assert api.get(f"/api/schema/saved/{kept['id']}/versions/1").status_code == 200


def described(size: int) -> dict[str, Any]:
    """A schema of `size` bytes as compact JSON (a long description makes up the size)."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {"a": {"type": "string", "description": ""}},
    }
    filler = size - len(json.dumps(schema, separators=(",", ":")))
    schema["properties"]["a"]["description"] = "x" * filler
    return schema


def big_schema(properties: int) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {f"p{n}": {"type": "string"} for n in range(properties)},
    }


BAD_SCHEMAS: list[tuple[str, Any, str]] = [
    (
        "not an object",
        ["type", "object"],
        "json_schema: Input should be a valid dictionary",
    ),
    (
        "an array schema",
        {"type": "array", "items": {"type": "string"}},
        'Invalid json_schema: type: must be "object" (an entity is a JSON object), not "array"; '
        "properties: must name at least one property",
    ),
    (
        "no type",
        {"properties": {"a": {"type": "string"}}},
        'Invalid json_schema: type: must be "object" (an entity is a JSON object)',
    ),
    (
        "no properties",
        {"type": "object"},
        "Invalid json_schema: properties: must name at least one property",
    ),
    (
        "empty properties",
        {"type": "object", "properties": {}},
        "Invalid json_schema: properties: must name at least one property",
    ),
    (
        "an unknown type",
        {"type": "object", "properties": {"name": {"type": "strin"}}},
        "Invalid json_schema: properties/name/type: "
        "'strin' is not valid under any of the given schemas",
    ),
    (
        "properties as a list",
        {"type": "object", "properties": ["name"]},
        "Invalid json_schema: properties: ['name'] is not of type 'object'",
    ),
    (
        "a bad regex and a negative length",
        {
            "type": "object",
            "properties": {"a": {"type": "string", "pattern": "("}, "b": {"minLength": -1}},
        },
        "Invalid json_schema: properties/a/pattern: '(' is not a 'regex'; "
        "properties/b/minLength: -1 is less than the minimum of 0",
    ),
    (
        "required as a string",
        {"type": "object", "properties": {"a": {}}, "required": "a"},
        "Invalid json_schema: required: 'a' is not of type 'array'",
    ),
    (
        "another draft",
        {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {"a": {"type": "string"}},
        },
        "Invalid json_schema: $schema: must be https://json-schema.org/draft/2020-12/schema "
        "(or left out), not http://json-schema.org/draft-07/schema#",
    ),
    (
        "an empty x-expertise",
        {"type": "object", "properties": {"a": {"type": "string", "x-expertise": " "}}},
        "Invalid json_schema: properties/a/x-expertise: must be a non-empty string of at "
        "most 64 characters (the name of an expertise group)",
    ),
    (
        "a number as x-expertise",
        {"type": "object", "properties": {"a": {"type": "string", "x-expertise": 3}}},
        "Invalid json_schema: properties/a/x-expertise: must be a non-empty string of at "
        "most 64 characters (the name of an expertise group)",
    ),
    (
        "a long x-expertise",
        {"type": "object", "properties": {"a": {"type": "string", "x-expertise": "g" * 65}}},
        "Invalid json_schema: properties/a/x-expertise: must be a non-empty string of at "
        "most 64 characters (the name of an expertise group)",
    ),
    (
        "a nested x-expertise",
        {
            "type": "object",
            "properties": {
                "hq": {
                    "type": "object",
                    "properties": {"city": {"type": "string", "x-expertise": "geo"}},
                },
                "tags": {"type": "array", "items": {"type": "string", "x-expertise": "x"}},
            },
            "x-expertise": "root",
        },
        "Invalid json_schema: x-expertise: x-expertise is read on top-level properties only; "
        "properties/hq/properties/city/x-expertise: x-expertise is read on top-level "
        "properties only; properties/tags/items/x-expertise: x-expertise is read on "
        "top-level properties only",
    ),
    (
        "references that do not resolve",
        {
            "type": "object",
            "$defs": {"address": {"type": "object"}},
            "properties": {
                "hq": {"$ref": "#/$defs/adress"},
                "remote": {"$ref": "https://example.com/schema.json"},
                "anchor": {"$ref": "#home"},
                "ok": {"$ref": "#/$defs/address"},
                "self": {"$ref": "#"},
            },
        },
        "Invalid json_schema: properties/hq/$ref: #/$defs/adress does not point into this "
        "schema (only local references, #/…, are followed); properties/remote/$ref: "
        "https://example.com/schema.json does not point into this schema (only local "
        "references, #/…, are followed); properties/anchor/$ref: #home does not point into "
        "this schema (only local references, #/…, are followed)",
    ),
    (
        "501 properties",
        big_schema(501),
        "Invalid json_schema: properties: 501 in all; at most 500",
    ),
    (
        "501 properties counted at every depth",
        {
            "type": "object",
            "properties": {"outer": big_schema(500)},
        },
        "Invalid json_schema: properties: 501 in all; at most 500",
    ),
    (
        "over 256 KB",
        described(262_145),
        "Invalid json_schema: (root): 262,145 bytes as JSON; at most 262,144 (256 KB)",
    ),
]


@pytest.mark.parametrize(
    ("json_schema", "detail"),
    [(schema, detail) for _, schema, detail in BAD_SCHEMAS],
    ids=[name for name, _, _ in BAD_SCHEMAS],
)
def test_a_bad_json_schema_is_a_400_naming_the_problem(
    api: Api, json_schema: Any, detail: str
) -> None:
    body = {"name": "Bad", "entity_type": "company", "json_schema": json_schema}
    answer = api.post("/api/schema/saved", body)
    assert answer.status_code == 400, answer.text
    assert answer.json() == {"detail": detail}
    # The same schema on a PUT: refused, and no version added.
    created = api.create_schema()
    path = f"/api/schema/saved/{created['id']}"
    answer = api.put(path, {"json_schema": json_schema})
    assert answer.status_code == 400, answer.text
    assert answer.json() == {"detail": detail}
    assert api.ok(api.get(path)) == created
    assert len(api.ok(api.get(f"{path}/versions"))["versions"]) == 1
    assert [s["id"] for s in api.ok(api.get("/api/schema/saved"))["schemas"]] == [created["id"]]


def test_a_schema_within_the_limits_is_saved(api: Api) -> None:
    many = api.create_schema(json_schema=big_schema(500))
    assert len(many["json_schema"]["properties"]) == 500
    # Derived groups: 8 properties each.
    assert list(many["expertise_groups"])[:3] == ["general", "general_2", "general_3"]
    assert len(many["expertise_groups"]) == 63
    assert many["expertise_groups"]["general_63"] == ["p496", "p497", "p498", "p499"]
    # 256 KB exactly, as JSON.
    exact = described(262_144)
    assert api.create_schema(json_schema=exact)["json_schema"] == exact
    # `$schema` may name draft 2020-12 with or without the empty fragment.
    for dialect in (
        "https://json-schema.org/draft/2020-12/schema",
        "https://json-schema.org/draft/2020-12/schema#",
    ):
        api.create_schema(json_schema={**PERSON_SCHEMA, "$schema": dialect})
    # A property literally named x-expertise is a property, not the keyword; data in
    # `examples` or `const` is not looked into.
    odd = {
        "type": "object",
        "properties": {
            "x-expertise": {"type": "string", "examples": [{"x-expertise": 3}]},
            "kind": {"const": {"x-expertise": ""}},
        },
    }
    assert api.create_schema(json_schema=odd)["expertise_groups"] == {
        "general": ["x-expertise", "kind"]
    }
    # Local references, escaped as JSON Pointer and URI fragments escape them.
    referring = {
        "type": "object",
        "$defs": {"a/b": {"type": "string"}, "c d": {"type": "string"}},
        "properties": {
            "one": {"$ref": "#/$defs/a~1b"},
            "two": {"$ref": "#/$defs/c%20d"},
            "three": {"$ref": "#/properties/one"},
            "list": {"anyOf": [{"type": "null"}, {"$ref": "#/properties/list/anyOf/0"}]},
        },
    }
    api.create_schema(json_schema=referring)


NOT_NULL = "{} must not be null"
BAD_FIELDS: list[tuple[str, dict[str, Any], str, str]] = [
    # (case, fields, the POST's detail, the PUT's detail)
    ("null name", {"name": None}, "name: Input should be a valid string", NOT_NULL),
    ("a blank name", {"name": "  "}, "name must not be blank", ""),
    ("a long name", {"name": "n" * 201}, "name must be at most 200 characters", ""),
    (
        "null entity type",
        {"entity_type": None},
        "entity_type: Input should be a valid string",
        NOT_NULL,
    ),
    ("a blank entity type", {"entity_type": "\t"}, "entity_type must not be blank", ""),
    (
        "a long entity type",
        {"entity_type": "t" * 65},
        "entity_type must be at most 64 characters",
        "",
    ),
    (
        "a long description",
        {"description": "d" * 10_001},
        "description must be at most 10,000 characters",
        "",
    ),
    (
        "a number as description",
        {"description": 3},
        "description: Input should be a valid string",
        "",
    ),
    ("an unknown field", {"schema": {}}, "schema: Extra inputs are not permitted", ""),
]


@pytest.mark.parametrize(
    ("fields", "post_detail", "put_detail"),
    [case[1:] for case in BAD_FIELDS],
    ids=[case[0] for case in BAD_FIELDS],
)
def test_bad_fields_are_a_400_naming_them(
    api: Api, fields: dict[str, Any], post_detail: str, put_detail: str
) -> None:
    body = {"name": "Ok", "entity_type": "company", "json_schema": PERSON_SCHEMA, **fields}
    answer = api.post("/api/schema/saved", body)
    assert answer.status_code == 400, answer.text
    assert answer.json() == {"detail": post_detail}
    created = api.create_schema()
    path = f"/api/schema/saved/{created['id']}"
    answer = api.put(path, fields)
    assert answer.status_code == 400, answer.text
    assert answer.json() == {"detail": put_detail.format(*fields) or post_detail}
    assert api.ok(api.get(path))["version"] == 1


def test_bad_bodies_are_a_400(api: Api) -> None:
    created = api.create_schema()
    path = f"/api/schema/saved/{created['id']}"
    for method, where in (("POST", "/api/schema/saved"), ("PUT", path)):
        answer = api.client.request(method, where, headers=api.headers, content=b'{"name": "x",')
        assert answer.status_code == 400
        assert answer.json()["detail"].startswith("Request body is not valid JSON")
        answer = api.request(method, where, ["a list"])
        assert answer.status_code == 400
        assert answer.json() == {"detail": "Request body must be a JSON object"}
    answer = api.put(path, {})
    assert answer.status_code == 400
    assert answer.json() == {
        "detail": "Nothing to change: give name, entity_type, description or json_schema"
    }
    answer = api.put(path, {"json_schema": None})
    assert answer.json() == {"detail": "json_schema must not be null"}
    answer = api.post("/api/schema/saved", {"name": "x", "entity_type": "company"})
    assert answer.json() == {"detail": "json_schema: is required"}


def test_another_tenant_gets_404(api: Api, other: Api, client: Any, tenants: Tenants) -> None:
    created = api.create_schema()
    path = f"/api/schema/saved/{created['id']}"
    test_environment = Api(client, tenants.key("acme", environment="test"))
    for stranger in (other, test_environment):
        for method, where, body in (
            ("GET", path, None),
            ("PUT", path, {"name": "mine"}),
            ("DELETE", path, None),
            ("GET", f"{path}/versions", None),
            ("GET", f"{path}/versions/1", None),
        ):
            answer = stranger.request(method, where, body)
            assert answer.status_code == 404, (method, where)
            assert answer.json() == {"detail": "Schema not found"}
        assert stranger.ok(stranger.get("/api/schema/saved")) == {"schemas": []}
    assert api.ok(api.get(path)) == created


@pytest.mark.parametrize(
    "schema_id",
    [
        "not-a-uuid",
        "00000000-0000-7000-8000-000000000000",
        "0" * 36,
        "x" * 300,
        "1",
    ],
)
def test_ids_that_name_no_schema_are_404(api: Api, schema_id: str) -> None:
    api.create_schema()
    for method, where, body in (
        ("GET", f"/api/schema/saved/{schema_id}", None),
        ("PUT", f"/api/schema/saved/{schema_id}", {"name": "x"}),
        ("DELETE", f"/api/schema/saved/{schema_id}", None),
        ("GET", f"/api/schema/saved/{schema_id}/versions", None),
        ("GET", f"/api/schema/saved/{schema_id}/versions/1", None),
    ):
        answer = api.request(method, where, body)
        assert answer.status_code == 404, (method, where)
        assert answer.json() == {"detail": "Schema not found"}


def test_ids_are_read_in_any_case_and_versions_that_do_not_exist_are_404(api: Api) -> None:
    created = api.create_schema()
    assert api.ok(api.get(f"/api/schema/saved/{created['id'].upper()}")) == created
    path = f"/api/schema/saved/{created['id']}/versions"
    for version in ("0", "2", "999999999", "9" * 30, "-1", "1.0", "abc", "%201"):
        answer = api.get(f"{path}/{version}")
        assert answer.status_code == 404, version
        shown = version.replace("%20", " ")
        assert answer.json() == {"detail": f"Schema version {shown} not found"}


def test_a_read_key_may_read_but_not_write(api: Api, client: Any, tenants: Tenants) -> None:
    created = api.create_schema()
    path = f"/api/schema/saved/{created['id']}"
    reader = Api(client, tenants.key("acme", role="read"))
    assert reader.ok(reader.get("/api/schema/saved"))["schemas"] == [created]
    assert reader.ok(reader.get(path)) == created
    assert reader.ok(reader.get(f"{path}/versions"))["versions"][0]["version"] == 1
    assert reader.ok(reader.get(f"{path}/versions/1"))["version"] == 1
    for method, where, body in (
        ("POST", "/api/schema/saved", {"name": "x", "entity_type": "c", "json_schema": {}}),
        ("PUT", path, {"name": "mine"}),
        ("DELETE", path, None),
    ):
        answer = reader.request(method, where, body)
        assert answer.status_code == 403
        assert answer.json()["detail"].startswith("Insufficient role: this API key is read-only")
    assert api.ok(api.get(path)) == created


def test_no_key_is_a_401(client: Any) -> None:
    answer = client.get("/api/schema/saved")
    assert answer.status_code == 401
    assert answer.json() == {"detail": "Invalid, revoked, or expired API key"}


# -- for the engine: load() and the groups -------------------------------------------------


def test_load_reads_the_newest_or_a_given_version(
    api: Api, tenants: Tenants, tenant: Tenant
) -> None:
    created = api.create_schema()
    api.ok(api.put(f"/api/schema/saved/{created['id']}", {"json_schema": PERSON_SCHEMA}))

    async def work(session: AsyncSession) -> list[Any]:
        loaded: list[Any] = [
            await schema_store.load(session, tenant, created["id"]),
            await schema_store.load(session, tenant, created["id"], version=1),
        ]
        for schema_id, version in (
            (created["id"], 3),
            (created["id"], 0),
            (created["id"], 2**40),
            ("not-a-uuid", None),
            ("00000000-0000-7000-8000-000000000000", None),
        ):
            try:
                await schema_store.load(session, tenant, schema_id, version)
            except NotFound as error:
                loaded.append(error.message)
        return loaded

    newest, first, *missing = tenants.run(work)
    assert newest == SavedSchema(
        id=created["id"],
        version=2,
        name="Pharma companies",
        entity_type="company",
        description=None,
        json_schema=PERSON_SCHEMA,
        expertise_groups={"general": ["full_name", "title"]},
    )
    assert first.version == 1
    assert first.json_schema == COMPANY_SCHEMA
    assert first.expertise_groups == created["expertise_groups"]
    assert missing == [
        "Schema version 3 not found",
        "Schema version 0 not found",
        f"Schema version {2**40} not found",
        "Schema not found",
        "Schema not found",
    ]


def test_an_ai_edit_is_saved_as_a_version_of_the_schema_it_started_from(
    api: Api, tenants: Tenants, tenant: Tenant
) -> None:
    """What the AI-edit job does on success: a version with change ai_edit and the
    instruction, only if the schema is still at the version the edit started from."""
    created = api.create_schema()
    path = f"/api/schema/saved/{created['id']}"

    def save(expected: int) -> Any:
        async def work(session: AsyncSession) -> Any:
            try:
                return await schema_store.update_schema(
                    session,
                    tenant,
                    created["id"],
                    SchemaChanges(json_schema=PERSON_SCHEMA),
                    change="ai_edit",
                    note="Make it a person",
                    expected_version=expected,
                )
            except Conflict as error:
                return error

        return tenants.run(work)

    saved = save(expected=1)
    assert saved.version == 2
    assert saved.json_schema == PERSON_SCHEMA
    latest = api.ok(api.get(f"{path}/versions"))["versions"][0]
    assert (latest["version"], latest["change"], latest["note"]) == (
        2,
        "ai_edit",
        "Make it a person",
    )
    # The schema moved on meanwhile (a PUT): the edit is refused, nothing saved.
    api.ok(api.put(path, {"name": "Changed meanwhile"}))
    refused = save(expected=2)
    assert isinstance(refused, Conflict)
    assert refused.status_code == 409
    assert refused.message == (
        "The schema changed since version 2 (it is at version 3): nothing was saved"
    )
    assert api.ok(api.get(path))["version"] == 3


def test_load_refuses_another_tenant(other: Api, tenants: Tenants, tenant: Tenant) -> None:
    theirs = other.create_schema()

    async def work(session: AsyncSession) -> str:
        try:
            await schema_store.load(session, tenant, theirs["id"])
        except NotFound as error:
            return error.message
        return "found"

    assert tenants.run(work) == "Schema not found"


def test_groups_are_derived_when_no_property_names_one() -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "headquarters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
            },
            **{f"f{n}": {"type": "number"} for n in range(9)},
            "ceo": {"type": ["object", "null"], "properties": {"name": {"type": "string"}}},
            "tags": {"type": "array", "items": {"type": "string"}},
            "empty": {"type": "object"},  # no properties of its own: not a group
        },
    }
    assert expertise_groups(schema) == {
        "general": ["name", "f0", "f1", "f2", "f3", "f4", "f5", "f6"],
        "headquarters": ["headquarters"],
        "general_2": ["f7", "f8", "tags", "empty"],
        "ceo": ["ceo"],
    }
    assert expertise_groups({"type": "object", "properties": {}}) == {}


def test_named_groups_keep_their_order_and_the_rest_is_general() -> None:
    schema = {
        "type": "object",
        "properties": {
            "website": {"type": "string"},
            "revenue": {"type": "number", "x-expertise": " financials "},
            "name": {"type": "string", "x-expertise": "profile"},
            "hq": {"type": "object", "properties": {"city": {"type": "string"}}},
            "profit": {"type": "number", "x-expertise": "financials"},
        },
    }
    assert expertise_groups(schema) == {
        "general": ["website", "hq"],
        "financials": ["revenue", "profit"],
        "profile": ["name"],
    }

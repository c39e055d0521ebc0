"""A lead's fields as templates see them: `{{field}}` placeholders, the fields a tenant's
templates may name, and adding keys to `custom_fields` without losing anyone else's.

A placeholder names a lead field (`company`, `first_name`, …), `email`, or a custom-field
key. Which custom-field keys exist is kept in `lead_field_keys`, written by whoever adds
keys (an upload names its batch's keys once; a job the keys it writes), so checking a
template costs a few rows. A key written before that table knew it (or by a writer that
does not name its keys) is still found: a placeholder the table does not know is looked
for in the tenant's most recent leads (`RECENT_SCAN` of them), and remembered when found.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.db import table
from openenrich.errors import BadRequest
from openenrich.ids import utcnow
from openenrich.leads.models import FIELD_KEY_LENGTH, LEAD_FIELDS, Lead, LeadFieldKey
from openenrich.tenancy.tenant import Tenant

# The lead's own fields a template may name, in the reference's order.
LEAD_TEMPLATE_FIELDS = ("email", *LEAD_FIELDS)
RECENT_SCAN = 10_000  # leads looked through for a key the table does not know
KNOWN_LISTED = 200  # known fields named in an error message at most
UNKNOWN_LISTED = 10  # unknown names looked for among the leads, and named, at most

# `{{ name }}`: anything but braces between double braces, spaces around it ignored.
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")

_keys = table(LeadFieldKey)
_leads = table(Lead)

_KNOWN_KEYS = (
    select(_keys.c.key)
    .where(_keys.c.org_id == bindparam("org_id"), _keys.c.environment == bindparam("environment"))
    .order_by(_keys.c.key)
)


def placeholders(template: str) -> list[str]:
    """The names a template's placeholders use, each once, in order of appearance."""
    return list(dict.fromkeys(_PLACEHOLDER.findall(template)))


def render(template: str, lead: Mapping[str, Any]) -> str:
    """The template with each placeholder replaced by the lead's value: a lead field, else
    a custom field (a non-string value as JSON), else nothing."""

    def value(match: re.Match[str]) -> str:
        found = field_value(lead, match.group(1))
        if found is None:
            return ""
        return found if isinstance(found, str) else orjson.dumps(found).decode()

    return _PLACEHOLDER.sub(value, template)


def field_value(lead: Mapping[str, Any], name: str) -> Any:
    """A lead's value for `name`: a lead field, else a custom field."""
    if name in LEAD_TEMPLATE_FIELDS:
        return lead.get(name)
    custom = lead.get("custom_fields")
    return custom.get(name) if isinstance(custom, dict) else None


async def known_custom_keys(session: AsyncSession, tenant: Tenant) -> list[str]:
    owner = {"org_id": tenant.org_id, "environment": tenant.environment.value}
    return list(await session.scalars(_KNOWN_KEYS, owner))


async def remember_keys(session: AsyncSession, tenant: Tenant, keys: Iterable[str]) -> None:
    """Note custom-field keys a write added (one statement; known ones are left alone).
    Keys too long to be a placeholder's name are not noted."""
    fresh = sorted({key for key in keys if 0 < len(key) <= FIELD_KEY_LENGTH})
    if not fresh:
        return
    assert session.bind is not None
    dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
    owner = {"org_id": tenant.org_id, "environment": tenant.environment.value}
    statement = dialect.insert(_keys).on_conflict_do_nothing()
    await session.execute(statement, [{"key": key, **owner} for key in fresh])


# Among the newest leads by id (UUIDs v7 are time-ordered; the primary key is an index).
_HAS_KEY = {
    "postgresql": text(
        "SELECT 1 FROM (SELECT custom_fields FROM leads WHERE org_id = :org_id "
        "AND environment = :environment ORDER BY id DESC LIMIT :scan) AS recent "
        "WHERE jsonb_exists(recent.custom_fields, :key) LIMIT 1"
    ),
    "sqlite": text(
        "SELECT 1 FROM (SELECT custom_fields FROM leads WHERE org_id = :org_id "
        "AND environment = :environment ORDER BY id DESC LIMIT :scan) AS recent, "
        "json_each(recent.custom_fields) AS each_key WHERE each_key.key = :key LIMIT 1"
    ),
}


async def _in_recent_leads(session: AsyncSession, tenant: Tenant, key: str) -> bool:
    """Whether one of the tenant's RECENT_SCAN newest leads has the custom-field `key`."""
    assert session.bind is not None
    query = _HAS_KEY["postgresql" if session.bind.dialect.name == "postgresql" else "sqlite"]
    params = {
        "org_id": tenant.org_id,
        "environment": tenant.environment.value,
        "scan": RECENT_SCAN,
        "key": key,
    }
    return (await session.execute(query, params)).first() is not None


async def check_names(
    session: AsyncSession, tenant: Tenant, names: Iterable[str], what: str
) -> None:
    """A 400 naming the known fields unless every name is a lead field, `email`, or a
    custom-field key of the tenant's leads. `what` says where the names came from."""
    wanted = [name for name in dict.fromkeys(names) if name not in LEAD_TEMPLATE_FIELDS]
    if not wanted:
        return
    known = await known_custom_keys(session, tenant)
    unknown = [name for name in wanted if name not in set(known)]
    # Each look costs a query: only as many as an error message names.
    found = [
        name
        for name in unknown[:UNKNOWN_LISTED]
        if 0 < len(name) <= FIELD_KEY_LENGTH and await _in_recent_leads(session, tenant, name)
    ]
    if found:
        await remember_keys(session, tenant, found)
    unknown = [name for name in unknown if name not in found]
    if not unknown:
        return
    fields = [*LEAD_TEMPLATE_FIELDS, *known, *found]
    listed = ", ".join(fields[:KNOWN_LISTED]) + (
        f" and {len(fields) - KNOWN_LISTED} more" if len(fields) > KNOWN_LISTED else ""
    )
    names = ", ".join(f"{{{{{name}}}}}" for name in unknown[:UNKNOWN_LISTED])
    raise BadRequest(
        f"Unknown field{'s' if len(unknown) > 1 else ''} {names} in {what}. Known fields: {listed}",
        extra={"unknown_fields": unknown[:UNKNOWN_LISTED], "known_fields": fields[:KNOWN_LISTED]},
    )


async def check_template(session: AsyncSession, tenant: Tenant, template: str, what: str) -> None:
    await check_names(session, tenant, placeholders(template), what)


# -- adding keys to custom_fields ----------------------------------------------------------

# A stored value that is not an object (JSON null, say) is replaced, as on SQLite: `||`
# would make an array of the two.
_PATCH_POSTGRES = text(
    "UPDATE leads SET custom_fields = CASE WHEN jsonb_typeof(custom_fields) = 'object' "
    "THEN custom_fields ELSE '{}'::jsonb END || CAST(:patch AS jsonb), "
    "updated_at = :now WHERE id = :lead_id"
)
_READ_CUSTOM = select(_leads.c.id, _leads.c.custom_fields).where(
    _leads.c.id.in_(bindparam("lead_ids", expanding=True))
)
_WRITE_CUSTOM = (
    _leads.update()
    .where(_leads.c.id == bindparam("lead_id"))
    .values(custom_fields=bindparam("merged"), updated_at=bindparam("now"))
)


async def merge_custom_fields(
    session: AsyncSession, patches: Mapping[str, Mapping[str, Any]]
) -> None:
    """Add each lead's keys to its `custom_fields`, keeping every other key, also keys
    another transaction adds at the same time.

    PostgreSQL merges in the statement (`||`), under the row's lock. SQLite merges here,
    read and write in one transaction, which is safe because the caller's transaction has
    already written (SQLite has one writer: nobody else can change the row between this
    read and this write), and exact for any key, which `json_set`'s paths are not (a key
    with a double quote cannot be addressed)."""
    if not patches:
        return
    assert session.bind is not None
    now = utcnow()
    ordered = sorted(patches)  # one lock order for every writer: no deadlocks
    if session.bind.dialect.name == "postgresql":
        await session.execute(
            _PATCH_POSTGRES,
            [
                {"lead_id": lead_id, "patch": orjson.dumps(patches[lead_id]).decode(), "now": now}
                for lead_id in ordered
            ],
        )
        return
    assert session.in_transaction(), "merge_custom_fields runs after the transaction's first write"
    current = {
        row.id: row.custom_fields if isinstance(row.custom_fields, dict) else {}
        for row in await session.execute(_READ_CUSTOM, {"lead_ids": ordered})
    }
    await session.execute(
        _WRITE_CUSTOM,
        [
            {"lead_id": lead_id, "merged": {**current[lead_id], **patches[lead_id]}, "now": now}
            for lead_id in ordered
            if lead_id in current
        ],
    )

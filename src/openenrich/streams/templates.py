"""Enrichment templates: the built-in ones (enrichers/templates.py) and a tenant's own.

A template is a named list of enrichers with their options. A stream names one in
`template` (run before its pipeline) or in an `enrich` step. A tenant's template may not
take a built-in's id, and one that a stream uses cannot be deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.enrichers.registry import EnricherEnv, build
from openenrich.enrichers.templates import BUILTIN_TEMPLATES
from openenrich.errors import BadRequest, Conflict, NotFound
from openenrich.ids import new_id, utcnow
from openenrich.streams.models import STREAM_ID, Stream, StreamTemplate
from openenrich.streams.pipeline import EnricherUse
from openenrich.tenancy.tenant import Tenant

FIELD_TYPES = ("string", "int64", "float64", "boolean", "timestamp", "json")
MAX_ENRICHERS = 20


@dataclass(frozen=True, slots=True)
class TemplateView:
    id: str
    name: str
    description: str
    fields: list[dict[str, str]]
    enrichers: list[dict[str, Any]]
    outputs: list[dict[str, str]]
    builtin: bool


def _outputs(uses: Sequence[EnricherUse], env: EnricherEnv) -> list[dict[str, str]]:
    columns: dict[str, dict[str, str]] = {}
    for use in uses:
        for output in build(use.enricher, use.options, env).outputs():
            columns[output.name] = {
                "name": output.name,
                "type": output.type,
                "description": output.description,
            }
    return list(columns.values())


def builtin_views(env: EnricherEnv) -> list[TemplateView]:
    views = []
    for template in BUILTIN_TEMPLATES.values():
        uses = [EnricherUse(name, dict(options)) for name, options in template.steps]
        views.append(
            TemplateView(
                id=template.id,
                name=template.name,
                description=template.description,
                fields=[{"name": name, "type": kind} for name, kind in template.fields],
                enrichers=[{"enricher": u.enricher, "options": u.options or {}} for u in uses],
                outputs=_outputs(uses, env),
                builtin=True,
            )
        )
    return views


def _uses(row: StreamTemplate) -> list[EnricherUse]:
    return [EnricherUse(item["enricher"], item.get("options")) for item in row.enrichers]


def _view(row: StreamTemplate, env: EnricherEnv) -> TemplateView:
    return TemplateView(
        id=row.template_id,
        name=row.name,
        description=row.description,
        fields=list(row.fields),
        enrichers=list(row.enrichers),
        outputs=_outputs(_uses(row), env),
        builtin=False,
    )


async def own_templates(session: AsyncSession, tenant: Tenant) -> dict[str, StreamTemplate]:
    rows = await session.scalars(
        select(StreamTemplate)
        .where(tenant.owns(StreamTemplate))
        .order_by(StreamTemplate.created_at, StreamTemplate.template_id)
    )
    return {row.template_id: row for row in rows}


async def resolver(
    session: AsyncSession, tenant: Tenant
) -> Callable[[str], Sequence[EnricherUse] | None]:
    """Looks a template id up: the built-ins, then the tenant's own."""
    own = {key: _uses(row) for key, row in (await own_templates(session, tenant)).items()}

    def lookup(template_id: str) -> Sequence[EnricherUse] | None:
        builtin = BUILTIN_TEMPLATES.get(template_id)
        if builtin is not None:
            return [EnricherUse(name, dict(options)) for name, options in builtin.steps]
        return own.get(template_id)

    return lookup


async def list_templates(
    session: AsyncSession, tenant: Tenant, env: EnricherEnv
) -> list[TemplateView]:
    own = await own_templates(session, tenant)
    return builtin_views(env) + [_view(row, env) for row in own.values()]


async def get_template(
    session: AsyncSession, tenant: Tenant, template_id: str, env: EnricherEnv
) -> TemplateView:
    for view in builtin_views(env):
        if view.id == template_id:
            return view
    return _view(await _own(session, tenant, template_id), env)


async def _own(session: AsyncSession, tenant: Tenant, template_id: str) -> StreamTemplate:
    row = await session.scalar(
        select(StreamTemplate).where(
            tenant.owns(StreamTemplate), StreamTemplate.template_id == template_id
        )
    )
    if row is None:
        if template_id in BUILTIN_TEMPLATES:
            raise BadRequest(f"Template '{template_id}' is built in and cannot be changed")
        raise NotFound(f"Template '{template_id}' not found")
    return row


def _check_fields(fields: Any) -> list[dict[str, str]]:
    if fields is None:
        return []
    if not isinstance(fields, list) or len(fields) > 500:
        raise BadRequest("fields must be an array of {name, type} (at most 500)")
    checked = []
    for index, item in enumerate(fields):
        if (
            not isinstance(item, dict)
            or set(item) - {"name", "type"}
            or not isinstance(item.get("name"), str)
            or not item["name"]
        ):
            raise BadRequest(f"fields[{index}] must be {{name, type}} with a non-empty name")
        kind = item.get("type", "string")
        if kind not in FIELD_TYPES:
            raise BadRequest(f"fields[{index}].type must be one of {', '.join(FIELD_TYPES)}")
        checked.append({"name": item["name"], "type": kind})
    return checked


def _check_enrichers(enrichers: Any, env: EnricherEnv) -> list[dict[str, Any]]:
    if not isinstance(enrichers, list) or not enrichers:
        raise BadRequest("enrichers must be a non-empty array of {enricher, options}")
    if len(enrichers) > MAX_ENRICHERS:
        raise BadRequest(f"a template may have at most {MAX_ENRICHERS} enrichers")
    checked = []
    for index, item in enumerate(enrichers):
        if not isinstance(item, dict) or set(item) - {"enricher", "options"}:
            raise BadRequest(f"enrichers[{index}] must be {{enricher, options}}")
        name, options = item.get("enricher"), item.get("options")
        if not isinstance(name, str):
            raise BadRequest(f"enrichers[{index}].enricher must name an enricher")
        if options is not None and not isinstance(options, dict):
            raise BadRequest(f"enrichers[{index}].options must be an object")
        try:
            build(name, options, env)
        except BadRequest as error:
            raise BadRequest(f"enrichers[{index}]: {error.message}") from None
        checked.append({"enricher": name, "options": options or {}})
    return checked


def _text(value: Any, name: str, default: str, limit: int) -> str:
    if value is None:
        return default
    if not isinstance(value, str) or len(value) > limit:
        raise BadRequest(f"{name} must be a string of at most {limit} characters")
    return value


async def create_template(
    session: AsyncSession, tenant: Tenant, body: dict[str, Any], env: EnricherEnv
) -> TemplateView:
    template_id = body.get("id")
    if not isinstance(template_id, str) or not template_id:
        raise BadRequest("id is required")
    if not STREAM_ID.fullmatch(template_id) or len(template_id) > 100:
        raise BadRequest("id may contain only letters, digits, '_' and '-' (at most 100)")
    if template_id in BUILTIN_TEMPLATES:
        raise Conflict(f"Template '{template_id}' is built in; choose another id")
    existing = await session.scalar(
        select(StreamTemplate.id).where(
            tenant.owns(StreamTemplate), StreamTemplate.template_id == template_id
        )
    )
    if existing is not None:
        raise Conflict(f"Template '{template_id}' already exists")
    row = StreamTemplate(
        id=new_id("tpl"),
        org_id=tenant.org_id,
        environment=tenant.environment.value,
        template_id=template_id,
        name=_text(body.get("name"), "name", template_id, 200),
        description=_text(body.get("description"), "description", "", 1000),
        fields=_check_fields(body.get("fields")),
        enrichers=_check_enrichers(body.get("enrichers"), env),
        version=1,
    )
    session.add(row)
    await session.flush()
    return _view(row, env)


async def update_template(
    session: AsyncSession,
    tenant: Tenant,
    template_id: str,
    changes: dict[str, Any],
    env: EnricherEnv,
) -> TemplateView:
    row = await _own(session, tenant, template_id)
    if "id" in changes and changes["id"] != template_id:
        raise BadRequest("id cannot be changed")
    if "name" in changes:
        row.name = _text(changes["name"], "name", row.template_id, 200)
    if "description" in changes:
        row.description = _text(changes["description"], "description", "", 1000)
    if "fields" in changes:
        row.fields = _check_fields(changes["fields"])
    if "enrichers" in changes:
        row.enrichers = _check_enrichers(changes["enrichers"], env)
    row.version += 1
    row.updated_at = utcnow()
    await session.flush()
    return _view(row, env)


async def streams_using(session: AsyncSession, tenant: Tenant, template_id: str) -> list[str]:
    streams = await session.scalars(select(Stream).where(tenant.owns(Stream)))
    return sorted(
        stream.stream_id
        for stream in streams
        if stream.template == template_id
        or any(step.get("template") == template_id for step in stream.pipeline or [])
    )


async def delete_template(session: AsyncSession, tenant: Tenant, template_id: str) -> None:
    row = await _own(session, tenant, template_id)
    users = await streams_using(session, tenant, template_id)
    if users:
        raise Conflict(
            f"Template '{template_id}' is used by stream(s) {', '.join(users)}; change them first"
        )
    await session.delete(row)
    await session.flush()

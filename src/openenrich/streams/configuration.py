"""Streams' configuration: list, read, create, update, delete.

Ingest reads configurations through the registry's cache; a change drops the cached
copy once its transaction commits (see `registry.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.db.after_commit import after_commit
from openenrich.errors import BadRequest, Conflict, NotFound
from openenrich.ids import new_id, utcnow
from openenrich.streams import forwarding
from openenrich.streams import pipeline as steps
from openenrich.streams.fields import check_fields, declared_types
from openenrich.streams.models import STREAM_ID, Stream
from openenrich.streams.pipeline import Resources
from openenrich.streams.registry import StreamRegistry
from openenrich.tenancy.tenant import Tenant

# A stream's dead letters are also the query view `<stream>_dlq` (docs/api.md named them
# so first), which a stream with such an id would take.
DLQ_SUFFIX = "_dlq"
SCHEMA_MODES = ("strict", "evolve", "flex")


class Saved(NamedTuple):
    stream: Stream
    # The secret of the forwarding endpoint this change made (shown once), if it made one.
    webhook_secret: str | None = None


async def list_streams(session: AsyncSession, tenant: Tenant) -> list[Stream]:
    return list(
        await session.scalars(
            select(Stream).where(tenant.owns(Stream)).order_by(Stream.created_at, Stream.stream_id)
        )
    )


async def get_stream(session: AsyncSession, tenant: Tenant, stream_id: str) -> Stream:
    stream = await session.scalar(
        select(Stream).where(
            tenant.owns(Stream),
            Stream.stream_id == stream_id,
        )
    )
    if stream is None:
        raise NotFound(f"Stream '{stream_id}' not found")
    return stream


@dataclass(frozen=True, slots=True)
class _Checked:
    fields: dict[str, Any] | None
    template: str | None
    pipeline: list[dict[str, Any]] | None


def _check_settings(
    schema_mode: Any,
    fields: Any,
    template: Any,
    pipeline: Any,
    resources: Resources,
) -> _Checked:
    if schema_mode not in SCHEMA_MODES:
        raise BadRequest(f"schema_mode must be one of {', '.join(SCHEMA_MODES)}")
    normalised = check_fields(fields)
    if schema_mode == "strict" and not normalised:
        raise BadRequest("a strict stream needs fields to validate against")
    if template is not None and (not isinstance(template, str) or not template):
        raise BadRequest("template must be a template id (GET /templates lists them)")
    parsed = steps.parse(pipeline)
    # Building it checks every step: enrichers and their options, conditions (against a
    # strict stream's columns), destinations.
    steps.build_pipeline(
        parsed,
        resources,
        template=template,
        declared=declared_types(normalised) if schema_mode == "strict" else None,
    )
    return _Checked(normalised, template, steps.dump(parsed) or None)


def _forget_once_committed(
    session: AsyncSession, registry: StreamRegistry, tenant: Tenant, stream_id: str
) -> None:
    after_commit(session, lambda: registry.invalidate(tenant, stream_id))


async def create_stream(
    session: AsyncSession,
    registry: StreamRegistry,
    tenant: Tenant,
    *,
    stream_id: Any,
    schema_mode: Any = "flex",
    fields: Any = None,
    template: Any = None,
    pipeline: Any = None,
    webhook_url: Any = None,
    resources: Resources,
    allow_private_urls: bool = False,
) -> Saved:
    if not isinstance(stream_id, str) or not stream_id:
        raise BadRequest("stream_id is required")
    if not STREAM_ID.fullmatch(stream_id):
        raise BadRequest("stream_id may contain only letters, digits, '_' and '-' (at most 128)")
    if stream_id.casefold().endswith(DLQ_SUFFIX):
        raise BadRequest(
            f"stream_id may not end in '{DLQ_SUFFIX}': "
            f"that is how the dead letters of stream '{stream_id[: -len(DLQ_SUFFIX)]}' are queried"
        )
    checked = _check_settings(schema_mode, fields, template, pipeline, resources)
    existing = await session.scalar(
        select(Stream.id).where(
            tenant.owns(Stream),
            Stream.stream_id == stream_id,
        )
    )
    if existing is not None:
        raise Conflict(f"Stream '{stream_id}' already exists")
    stream = Stream(
        id=new_id("stm"),
        org_id=tenant.org_id,
        environment=tenant.environment.value,
        stream_id=stream_id,
        schema_mode=schema_mode,
        fields=checked.fields,
        template=checked.template,
        pipeline=checked.pipeline,
        version=1,
    )
    session.add(stream)
    await session.flush()
    secret = None
    if webhook_url is not None:
        secret = await forwarding.set_webhook_url(
            session, tenant, stream, webhook_url, allow_private=allow_private_urls
        )
    # The cache may still hold a stream of this id that another process deleted.
    _forget_once_committed(session, registry, tenant, stream_id)
    return Saved(stream, secret)


async def update_stream(
    session: AsyncSession,
    registry: StreamRegistry,
    tenant: Tenant,
    stream_id: str,
    changes: dict[str, Any],
    *,
    resources: Resources,
    allow_private_urls: bool = False,
) -> Saved:
    stream = await get_stream(session, tenant, stream_id)
    if "stream_id" in changes and changes["stream_id"] != stream_id:
        raise BadRequest("stream_id cannot be changed")
    checked = _check_settings(
        changes.get("schema_mode", stream.schema_mode),
        changes.get("fields", stream.fields),
        changes.get("template", stream.template),
        changes.get("pipeline", stream.pipeline),
        resources,
    )
    secret = None
    if "webhook_url" in changes:
        secret = await forwarding.set_webhook_url(
            session, tenant, stream, changes["webhook_url"], allow_private=allow_private_urls
        )
    stream.schema_mode = changes.get("schema_mode", stream.schema_mode)
    stream.fields = checked.fields
    stream.template = checked.template
    stream.pipeline = checked.pipeline
    stream.version += 1
    stream.updated_at = utcnow()
    await session.flush()
    _forget_once_committed(session, registry, tenant, stream_id)
    return Saved(stream, secret)


async def delete_stream(
    session: AsyncSession, registry: StreamRegistry, tenant: Tenant, stream_id: str
) -> None:
    """Delete the configuration; files already in the lake stay (as the reference warns)."""
    stream = await get_stream(session, tenant, stream_id)
    await forwarding.drop_forwarding(session, stream)
    await session.delete(stream)
    await session.flush()
    _forget_once_committed(session, registry, tenant, stream_id)

"""Webhook endpoints and the outbox. Callers own the transaction: nothing here commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.db import table
from openenrich.errors import InvalidRequest, NotFound
from openenrich.ids import isoformat, new_id, utcnow
from openenrich.jobs.notify import JobHub, announce
from openenrich.tenancy.tenant import Tenant
from openenrich.web.guard import UnsafeURL, resolve_public
from openenrich.webhooks import signing
from openenrich.webhooks.models import WebhookDelivery, WebhookEndpoint

EVENT_TYPES = (
    "run.completed",
    "run.failed",
    "run.cancelled",
    "run.interrupted",
    "run.requires_approval",
    # Lead jobs (the lead-pipelines surface): `<family>.<status>` when one ends.
    "enrichment.completed",
    "enrichment.failed",
    "enrichment.cancelled",
    "validation.completed",
    "validation.failed",
    "validation.cancelled",
)
OUTBOX = "webhooks"  # the hub key the dispatcher waits on


def _check_types(event_types: Sequence[str] | None) -> list[str] | None:
    if event_types is None:
        return None
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown:
        raise InvalidRequest(
            f"event_types: unknown type(s) {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}"
        )
    return list(dict.fromkeys(event_types))


async def check_url(url: str, *, allow_private: bool) -> str:
    try:
        await resolve_public(url, allow_private=allow_private)
    except UnsafeURL as error:
        raise InvalidRequest(f"url: {error}") from None
    return url


async def create_endpoint(
    session: AsyncSession,
    tenant: Tenant,
    *,
    url: str,
    event_types: Sequence[str] | None,
    description: str,
    allow_private: bool,
) -> WebhookEndpoint:
    endpoint = WebhookEndpoint(
        id=new_id("we"),
        org_id=tenant.org_id,
        environment=tenant.environment.value,
        url=await check_url(url, allow_private=allow_private),
        secret=signing.new_secret(),
        event_types=_check_types(event_types),
        description=description,
        is_active=True,
        consecutive_failures=0,
    )
    session.add(endpoint)
    await session.flush()
    return endpoint


async def create_owned_endpoint(
    session: AsyncSession,
    tenant: Tenant,
    *,
    url: str,
    event_type: str,
    description: str,
    allow_private: bool,
) -> WebhookEndpoint:
    """An endpoint another component owns (a stream's forwarding), for an event type of
    its own, outside EVENT_TYPES: only that component puts events for it in the outbox
    (`enqueue_to`), so no other event reaches it and it reaches no other endpoint. It is
    listed, and its deliveries logged, like any endpoint."""
    endpoint = WebhookEndpoint(
        id=new_id("we"),
        org_id=tenant.org_id,
        environment=tenant.environment.value,
        url=await check_url(url, allow_private=allow_private),
        secret=signing.new_secret(),
        event_types=[event_type],
        description=description,
        is_active=True,
        consecutive_failures=0,
    )
    session.add(endpoint)
    await session.flush()
    return endpoint


async def list_endpoints(session: AsyncSession, tenant: Tenant) -> list[WebhookEndpoint]:
    return list(
        await session.scalars(
            select(WebhookEndpoint)
            .where(
                tenant.owns(WebhookEndpoint),
            )
            .order_by(WebhookEndpoint.created_at)
        )
    )


async def get_endpoint(session: AsyncSession, tenant: Tenant, endpoint_id: str) -> WebhookEndpoint:
    endpoint = await session.get(WebhookEndpoint, endpoint_id)
    if (
        endpoint is None
        or endpoint.org_id != tenant.org_id
        or endpoint.environment != tenant.environment.value
    ):
        raise NotFound("Webhook endpoint not found")
    return endpoint


async def update_endpoint(
    session: AsyncSession,
    tenant: Tenant,
    endpoint_id: str,
    changes: dict[str, Any],
    *,
    allow_private: bool,
) -> WebhookEndpoint:
    endpoint = await get_endpoint(session, tenant, endpoint_id)
    if "url" in changes:
        endpoint.url = await check_url(changes["url"], allow_private=allow_private)
    if "event_types" in changes:
        endpoint.event_types = _check_types(changes["event_types"])
    if "description" in changes:
        endpoint.description = changes["description"]
    if "is_active" in changes:
        endpoint.is_active = bool(changes["is_active"])
        if endpoint.is_active:  # re-enabled: start counting failures afresh
            endpoint.consecutive_failures = 0
            endpoint.disabled_reason = None
    endpoint.updated_at = utcnow()
    await session.flush()
    return endpoint


async def delete_endpoint(session: AsyncSession, tenant: Tenant, endpoint_id: str) -> None:
    await session.delete(await get_endpoint(session, tenant, endpoint_id))
    await session.flush()


async def deliveries(
    session: AsyncSession, tenant: Tenant, endpoint_id: str, limit: int
) -> list[WebhookDelivery]:
    await get_endpoint(session, tenant, endpoint_id)
    return list(
        await session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint_id)
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
            .limit(limit)
        )
    )


_endpoints = table(WebhookEndpoint)
_ACTIVE_ENDPOINTS = select(_endpoints.c.id, _endpoints.c.event_types).where(
    _endpoints.c.org_id == bindparam("org_id"),
    _endpoints.c.environment == bindparam("environment"),
    _endpoints.c.is_active.is_(True),
)
_INSERT_DELIVERY = table(WebhookDelivery).insert()


async def enqueue(
    session: AsyncSession, hub: JobHub, tenant: Tenant, event_type: str, data: dict[str, Any]
) -> str | None:
    """Put an event in the outbox for every active endpoint that wants it, in the caller's
    transaction: it is delivered if and only if the change it announces is committed."""
    owner = {"org_id": tenant.org_id, "environment": tenant.environment.value}
    endpoints = [
        endpoint.id
        for endpoint in await session.execute(_ACTIVE_ENDPOINTS, owner)
        if endpoint.event_types is None or event_type in endpoint.event_types
    ]
    if not endpoints:
        return None
    event_id = new_id("evt")
    now = utcnow()
    await session.execute(
        _INSERT_DELIVERY,
        [
            _delivery(tenant, endpoint_id, event_id, event_type, data, now)
            for endpoint_id in endpoints
        ],
    )
    await announce(session, hub, OUTBOX)
    return event_id


def _delivery(
    tenant: Tenant,
    endpoint_id: str,
    event_id: str,
    event_type: str,
    data: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """An outbox row: the event's envelope for one endpoint, due now."""
    envelope = {"id": event_id, "type": event_type, "created_at": isoformat(now), "data": data}
    return {
        "id": new_id("whd"),
        "event_id": event_id,
        "endpoint_id": endpoint_id,
        "event_type": event_type,
        "payload": envelope,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "org_id": tenant.org_id,
        "environment": tenant.environment.value,
    }


async def enqueue_to(
    session: AsyncSession,
    hub: JobHub,
    tenant: Tenant,
    endpoint_id: str,
    event_type: str,
    items: Sequence[dict[str, Any]],
) -> list[str]:
    """Put one event per item of `items` in the outbox for one endpoint, in order and in
    the caller's transaction, whether or not the endpoint is active (a disabled endpoint
    gets them once it is enabled again). Returns the events' ids."""
    if not items:
        return []
    now = utcnow()
    event_ids = [new_id("evt") for _ in items]
    rows = [
        _delivery(tenant, endpoint_id, event_id, event_type, data, now)
        for event_id, data in zip(event_ids, items, strict=True)
    ]
    await session.execute(_INSERT_DELIVERY, rows)
    await announce(session, hub, OUTBOX)
    return event_ids

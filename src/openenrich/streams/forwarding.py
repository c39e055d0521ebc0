"""Forwarding a stream's flushed events to its `webhook_url`, through the webhook outbox.

A stream with a `webhook_url` owns a webhook endpoint (event type `stream.batch`,
description "Forwarding of stream 'x'"), made when the URL is first set, given the new
URL when it changes, and deleted when it is set to null or the stream is deleted. The
endpoint's secret is shown once, as `webhook_secret`, in the answer to the change that
made it; the endpoint is listed and its deliveries logged under /api/v1/webhooks like any
other. Deleting it there ends the forwarding (setting `webhook_url` again makes a new one);
setting `webhook_url` again also re-enables an endpoint the dispatcher disabled.

On flush, in the transaction that records the files (`on_flushed`), every data file of a
forwarding stream is read back and put in the outbox as `stream.batch` events of at most
`stream_forward_batch_events` events (and `stream_forward_batch_bytes` of JSON): they are
delivered, signed and retried, if and only if the files are recorded, so every event is
sent once (a receiver that acknowledged nothing gets a batch again, with the same
`webhook-id`). Batches are delivered concurrently, not in order.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.config import Settings
from openenrich.errors import BadRequest
from openenrich.ids import utcnow
from openenrich.jobs.notify import JobHub
from openenrich.lake.engine import FlushedFile
from openenrich.lake.export import EventBatch, event_batches
from openenrich.lake.storage import LakeStorage
from openenrich.streams.models import Stream
from openenrich.tenancy.roles import Environment
from openenrich.tenancy.tenant import Tenant
from openenrich.web.guard import UnsafeURL, resolve_public
from openenrich.webhooks import service as webhooks
from openenrich.webhooks.models import WebhookEndpoint

FORWARD_EVENT = "stream.batch"


async def check_webhook_url(url: Any, *, allow_private: bool) -> str:
    """A `webhook_url` the SSRF guard lets through (https and public, unless private URLs
    are allowed), or the streams surface's 400."""
    if not isinstance(url, str) or not url:
        raise BadRequest("webhook_url must be a URL or null")
    if len(url) > 2048:
        raise BadRequest("webhook_url is longer than 2048 characters")
    try:
        await resolve_public(url, allow_private=allow_private)
    except UnsafeURL as error:
        raise BadRequest(f"webhook_url: {error}") from None
    return url


async def _endpoint(session: AsyncSession, stream: Stream) -> WebhookEndpoint | None:
    if stream.webhook_endpoint_id is None:
        return None
    endpoint = await session.get(WebhookEndpoint, stream.webhook_endpoint_id)
    if endpoint is None or (endpoint.org_id, endpoint.environment) != (
        stream.org_id,
        stream.environment,
    ):
        return None
    return endpoint


async def set_webhook_url(
    session: AsyncSession, tenant: Tenant, stream: Stream, url: Any, *, allow_private: bool
) -> str | None:
    """Point the stream's forwarding at `url` (None: stop forwarding). Returns the secret
    of the endpoint this made, if it made one."""
    if url is None:
        await drop_forwarding(session, stream)
        return None
    checked = await check_webhook_url(url, allow_private=allow_private)
    stream.webhook_url = checked
    endpoint = await _endpoint(session, stream)
    if endpoint is not None:
        endpoint.url = checked
        # Setting the URL again is how a stream's owner re-enables forwarding that the
        # dispatcher disabled after dead letters (the batches kept meanwhile then go out).
        endpoint.is_active = True
        endpoint.consecutive_failures = 0
        endpoint.disabled_reason = None
        endpoint.updated_at = utcnow()
        await session.flush()
        return None
    endpoint = await webhooks.create_owned_endpoint(
        session,
        tenant,
        url=checked,
        event_type=FORWARD_EVENT,
        description=f"Forwarding of stream '{stream.stream_id}'",
        allow_private=allow_private,
    )
    stream.webhook_endpoint_id = endpoint.id
    await session.flush()
    return endpoint.secret


async def drop_forwarding(session: AsyncSession, stream: Stream) -> None:
    """Stop forwarding: the endpoint goes, and its pending deliveries with it."""
    endpoint = await _endpoint(session, stream)
    if endpoint is not None:
        await session.delete(endpoint)
    stream.webhook_url = None
    stream.webhook_endpoint_id = None
    await session.flush()


def _read(storage: LakeStorage, settings: Settings, path: str) -> list[EventBatch]:
    return list(
        event_batches(
            storage,
            path,
            max_events=settings.stream_forward_batch_events,
            max_bytes=settings.stream_forward_batch_bytes,
        )
    )


async def forward_flushed(
    session: AsyncSession,
    hub: JobHub,
    storage: LakeStorage,
    settings: Settings,
    files: list[FlushedFile],
) -> None:
    """Put the events of the flushed data files of forwarding streams in the outbox, in
    the flush's transaction."""
    data = [file for file in files if file.kind == "data" and file.rows]
    if not data:
        return
    keys = {(file.org_id, file.environment, file.stream_id) for file in data}
    conditions = [
        and_(Stream.org_id == org, Stream.environment == env, Stream.stream_id == stream_id)
        for org, env, stream_id in keys
    ]
    found = await session.execute(
        select(Stream.org_id, Stream.environment, Stream.stream_id, WebhookEndpoint.id)
        .join(WebhookEndpoint, WebhookEndpoint.id == Stream.webhook_endpoint_id)
        .where(or_(*conditions))
    )
    endpoints = {(org, env, stream_id): endpoint for org, env, stream_id, endpoint in found}
    for file in data:
        endpoint_id = endpoints.get((file.org_id, file.environment, file.stream_id))
        if endpoint_id is None:
            continue
        batches = await asyncio.to_thread(_read, storage, settings, file.path)
        items = [
            {
                "stream_id": file.stream_id,
                "date": file.day.isoformat(),
                "count": batch.count,
                "events": batch.events(),
            }
            for batch in batches
        ]
        tenant = Tenant(file.org_id, Environment(file.environment))
        await webhooks.enqueue_to(session, hub, tenant, endpoint_id, FORWARD_EVENT, items)

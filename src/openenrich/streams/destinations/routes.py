"""HTTP for /destinations (streams error body). Writes need an admin key, reads any key;
another tenant's destination is a 404."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, Query, Request

from openenrich.errors import BadRequest, InvalidRequest
from openenrich.http.routing import JSONRoute
from openenrich.http.session import DbSession
from openenrich.http.state import app_state
from openenrich.jobs.runtime import JobsRuntime
from openenrich.secretbox import SecretBox, load_secret_box
from openenrich.streams.destinations import (
    senders,  # noqa: F401 (registers the built-ins)
    service,
)
from openenrich.streams.destinations.models import Destination
from openenrich.streams.destinations.schemas import (
    Batching,
    BatchList,
    BatchOut,
    CreatedDestination,
    DeliveryState,
    DestinationBody,
    DestinationDeleted,
    DestinationList,
    DestinationOut,
    Retried,
)
from openenrich.streams.outbox import LAKE
from openenrich.streams.runtime import Streams
from openenrich.tenancy.dependencies import AdminPrincipal, CurrentPrincipal

router = APIRouter(tags=["destinations"], route_class=JSONRoute)

LAKE_DESTINATION = DestinationOut(
    destination_id=LAKE,
    type=LAKE,
    builtin=True,
    config={},
    batching=None,
    delivery=None,
    created_at=None,
    updated_at=None,
)


def _guard(request: Request) -> service.Guard:
    settings = app_state(request).settings
    return service.Guard(settings.allow_private_urls, frozenset(settings.allowed_private_hosts))


def _box(request: Request) -> SecretBox:
    return load_secret_box(app_state(request).settings)


def _out(box: SecretBox, destination: Destination, state: DeliveryState | None) -> DestinationOut:
    try:
        secrets = service.open_secrets(box, destination)
    except BadRequest:  # the secret key changed: show nothing rather than fail
        secrets = {}
    return DestinationOut(
        destination_id=destination.destination_id,
        type=destination.type,
        config=service.shown_config(destination, secrets),
        batching=Batching(
            max_events=destination.max_events,
            max_bytes=destination.max_bytes,
            max_seconds=destination.max_seconds,
        ),
        delivery=state,
        created_at=destination.created_at,
        updated_at=destination.updated_at,
    )


async def _one(session: DbSession, box: SecretBox, destination: Destination) -> DestinationOut:
    states = await service.delivery_states(session, [destination])
    return _out(box, destination, states[destination.id])


def _not_lake(destination_id: str) -> None:
    if destination_id == LAKE:
        raise InvalidRequest("'lake' is the built-in destination: it cannot be changed")


@router.get("/destinations", summary="List destinations (the built-in lake first)")
async def list_destinations(
    request: Request, principal: CurrentPrincipal, session: DbSession
) -> DestinationList:
    destinations = await service.list_all(session, principal.tenant)
    states = await service.delivery_states(session, destinations)
    box = _box(request)
    return DestinationList(
        destinations=[
            LAKE_DESTINATION,
            *(_out(box, d, states[d.id]) for d in destinations),
        ]
    )


@router.post("/destinations", status_code=201, summary="Create a destination")
async def create_destination(
    body: DestinationBody, request: Request, principal: AdminPrincipal, session: DbSession
) -> CreatedDestination:
    box = _box(request)
    destination, generated = await service.create(
        session,
        box,
        principal.tenant,
        destination_id=body.destination_id,
        type_=body.type,
        config=body.config,
        batching=body.batching,
        guard=_guard(request),
    )
    out = await _one(session, box, destination)
    return CreatedDestination(**out.model_dump(), signing_secret=generated)


@router.get("/destinations/{destination_id}", summary="A destination and its delivery state")
async def get_destination(
    destination_id: str, request: Request, principal: CurrentPrincipal, session: DbSession
) -> DestinationOut:
    if destination_id == LAKE:
        return LAKE_DESTINATION
    destination = await service.get(session, principal.tenant, destination_id)
    return await _one(session, _box(request), destination)


@router.put(
    "/destinations/{destination_id}",
    summary="Change a destination's type, config or batching (only the fields given)",
)
async def update_destination(
    destination_id: str,
    body: DestinationBody,
    request: Request,
    principal: AdminPrincipal,
    session: DbSession,
) -> DestinationOut:
    _not_lake(destination_id)
    if body.destination_id is not None and body.destination_id != destination_id:
        raise InvalidRequest("destination_id: cannot be changed")
    box = _box(request)
    destination = await service.update_destination(
        session,
        box,
        principal.tenant,
        destination_id,
        type_=body.type,
        config=body.config,
        batching=body.batching,
        guard=_guard(request),
    )
    return await _one(session, box, destination)


@router.delete(
    "/destinations/{destination_id}",
    summary="Delete a destination and what it had not received yet",
)
async def delete_destination(
    destination_id: str,
    request: Request,
    principal: AdminPrincipal,
    session: DbSession,
    background: BackgroundTasks,
) -> DestinationDeleted:
    _not_lake(destination_id)
    paths = await service.delete(session, principal.tenant, destination_id)
    storage = app_state(request).get(Streams).storage

    def remove() -> None:
        for path in paths:
            with contextlib.suppress(OSError):
                storage.fs.delete_file(storage.full_path(path))

    # After the response: the request's transaction has committed by then.
    background.add_task(asyncio.to_thread, remove)
    return DestinationDeleted(destination_id=destination_id)


@router.get(
    "/destinations/{destination_id}/batches",
    summary="A destination's batches, newest first (?status=dead: its dead letters)",
)
async def list_batches(
    destination_id: str,
    principal: CurrentPrincipal,
    session: DbSession,
    status: Literal["pending", "delivered", "dead"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> BatchList:
    found = await service.batches(session, principal.tenant, destination_id, status, limit)
    return BatchList(
        destination_id=destination_id,
        batches=[
            BatchOut(
                batch_id=batch.batch_id,
                stream_id=batch.stream_id,
                name=batch.name,
                rows=batch.rows,
                bytes=batch.bytes,
                status=batch.status,
                attempts=batch.attempts,
                last_error=batch.last_error,
                created_at=batch.created_at,
                delivered_at=batch.delivered_at,
            )
            for batch in found
        ],
    )


@router.post(
    "/destinations/{destination_id}/retry",
    summary="Send a destination's dead-lettered batches again",
)
async def retry_dead(
    destination_id: str, request: Request, principal: AdminPrincipal, session: DbSession
) -> Retried:
    _not_lake(destination_id)
    hub = app_state(request).get(JobsRuntime).hub
    retried = await service.retry_dead(session, hub, principal.tenant, destination_id)
    return Retried(destination_id=destination_id, retried=retried)

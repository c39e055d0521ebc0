"""HTTP for stream replays (streams error body `{"error": "…"}`): start one, follow it
(the resource, a long-poll, Server-Sent Events from the job facility), cancel it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from starlette.responses import StreamingResponse

from openenrich.http.responses import JSONBody
from openenrich.http.routing import JSONRoute
from openenrich.http.session import DbSession, database
from openenrich.http.state import app_state
from openenrich.jobs.idempotency import idempotency
from openenrich.jobs.runtime import JobsRuntime
from openenrich.jobs.stream import EVENT_STREAM, ResumeAfter
from openenrich.streams import replay
from openenrich.streams.replay_schemas import ReplayBody, ReplayOut
from openenrich.tenancy.dependencies import CurrentPrincipal

router = APIRouter(tags=["streams"], route_class=JSONRoute)


def jobs_of(request: Request) -> JobsRuntime:
    return app_state(request).get(JobsRuntime)


@router.post(
    "/streams/{stream_id}/replay",
    status_code=202,
    summary="Re-send a stream's stored events of a range of days to a URL",
    response_model=ReplayOut,
    responses={
        200: {"model": ReplayOut, "description": "Started earlier with this Idempotency-Key"}
    },
)
async def start_replay(
    stream_id: str,
    body: ReplayBody,
    request: Request,
    principal: CurrentPrincipal,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> Response:
    request_body = body.model_dump(by_alias=True)
    runtime = jobs_of(request)
    created = await replay.start_replay(
        database(request),
        runtime.hub,
        app_state(request).settings,
        principal.tenant,
        stream_id,
        request_body,
        idempotency(idempotency_key, {"stream_id": stream_id, **request_body}),
    )
    return runtime.feeds.answer(replay.REPLAYS, created, stream=False)


@router.get(
    "/streams/{stream_id}/replays/{replay_id}",
    summary="A replay's progress (long-poll with ?wait=seconds)",
    response_model=ReplayOut,
)
async def get_replay(
    stream_id: str,
    replay_id: str,
    request: Request,
    principal: CurrentPrincipal,
    session: DbSession,
    wait: Annotated[float, Query(ge=0, le=50)] = 0,
) -> JSONBody:
    found = await replay.get_replay(session, principal.tenant, stream_id, replay_id)
    if wait:
        feeds = jobs_of(request).feeds
        found = await feeds.long_poll(replay.REPLAYS, principal.tenant, replay_id, wait)
    return JSONBody(found)


@router.post(
    "/streams/{stream_id}/replays/{replay_id}/cancel",
    summary="Cancel a replay",
    response_model=ReplayOut,
)
async def cancel_replay(
    stream_id: str,
    replay_id: str,
    request: Request,
    principal: CurrentPrincipal,
    session: DbSession,
) -> JSONBody:
    hub = jobs_of(request).hub
    return JSONBody(
        await replay.cancel_replay(session, hub, principal.tenant, stream_id, replay_id)
    )


@router.get(
    "/streams/{stream_id}/replays/{replay_id}/events",
    summary="Server-Sent Events: the replay's history, then live",
    response_class=StreamingResponse,
    responses={200: {"content": EVENT_STREAM}},
)
async def replay_events(
    stream_id: str,
    replay_id: str,
    request: Request,
    principal: CurrentPrincipal,
    after: ResumeAfter,
) -> Response:
    # Found in a session of its own: the stream may last, and holds no connection.
    await replay.find(database(request), principal.tenant, stream_id, replay_id)
    return jobs_of(request).feeds.stream(replay.REPLAYS, replay_id, after)

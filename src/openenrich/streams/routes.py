"""HTTP for the event-streams surface. Errors: `{"error": "…"}`; on /v1/streams/ingest
`{"error": "<code>", "detail": "…"}`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request, Response

from openenrich.errors import OpenEnrichError, RateLimited
from openenrich.http.responses import JSONBody
from openenrich.http.routing import JSONRoute
from openenrich.http.session import DbSession
from openenrich.http.state import app_state
from openenrich.lake.query import Format as QueryFormat
from openenrich.streams import configuration, idempotency, reports, schema_history
from openenrich.streams.connect import connection_details
from openenrich.streams.dead_letters import read_dead_letters
from openenrich.streams.ingest import flush, ingest_batch, ingest_envelopes, record_failure
from openenrich.streams.query import run_query
from openenrich.streams.runtime import Streams
from openenrich.streams.schemas import (
    Connection,
    DeadLetters,
    EnvelopesAccepted,
    Flushed,
    FlushedFileOut,
    IngestAccepted,
    IngestErrors,
    LiveStats,
    QueryAnswer,
    QueryBody,
    SchemaEvents,
    StreamBody,
    StreamDeleted,
    StreamList,
    StreamOut,
    StreamSaved,
    StreamsUsage,
)
from openenrich.tenancy.dependencies import (
    AdminPrincipal,
    CurrentPrincipal,
    ReaderPrincipal,
    authenticated,
)
from openenrich.tenancy.tenant import Principal

router = APIRouter(tags=["streams"], route_class=JSONRoute)


def streams_of(request: Request) -> Streams:
    streams = app_state(request).get(Streams)
    return streams


async def ingest_principal(request: Request) -> Principal:
    """`authenticated`, plus: a rate-limited ingest request shows on /errors and /stats."""
    try:
        return await authenticated(request)
    except RateLimited as error:
        principal: Principal | None = getattr(request.state, "principal", None)
        if principal is not None:
            record_failure(
                streams_of(request),
                principal.tenant,
                error,
                request.url.path,
                stream_id=None,
                body=None,
            )
        raise


IngestPrincipal = Annotated[Principal, Depends(ingest_principal)]


# The ingest routes read their bodies themselves (parsing.py, without building the events
# as Python objects); these document them in /openapi.json, for readers and for the tools
# that generate requests from it.
_EVENT = {
    "type": "object",
    "additionalProperties": True,
    "examples": [{"event": "signup", "user_id": 42, "plan": "pro"}],
}
_INGEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["stream_id", "data"],
                    "properties": {
                        "stream_id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,128}$"},
                        "data": {"type": "array", "minItems": 1, "items": _EVENT},
                    },
                }
            }
        },
    }
}
_ENVELOPE = {
    "type": "object",
    "required": ["timestamp", "source", "event"],
    "properties": {
        "timestamp": {"type": "string", "format": "date-time"},
        "source": {"type": "string", "minLength": 1, "examples": ["web"]},
        "event": _EVENT,
        "metadata": {"anyOf": [{"type": "object"}, {"type": "null"}]},
    },
}
_ENVELOPES_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [_ENVELOPE, {"type": "array", "minItems": 1, "items": _ENVELOPE}]
                }
            }
        },
    }
}


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Send a batch again with the same key (for 24 hours): the first answer "
        "comes back and nothing is stored twice",
    ),
]


# The ingest answers are written here with orjson (the hottest path); IngestAccepted and
# EnvelopesAccepted describe them.
@router.post(
    "/ingest",
    summary="Send a batch of events to a stream",
    openapi_extra=_INGEST_BODY,
    response_model=IngestAccepted,
)
async def ingest(
    request: Request, principal: IngestPrincipal, idempotency_key: IdempotencyKey = None
) -> Response:
    body = await request.body()
    streams = streams_of(request)
    # The path as sent: request.url.path, without building a URL (~15 µs) for every batch.
    endpoint = request.scope["path"]

    async def store(tag: str | None) -> dict[str, Any]:
        result = await ingest_batch(streams, principal, body, endpoint=endpoint, tag=tag)
        answer: dict[str, Any] = {"accepted": result.accepted, "buffered": result.buffered}
        if result.rejected:
            answer["rejected"] = result.rejected
        return answer

    if idempotency_key is None:
        answer = await store(None)
    else:
        route = {"accepted": 0, "buffered": 0}
        answer = await once(streams, principal, idempotency_key, body, route, store)
    return Response(orjson.dumps(answer), media_type="application/json")


async def once(
    streams: Streams,
    principal: Principal,
    key: str,
    body: bytes,
    route: dict[str, Any],
    store: Callable[[str], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    """`store` the batch under its Idempotency-Key, or the first answer again."""
    claimed = await idempotency.claim(streams, principal.tenant, key, body, route)
    if not isinstance(claimed, idempotency.Claimed):
        return claimed
    try:
        answer = await store(key)
    except OpenEnrichError as error:
        if error.status_code < 500:  # refused before anything was logged
            await idempotency.abandon(streams, principal.tenant, claimed)
        else:
            await idempotency.settle(streams, principal.tenant, claimed)
        raise
    except BaseException:
        await asyncio.shield(idempotency.settle(streams, principal.tenant, claimed))
        raise
    await idempotency.finish(streams, principal.tenant, claimed, answer)
    return answer


@router.post(
    "/v1/streams/ingest",
    summary="Send one event envelope (or an array of them)",
    openapi_extra=_ENVELOPES_BODY,
    response_model=EnvelopesAccepted,
)
async def stream_ingest(
    request: Request,
    principal: IngestPrincipal,
    x_stream_id: Annotated[str | None, Header()] = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    body = await request.body()
    streams = streams_of(request)
    endpoint = request.scope["path"]
    route: dict[str, Any] = {
        "status": "accepted",
        "ingested_bytes": len(body),
        "stream_id": x_stream_id,
    }

    async def store(tag: str | None) -> dict[str, Any]:
        result = await ingest_envelopes(
            streams, principal, body, x_stream_id, endpoint=endpoint, tag=tag
        )
        return {**route, "rejected": result.rejected} if result.rejected else route

    if idempotency_key is None:
        answer = await store(None)
    else:
        answer = await once(streams, principal, idempotency_key, body, route, store)
    return Response(orjson.dumps(answer), media_type="application/json")


# -- stream configuration ----------------------------------------------------------------


@router.get("/streams", summary="List streams")
async def list_streams(principal: CurrentPrincipal, session: DbSession) -> StreamList:
    streams = await configuration.list_streams(session, principal.tenant)
    return StreamList(streams=[StreamOut.model_validate(stream) for stream in streams])


def _saved(saved: configuration.Saved, status_code: int = 200) -> JSONBody:
    answer = StreamOut.model_validate(saved.stream).model_dump(mode="json")
    if saved.webhook_secret is not None:
        answer["webhook_secret"] = saved.webhook_secret
    return JSONBody(answer, status_code=status_code)


@router.post("/streams", status_code=201, summary="Create a stream", response_model=StreamSaved)
async def create_stream(
    body: StreamBody, request: Request, principal: CurrentPrincipal, session: DbSession
) -> JSONBody:
    saved = await configuration.create_stream(
        session,
        streams_of(request).registry,
        principal.tenant,
        stream_id=body.stream_id,
        schema_mode=body.schema_mode or "flex",
        fields=body.fields,
        template=body.template,
        pipeline=body.pipeline,
        webhook_url=body.webhook_url,
        resources=await streams_of(request).processing.resources(session, principal.tenant),
        allow_private_urls=streams_of(request).settings.allow_private_urls,
    )
    return _saved(saved, status_code=201)


@router.put(
    "/streams/{stream_id}",
    summary="Update a stream (only the fields given)",
    response_model=StreamSaved,
)
async def update_stream(
    stream_id: str,
    body: StreamBody,
    request: Request,
    principal: CurrentPrincipal,
    session: DbSession,
) -> JSONBody:
    saved = await configuration.update_stream(
        session,
        streams_of(request).registry,
        principal.tenant,
        stream_id,
        body.model_dump(exclude_unset=True),
        resources=await streams_of(request).processing.resources(session, principal.tenant),
        allow_private_urls=streams_of(request).settings.allow_private_urls,
    )
    return _saved(saved)


@router.delete("/streams/{stream_id}", summary="Delete a stream's configuration (data stays)")
async def delete_stream(
    stream_id: str, request: Request, principal: CurrentPrincipal, session: DbSession
) -> StreamDeleted:
    await configuration.delete_stream(
        session, streams_of(request).registry, principal.tenant, stream_id
    )
    return StreamDeleted(stream_id=stream_id)


@router.post("/streams/{stream_id}/flush", summary="Write a stream's buffered events now")
async def flush_stream(
    stream_id: str, request: Request, principal: AdminPrincipal, session: DbSession
) -> Flushed:
    files = await flush(streams_of(request), session, principal.tenant, stream_id)
    return Flushed(
        stream_id=stream_id,
        files=[
            FlushedFileOut(
                path=file.location, kind=file.kind, date=file.day, rows=file.rows, bytes=file.bytes
            )
            for file in files
        ],
    )


# Written by JSONBody: the events are JSON as the client sent it (DeadLetters describes them).
@router.get(
    "/streams/{stream_id}/dlq", summary="Events strict mode rejected", response_model=DeadLetters
)
async def dead_letters(
    stream_id: str,
    request: Request,
    principal: CurrentPrincipal,
    session: DbSession,
    days: Annotated[int, Query(ge=1, le=3650)] = 7,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSONBody:
    return JSONBody(
        await read_dead_letters(
            streams_of(request), session, principal.tenant, stream_id, days, limit
        )
    )


@router.get(
    "/streams/{stream_id}/schema-events",
    summary="Schema changes (evolve mode)",
    # previous_type and detected_type are left out where they do not apply
    response_model_exclude_none=True,
)
async def schema_events(
    stream_id: str,
    principal: CurrentPrincipal,
    session: DbSession,
    days: Annotated[int, Query(ge=1, le=3650)] = 7,
) -> SchemaEvents:
    return await schema_history.schema_events(session, principal.tenant, stream_id, days)


# -- usage, stats, errors, connect, query ---------------------------------------------------


@router.get("/usage", summary="Events, bytes and files stored, per day and stream")
async def usage(
    principal: CurrentPrincipal,
    session: DbSession,
    start_date: str | None = None,
    end_date: str | None = None,
    stream_id: str | None = None,
) -> StreamsUsage:
    return await reports.usage(session, principal.tenant, start_date, end_date, stream_id)


@router.get("/stats", summary="Ingest requests, events and errors: this hour, per minute, per hour")
async def stats(request: Request, principal: CurrentPrincipal, session: DbSession) -> LiveStats:
    return await reports.live_stats(streams_of(request), session, principal.tenant)


@router.get("/errors", summary="Recent ingest errors")
async def errors(
    request: Request,
    principal: CurrentPrincipal,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    stream_id: str | None = None,
) -> IngestErrors:
    return await reports.recent_errors(
        streams_of(request), session, principal.tenant, limit, stream_id
    )


@router.get("/connect", summary="Where your Parquet files are, and SQL to read them directly")
async def connect(request: Request, principal: CurrentPrincipal, session: DbSession) -> Connection:
    streams = streams_of(request)
    return await connection_details(session, streams.settings, streams.storage, principal.tenant)


ARROW_STREAM = "application/vnd.apache.arrow.stream"


# The JSON answer is written here: its rows come as JSON from the query's process
# (QueryAnswer describes it); CSV and Arrow are the query's bytes.
@router.post(
    "/query",
    summary="Read-only SQL (DuckDB) over your streams",
    response_model=QueryAnswer,
    responses={
        200: {
            "description": "JSON, or CSV or an Arrow IPC stream when the Accept header asks",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                ARROW_STREAM: {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
async def query(
    body: QueryBody, request: Request, principal: ReaderPrincipal, session: DbSession
) -> Response:
    accept = request.headers.get("accept", "")
    format: QueryFormat = "csv" if "text/csv" in accept else "json"
    if ARROW_STREAM in accept:
        format = "arrow"
    result = await run_query(streams_of(request), session, principal.tenant, body.sql, format)
    headers = {"X-Result-Truncated": "true" if result.truncated else "false"}
    if result.truncated_by is not None:
        headers["X-Result-Truncated-By"] = result.truncated_by
    if format == "csv":
        return Response(result.body, media_type="text/csv", headers=headers)
    if format == "arrow":
        return Response(result.body, media_type=ARROW_STREAM, headers=headers)
    answer = {
        "columns": [{"name": name, "type": type_} for name, type_ in result.columns],
        # Rendered (and held to the byte limit) where the query ran.
        "rows": orjson.Fragment(result.body),
        "row_count": result.row_count,
        "truncated": result.truncated,
        "truncated_by": result.truncated_by,
    }
    return Response(orjson.dumps(answer), media_type="application/json", headers=headers)

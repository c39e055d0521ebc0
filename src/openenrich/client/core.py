"""What the sync and async clients share: retries, the event-stream parser, ingest
batching. Nothing here does I/O."""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import orjson

from openenrich import __version__ as VERSION
from openenrich.client.errors import (
    APIError,
    Conflict,
    ConnectionFailed,
    OpenEnrichError,
    RateLimited,
    ServerError,
)

# Methods that may be sent twice with the effect of once; a POST is retried only when it
# carries an Idempotency-Key.
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Retries:
    """How often, and after how long, a call is tried again.

    A 429, and a 409 that says when to come back (a batch with the same Idempotency-Key
    is being stored), are retried whatever the method: the server did nothing. A 5xx or a
    lost connection is retried only for calls that are safe to repeat (see `repeatable`).
    The wait is the server's `Retry-After` when it gave one, else the backoff: doubling
    from `backoff`, with jitter, up to `max_wait` seconds."""

    attempts: int = 4
    backoff: float = 0.5
    max_wait: float = 30.0

    def wait(self, attempt: int, error: OpenEnrichError, repeatable: bool) -> float | None:
        """Seconds to wait before try `attempt + 1`, or None to give up and raise."""
        if attempt >= self.attempts:
            return None
        server_did_nothing = isinstance(error, RateLimited) or (
            isinstance(error, Conflict) and error.retry_after is not None
        )
        failed = isinstance(error, ServerError | ConnectionFailed)
        if not (server_did_nothing or (failed and repeatable)):
            return None
        if isinstance(error, APIError) and error.retry_after is not None:
            return min(error.retry_after, self.max_wait)
        return min(self.backoff * 2.0 ** (attempt - 1) * (0.5 + random.random()), self.max_wait)


def repeatable(request: httpx.Request) -> bool:
    return request.method in _IDEMPOTENT or "idempotency-key" in request.headers


@dataclass(frozen=True, slots=True)
class Event:
    """One event of a run's (or a job's) event stream."""

    id: str | None
    type: str
    data: Any


class EventParser:
    """Server-sent events, a line at a time (https://html.spec.whatwg.org/#event-stream-
    interpretation): `feed` returns an event when a blank line ends one. Comments (`: ping`)
    and `retry:` are skipped; `data` is parsed as JSON when it is JSON."""

    def __init__(self) -> None:
        self._id: str | None = None
        self._type = ""
        self._data: list[str] = []

    def feed(self, line: str) -> Event | None:
        line = line.rstrip("\r\n")
        if not line:
            if not self._data:
                self._type = ""
                return None
            text = "\n".join(self._data)
            self._data = []
            kind, self._type = self._type or "message", ""
            try:
                data: Any = orjson.loads(text)
            except orjson.JSONDecodeError:
                data = text
            return Event(self._id, kind, data)
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._type = value
        elif name == "id" and "\0" not in value:
            self._id = value
        return None


# A batch's envelope around its events: {"stream_id": "…", "data": [ … ]}.
_ENVELOPE_BYTES = len(b'{"stream_id":"","data":[]}')


@dataclass(frozen=True, slots=True)
class Batch:
    """Events ready to send: `body` is the request, `first` the index of its first event
    in the whole input, `count` how many it holds."""

    body: bytes
    first: int
    count: int


def batches(
    stream_id: str,
    events: Iterable[Any],
    *,
    max_bytes: int = 1_000_000,
    max_events: int = 10_000,
    start: int = 0,
) -> Iterator[Batch]:
    """`events` cut into `/ingest` bodies of at most `max_bytes` (the server refuses more
    than 1 MiB) and `max_events` each. The same events always make the same batches, so a
    batch can be named by its first event's index (`start` + its place in `events`)."""
    room = max_bytes - _ENVELOPE_BYTES - len(orjson.dumps(stream_id))
    parts: list[bytes] = []
    size = 0
    first = start
    for index, event in enumerate(events, start=start):
        encoded = event if isinstance(event, bytes) else orjson.dumps(event)
        if len(encoded) + 1 > room:
            raise OpenEnrichError(
                f"event {index} is {len(encoded):,} bytes: more than one batch may hold "
                f"({room:,} bytes)"
            )
        if parts and (size + len(encoded) + 1 > room or len(parts) >= max_events):
            yield _batch(stream_id, parts, first)
            parts, size, first = [], 0, index
        parts.append(encoded)
        size += len(encoded) + 1
    if parts:
        yield _batch(stream_id, parts, first)


def _batch(stream_id: str, parts: list[bytes], first: int) -> Batch:
    body = b'{"stream_id":%s,"data":[%s]}' % (orjson.dumps(stream_id), b",".join(parts))
    return Batch(body, first, len(parts))


DEFAULT_URL = "http://127.0.0.1:8080"
TERMINAL_RUN_STATUSES = frozenset({"completed", "failed", "cancelled", "interrupted"})
ENDED_ENTITY_JOB_STATUSES = frozenset({"completed", "failed", "cancelled"})
ENDED_LEAD_JOB_STATUSES = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
LeadJobKind = Literal["enrichment", "validation"]


def lead_job_body(
    pipeline_id: str | None, lead_ids: list[str] | None, **fields: Any
) -> dict[str, Any]:
    """A lead job's body: its targets (a pipeline, or lead ids) and its fields."""
    body = {name: value for name, value in fields.items() if value is not None}
    if pipeline_id is not None:
        body["pipeline_id"] = pipeline_id
    if lead_ids is not None:
        body["lead_ids"] = lead_ids
    return body


QueryFormat = Literal["json", "csv"]


def connection(url: str | None, api_key: str | None) -> tuple[str, dict[str, str]]:
    """The server's URL and the headers every call carries, from the arguments or else
    `OPENENRICH_URL` and `OPENENRICH_API_KEY`."""
    base_url = (url or os.environ.get("OPENENRICH_URL") or DEFAULT_URL).rstrip("/")
    key = api_key or os.environ.get("OPENENRICH_API_KEY")
    if not key:
        raise OpenEnrichError("no API key: pass api_key= or set OPENENRICH_API_KEY")
    return base_url, {
        "authorization": f"Bearer {key}",
        "user-agent": f"openenrich-client/{VERSION}",
    }


def accept_header(format: QueryFormat) -> str:
    return "text/csv" if format == "csv" else "application/json"


def query_answer(response: httpx.Response, format: QueryFormat) -> Any:
    return response.text if format == "csv" else response.json()


@dataclass(slots=True)
class IngestResult:
    """What the server said of the batches one `ingest` sent, added up."""

    accepted: int = 0
    rejected: int = 0
    batches: int = 0

    def add(self, batch: Batch, answer: dict[str, Any]) -> None:
        self.accepted += int(answer.get("accepted", 0))
        self.rejected += int(answer.get("rejected", 0))
        self.batches += 1


@dataclass(slots=True)
class UploadResult:
    """What the server said of the chunks one `leads.upload` sent, added up."""

    received: int = 0
    created: int = 0
    skipped: int = 0
    failed: int = 0
    chunks: int = 0

    def add(self, answer: dict[str, Any]) -> None:
        for name in ("received", "created", "skipped", "failed"):
            setattr(self, name, getattr(self, name) + int(answer.get(name, 0)))
        self.chunks += 1


def lead_chunks(
    leads: Iterable[dict[str, Any]], *, max_rows: int = 5_000, max_bytes: int = 4_000_000
) -> Iterator[bytes]:
    """`leads` as upload bodies (JSON arrays) under the server's caps: 25,000 rows and
    4 MiB a request."""
    parts: list[bytes] = []
    size = 2
    for index, lead in enumerate(leads):
        encoded = orjson.dumps(lead)
        if len(encoded) + 3 > max_bytes:
            raise OpenEnrichError(f"lead {index} is {len(encoded):,} bytes: more than an upload")
        if parts and (size + len(encoded) + 1 > max_bytes or len(parts) >= max_rows):
            yield b"[" + b",".join(parts) + b"]"
            parts, size = [], 2
        parts.append(encoded)
        size += len(encoded) + 1
    if parts:
        yield b"[" + b",".join(parts) + b"]"

"""The two ingest body shapes, parsed without building Python objects for the events.

`POST /ingest` sends `{"stream_id": …, "data": [event, …]}`; `POST /v1/streams/ingest`
sends one envelope `{"timestamp", "source", "event", "metadata"?}` or an array of them.
msgspec splits the body into raw JSON slices; each event is kept as the bytes the client
sent, and only what must be checked is decoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec

from openenrich.errors import BadRequest, InvalidRequest
from openenrich.json_input import InvalidJSON, check
from openenrich.lake.wal import payload_lines

_FIELDS = msgspec.json.Decoder(dict[str, msgspec.Raw])
_ARRAY = msgspec.json.Decoder(list[msgspec.Raw])
_STRING = msgspec.json.Decoder(str)


def _string(raw: msgspec.Raw | None) -> str | None:
    """A field that must be a string: its value, or None if it is missing or anything else.
    Anything else is never decoded: 1e400, say, is out of a float's range."""
    if raw is None:
        return None
    try:
        return _STRING.decode(raw)
    except msgspec.DecodeError:  # ValidationError (not a string) is one too
        return None


def _first_byte(raw: msgspec.Raw | bytes) -> int:
    view = memoryview(raw)
    return view[0] if len(view) else 0


def is_object(raw: msgspec.Raw | bytes) -> bool:
    return _first_byte(raw) == ord("{")


@dataclass(frozen=True, slots=True)
class Events:
    """Events bound for a stream, each the raw JSON of one stored row."""

    stream_id: str
    rows: list[msgspec.Raw]
    array: bytes  # the rows as one JSON array, as received when possible
    checked: list[msgspec.Raw]  # what strict validation checks, one per row
    lines: bytes  # the rows one per line: what the log stores
    event_time: tuple[int, int] | None = None  # (min, max) Unix microseconds


def parse_ingest(body: bytes, max_depth: int) -> Events:
    """`{"stream_id": …, "data": […]}` with the reference's error messages."""
    try:
        check(body, max_depth)
        fields = _FIELDS.decode(body)
    except InvalidJSON as error:
        raise BadRequest(f"Invalid JSON: {error.message}") from None
    except msgspec.ValidationError:
        raise BadRequest("Request body must be a JSON object") from None
    except msgspec.DecodeError:
        raise BadRequest("Invalid JSON") from None
    stream_id = _string(fields.get("stream_id"))
    if not stream_id:
        raise BadRequest("stream_id is required")
    data = fields.get("data")
    if data is None or _first_byte(data) != ord("["):
        raise BadRequest("data must be an array")
    rows = _ARRAY.decode(data)
    if not rows:
        raise BadRequest("data array is empty")
    return Events(stream_id, rows, bytes(data), rows, payload_lines(rows, body))


def _detail(message: str) -> InvalidRequest:
    return InvalidRequest(message, code="invalid_format")


def _timestamp(raw: msgspec.Raw | None) -> int:
    if raw is None:
        raise _detail("The 'timestamp' field is required.")
    value = _string(raw)
    try:
        if value is None:
            raise ValueError
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _detail("The 'timestamp' field must be a valid ISO 8601 string.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000)


def parse_envelopes(body: bytes, stream_id: str, max_depth: int) -> Events:
    """One envelope or an array of them; every envelope must be valid."""
    try:
        check(body, max_depth)
        first = _first_byte(body.lstrip())
        envelopes = _ARRAY.decode(body) if first == ord("[") else [msgspec.Raw(body.strip())]
        if not envelopes:
            raise _detail("The request body is an empty array.")
        parsed = [_FIELDS.decode(envelope) for envelope in envelopes]
    except InvalidJSON as error:
        raise _detail(f"The request body is not valid JSON: {error.message}.") from None
    except msgspec.ValidationError:
        raise _detail("The request body must be a JSON object (or an array of objects).") from None
    except msgspec.DecodeError:
        raise _detail("The request body is not valid JSON.") from None
    times: list[int] = []
    checked: list[msgspec.Raw] = []
    for fields in parsed:
        times.append(_timestamp(fields.get("timestamp")))
        if not _string(fields.get("source")):
            raise _detail("The 'source' field is required and must be a non-empty string.")
        event = fields.get("event")
        if event is None:
            raise _detail("The 'event' field is required.")
        if not is_object(event):
            raise _detail("The 'event' field must be an object of key-value pairs.")
        metadata = fields.get("metadata")
        if metadata is not None and not is_object(metadata) and bytes(metadata) != b"null":
            raise _detail("The 'metadata' field must be an object.")
        checked.append(event)
    array = b"[" + b",".join(bytes(envelope) for envelope in envelopes) + b"]"
    lines = payload_lines(envelopes, body)
    return Events(stream_id, envelopes, array, checked, lines, (min(times), max(times)))

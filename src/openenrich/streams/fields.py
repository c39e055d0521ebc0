"""Field definitions of a stream, and the typed decoder a strict stream validates with.

A stream's `fields` map a name to `{"type": T}` (and optionally `"required": false`), T one
of string, int64, float64, boolean, timestamp (RFC 3339 / ISO 8601 text) or json (an object
or an array). A strict stream checks events with a msgspec Struct built from them once, so
validation runs in C: a whole batch is decoded in one call, and only a batch that fails is
decoded event by event to find which events go to the dead-letter queue and why.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import msgspec

from openenrich.errors import BadRequest
from openenrich.lake.parquet import DUCKDB_TYPES, RESERVED

FIELD_TYPES = tuple(DUCKDB_TYPES)
_INT64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
_PYTHON_TYPES: dict[str, Any] = {
    "string": str,
    "int64": _INT64,
    "float64": float,
    "boolean": bool,
    "timestamp": datetime,
    "json": dict[str, Any] | list[Any],
}


def check_fields(fields: Any) -> dict[str, dict[str, Any]] | None:
    """The normalised `fields` of a create or update body, or BadRequest."""
    if fields is None:
        return None
    if not isinstance(fields, dict):
        raise BadRequest('fields must be an object mapping field names to {"type": …}')
    normalised: dict[str, dict[str, Any]] = {}
    for name, spec in fields.items():
        if not isinstance(name, str) or not name or len(name) > 256:
            raise BadRequest("field names must be 1 to 256 characters")
        if name in RESERVED:
            raise BadRequest(f"field name '{name}' is reserved")
        if isinstance(spec, str):  # shorthand: {"amount": "float64"}
            spec = {"type": spec}
        if not isinstance(spec, dict) or spec.get("type") not in FIELD_TYPES:
            raise BadRequest(f"fields.{name}.type must be one of {', '.join(FIELD_TYPES)}")
        required = spec.get("required", True)
        if not isinstance(required, bool):
            raise BadRequest(f"fields.{name}.required must be true or false")
        normalised[name] = {"type": spec["type"]} | ({} if required else {"required": False})
    return normalised


def declared_types(fields: Mapping[str, Mapping[str, Any]] | None) -> dict[str, str]:
    return {name: spec["type"] for name, spec in (fields or {}).items()}


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str  # missing_field, extra_field or type_mismatch
    field: str | None


_UNKNOWN = re.compile(r"Object contains unknown field `(.*)`")
_MISSING = re.compile(r"Object missing required field `(.*)`")
_AT = re.compile(r" - at `\$\.(.*)`$")


def classify(error: msgspec.ValidationError) -> Rejection:
    message = str(error)
    if found := _UNKNOWN.match(message):
        return Rejection("extra_field", found.group(1))
    if found := _MISSING.match(message):
        return Rejection("missing_field", found.group(1))
    at = _AT.search(message)
    return Rejection("type_mismatch", at.group(1) if at else None)


class EventValidator:
    """Checks events against a strict stream's fields."""

    def __init__(self, fields: Mapping[str, Mapping[str, Any]]) -> None:
        specs: list[tuple[str, Any] | tuple[str, Any, Any]] = []
        renames = {}
        for index, (name, spec) in enumerate(fields.items()):
            attribute = f"f{index}"
            kind = _PYTHON_TYPES[spec["type"]]
            if spec.get("required", True):
                specs.append((attribute, kind))
            else:
                specs.append((attribute, kind | None, None))
            renames[attribute] = name
        event = msgspec.defstruct(
            "Event", specs, rename=renames, forbid_unknown_fields=True, omit_defaults=True
        )
        self._one = msgspec.json.Decoder(event)
        self._batch = msgspec.json.Decoder(list[event])  # type: ignore[valid-type]

    def all_valid(self, array: bytes) -> bool:
        try:
            self._batch.decode(array)
        except msgspec.ValidationError:
            return False
        return True

    def check(self, event: bytes | msgspec.Raw) -> Rejection | None:
        try:
            self._one.decode(event)
        except msgspec.ValidationError as error:
            return classify(error)
        return None

    def split(
        self, events: Sequence[msgspec.Raw]
    ) -> tuple[list[msgspec.Raw], list[tuple[msgspec.Raw, Rejection]]]:
        valid: list[msgspec.Raw] = []
        rejected: list[tuple[msgspec.Raw, Rejection]] = []
        for event in events:
            rejection = self.check(event)
            if rejection is None:
                valid.append(event)
            else:
                rejected.append((event, rejection))
        return valid, rejected

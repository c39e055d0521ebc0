"""Values our answers hold that JSON has no type for, the types response models declare
them with, and a response model as the JSON values it is written as."""

from __future__ import annotations

import functools
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, PlainSerializer, WithJsonSchema

from openenrich.ids import isoformat

# What most JSON readers hold exactly as an integer (JavaScript's is 2**53, but signed
# and unsigned 64-bit integers are what our columns and databases have).
_SMALLEST = -(2**63)
_PAST_LARGEST = 2**64


def decimal_number(value: Decimal) -> int | float | str:
    """A decimal (credits, costs, DuckDB's HUGEINT sums) as a JSON number: a whole one as
    an integer, others as a float. A whole one past 64 bits stays exact as text: as a
    number most readers would lose its last digits."""
    if value != value.to_integral_value():
        return float(value)
    return int(value) if _SMALLEST <= value < _PAST_LARGEST else str(value)


# A moment in a response model, written as every reference writes one
# (`2026-02-05T18:00:00.000Z`: `ids.isoformat`).
Timestamp = Annotated[
    datetime,
    PlainSerializer(isoformat, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
# A decimal in a response model, written by `decimal_number`.
Number = Annotated[Decimal, PlainSerializer(decimal_number, return_type=int | float | str)]


class _PassedOn:
    """The mark of a `Payload` field."""


_PASSED_ON = _PassedOn()

# An open-ended object a response hands on as it was stored (a run's metadata, report,
# plan): `json_values` leaves it to orjson. pydantic would copy it value by value first,
# at several times what orjson takes to write it (~7x for a 17 KB report).
Payload = Annotated[dict[str, Any] | None, _PASSED_ON]


@functools.cache
def _payloads(model: type[BaseModel]) -> set[str]:
    # A set, as model_dump's `exclude` is typed; nothing changes it.
    return {
        name
        for name, field in model.model_fields.items()
        if any(mark is _PASSED_ON for mark in field.metadata)
    }


def json_values(model: BaseModel) -> dict[str, Any]:
    """`model.model_dump(mode="json")`, with its `Payload` fields as they are."""
    payloads = _payloads(type(model))
    if not payloads:
        return model.model_dump(mode="json")
    values = model.model_dump(mode="json", exclude=payloads)
    return {
        name: getattr(model, name) if name in payloads else values[name]
        for name in type(model).model_fields
    }

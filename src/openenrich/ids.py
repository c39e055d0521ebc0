"""Identifiers and timestamps shared by every package."""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def new_id(prefix: str) -> str:
    """A time-ordered, URL-safe id such as `org_01j9z3…`: 48 bits of milliseconds, 80 random.

    Sorting ids sorts by creation time, which keeps pagination stable and indexes compact.
    """
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"


def utcnow() -> datetime:
    return datetime.now(UTC)


def isoformat(moment: datetime) -> str:
    """`2026-02-05T18:00:00.000Z`: the timestamp format every reference uses."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def new_uuid() -> str:
    """A UUID version 7 (RFC 9562) as text: 48 bits of milliseconds, then random bits.

    The lead-pipelines reference names its resources by UUID; version 7 keeps them
    time-ordered like `new_id`, so the newest-first tiebreak on an id follows creation.
    """
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # variant 10
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def new_uuids(count: int) -> list[str]:
    """`count` UUIDs version 7 that sort in the order they are listed (RFC 9562's
    monotonic random method): one random value, counted up in its last 48 bits.

    For rows written together (a batch of leads): the newest-first tiebreak on the id
    then follows the batch's order, and counting costs a fraction of `new_uuid` per id.
    """
    text = new_uuid()
    head = text[:24]  # time, version, variant and the first random bits: shared
    # The top bit cleared leaves 2**47 steps before the count could carry into `head`.
    start = int(text[24:], 16) & ((1 << 47) - 1)
    return [f"{head}{start + step:012x}" for step in range(count)]


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def parse_uuid(text: str) -> str | None:
    """The id as stored (lower-case) when `text` is a UUID in its usual form, else None:
    an id in a path or a body that is not one names no row, and is answered as not found
    without a query."""
    lowered = text.lower()
    return lowered if _UUID.fullmatch(lowered) else None


def is_uuid(text: str) -> bool:
    return parse_uuid(text) is not None

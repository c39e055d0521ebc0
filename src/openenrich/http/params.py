"""Bounds for numbers that arrive in query parameters and headers.

Every number a client sends ends up in a SQL statement sooner or later; SQLite and
PostgreSQL both stop at a signed 64-bit integer (SQLite with an OverflowError in the
driver, PostgreSQL with "bigint out of range"), so a number is refused at the edge rather
than found out of range halfway through a response.
"""

from __future__ import annotations

import re

from openenrich.errors import InvalidRequest

INT64_MAX = 2**63 - 1

# ASCII digits only: str.isdigit() also admits "²" and other Unicode digits int() refuses.
_DIGITS = re.compile(r"[0-9]{1,19}")


def event_id(header: str, value: str) -> int:
    """An SSE event id a client sends back (`Last-Event-ID`): 0 to INT64_MAX."""
    text = value.strip()
    if _DIGITS.fullmatch(text) is None or int(text) > INT64_MAX:
        raise InvalidRequest(
            f"{header}: must be an event id (a whole number from 0 to {INT64_MAX})"
        )
    return int(text)

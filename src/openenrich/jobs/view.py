"""What a surface tells the job facility about one kind of its jobs, once, at import.

The facility (long-polls and event streams in `stream.py`, idempotent creation in
`idempotency.py`) knows job rows and event logs; how a job looks to a client is the
surface's: its resource, its words for the statuses, how an event goes on the wire, and
its error for a reused Idempotency-Key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import orjson
from fastapi.sse import format_sse_event

from openenrich.db import Database
from openenrich.errors import OpenEnrichError
from openenrich.jobs.models import TERMINAL
from openenrich.tenancy.tenant import Tenant

R = TypeVar("R")


def sse_event(seq: int, type: str, data: dict[str, Any]) -> bytes:
    """An event as `id:`, `event:` and one JSON `data:` line."""
    return format_sse_event(id=str(seq), event=type, data_str=orjson.dumps(data).decode())


def same_status(status: str) -> str:
    return status


@dataclass(frozen=True)
class JobView(Generic[R]):
    kind: str
    # The job's resource as committed; the surface's NotFound when the tenant has no such job.
    read: Callable[[Database, Tenant, str], Awaitable[R]]
    # The status a resource shows, in the surface's words.
    status: Callable[[R], str]
    # What a request with a used Idempotency-Key and another body is told (given the job id).
    reused: Callable[[str], OpenEnrichError]
    # A job row's status in the surface's words.
    public_status: Callable[[str], str] = same_status
    # One event of the job's log, as the bytes of an SSE event.
    event: Callable[[int, str, dict[str, Any]], bytes] = sse_event
    terminal: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "terminal", frozenset(map(self.public_status, TERMINAL)))

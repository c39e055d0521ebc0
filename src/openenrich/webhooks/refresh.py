"""What a delivery must say as of when it is sent, not when it was queued.

A payload is stored whole in the outbox when its event happens, and a retry hours later
sends it again. Most of it should not change (receivers dedupe on the event), but a link
that expires (a run's signed `report_url`) must work when the receiver gets it: the
surface that owns such a field registers a refresher for its event types, and the
dispatcher applies it to each attempt.

    register_refresher("run.", fresh_report_url)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

Refresher = Callable[[AsyncSession, dict[str, Any]], Awaitable[dict[str, Any]]]

REFRESHERS: dict[str, Refresher] = {}


def register_refresher(event_prefix: str, refresher: Refresher) -> None:
    """`refresher(session, payload)` gives the payload of an event whose type starts with
    `event_prefix` as it should be sent now."""
    REFRESHERS[event_prefix] = refresher


async def refreshed(
    session: AsyncSession, event_type: str, payload: dict[str, Any]
) -> dict[str, Any]:
    for prefix, refresher in REFRESHERS.items():
        if event_type.startswith(prefix):
            payload = await refresher(session, payload)
    return payload

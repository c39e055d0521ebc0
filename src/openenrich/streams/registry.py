"""Stream configurations as ingest sees them, cached briefly in process.

Ingest looks its stream up on every request; the cache keeps that off the database. A
change made through this process is seen at once; one made by another process is seen
within `stream_cache_seconds`.

"At once" takes two rules. A change drops the cached copy after its transaction commits
(`configuration.py`): dropped before, a request in between would read the old row again
and keep it. And a lookup whose read was under way while a change was dropped does not
keep what it read, which may be the row from before the commit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from openenrich.db import Database
from openenrich.streams.fields import EventValidator, declared_types
from openenrich.streams.models import STREAM_ID, Stream
from openenrich.tenancy.tenant import Tenant


@dataclass(frozen=True, slots=True)
class StreamConfig:
    stream_id: str
    schema_mode: str
    fields: dict[str, Any] | None
    version: int
    validator: EventValidator | None = field(default=None, compare=False)
    template: str | None = None
    pipeline: list[dict[str, Any]] | None = field(default=None, compare=False)

    @property
    def declared(self) -> dict[str, str]:
        return declared_types(self.fields)


def config_of(stream: Stream) -> StreamConfig:
    strict = stream.schema_mode == "strict"
    return StreamConfig(
        stream_id=stream.stream_id,
        schema_mode=stream.schema_mode,
        fields=stream.fields,
        version=stream.version,
        template=stream.template,
        pipeline=stream.pipeline,
        validator=EventValidator(stream.fields or {}) if strict else None,
    )


_LOOKUP = select(Stream)


class StreamRegistry:
    def __init__(self, database: Database, ttl: float) -> None:
        self._database = database
        self._ttl = ttl
        self._cache: dict[tuple[str, str, str], tuple[StreamConfig, float]] = {}
        self._invalidations = 0

    async def get(self, tenant: Tenant, stream_id: str) -> StreamConfig | None:
        if not STREAM_ID.fullmatch(stream_id):
            # No stream has this id, and it is the client's text: looking it up could only
            # fail (PostgreSQL text cannot hold a NUL) or find nothing.
            return None
        key = (tenant.org_id, tenant.environment.value, stream_id)
        cached = self._cache.get(key)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        invalidations = self._invalidations
        stream = await self._database.read(
            lambda connection: connection.execute(
                select(Stream.__table__).where(
                    Stream.org_id == key[0],
                    Stream.environment == key[1],
                    Stream.stream_id == stream_id,
                )
            ).one_or_none()
        )
        if stream is None:
            self._cache.pop(key, None)
            return None
        config = config_of(Stream(**stream._mapping))
        if invalidations == self._invalidations:
            self._cache[key] = (config, time.monotonic() + self._ttl)
        return config

    def invalidate(self, tenant: Tenant, stream_id: str) -> None:
        """Forget the stream's configuration; call it once the change is committed."""
        self._invalidations += 1
        self._cache.pop((tenant.org_id, tenant.environment.value, stream_id), None)

"""Building the streams surface's long-lived parts at startup, and stopping them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.config import Settings
from openenrich.db import Database
from openenrich.enrichers.registry import EnricherEnv
from openenrich.jobs.notify import JobHub
from openenrich.lake.engine import BufferKey, FlushedFile, LakeEngine, Quarantined
from openenrich.lake.query import QuerySandbox
from openenrich.lake.storage import LakeStorage
from openenrich.streams import idempotency
from openenrich.streams.forwarding import forward_flushed
from openenrich.streams.processing import Processing
from openenrich.streams.registry import StreamRegistry
from openenrich.streams.schema_history import track_schema
from openenrich.streams.stats import StreamStats
from openenrich.tenancy.roles import Environment
from openenrich.tenancy.tenant import Tenant

logger = logging.getLogger("openenrich.streams")


@dataclass(slots=True)
class Streams:
    """What the streams surface needs at run time, built once per process."""

    settings: Settings
    database: Database
    storage: LakeStorage
    engine: LakeEngine
    registry: StreamRegistry
    stats: StreamStats
    sandbox: QuerySandbox
    processing: Processing


async def start(
    settings: Settings,
    database: Database,
    hub: Callable[[], JobHub],
    env: EnricherEnv | None = None,
) -> Streams:
    """`hub`: the jobs runtime's, which starts after the surfaces (flushes wake the
    webhook and destination outboxes).
    `env`: the process's shared enricher resources (a new one if not given)."""
    storage = LakeStorage(settings)
    registry = StreamRegistry(database, settings.stream_cache_seconds)
    stats = StreamStats(database, settings.stats_flush_seconds)
    processing = Processing(
        settings, database, storage, registry, stats, hub, env or EnricherEnv(settings)
    )

    async def declared_columns(key: BufferKey, version: int) -> Mapping[str, str] | None:
        """A strict stream's declared types, if the batch was validated against them."""
        tenant = Tenant(key.org_id, Environment(key.environment))
        config = await registry.get(tenant, key.stream_id)
        if config is None or config.schema_mode != "strict" or config.version != version:
            return None
        return config.declared

    async def on_flushed(session: AsyncSession, files: list[FlushedFile]) -> None:
        await track_schema(session, files, scratch=settings.data_dir / "scratch")
        await forward_flushed(session, hub(), storage, settings, files)

    def on_flush_error(key: BufferKey, error: BaseException) -> None:
        stats.error(
            Tenant(key.org_id, Environment(key.environment)),
            kind="processing",
            message=f"writing events to the lake failed (will retry): {error}",
            endpoint="flush",
            stream_id=key.stream_id,
        )

    def on_quarantined(quarantined: list[Quarantined]) -> None:
        for item in quarantined:
            stats.error(
                Tenant(item.key.org_id, Environment(item.key.environment)),
                kind="processing",
                message=(
                    f"{item.events} event(s) could not be written to the lake and were "
                    f"quarantined ({item.reason}); every other event was written. "
                    f"An operator finds them in the data folder at {item.path}"
                ),
                endpoint="flush",
                stream_id=item.key.stream_id,
            )

    engine = LakeEngine(
        settings,
        database,
        storage,
        declared_columns=declared_columns,
        on_flushed=on_flushed,
        on_flush_error=on_flush_error,
        on_quarantined=on_quarantined,
        processors=processing,
    )
    await engine.start()
    await idempotency.resolve_recovered(database, engine)  # before any request meets one
    stats.start()
    sandbox = QuerySandbox(storage, settings)
    return Streams(settings, database, storage, engine, registry, stats, sandbox, processing)


async def stop(streams: Streams) -> None:
    await streams.engine.stop()
    await streams.stats.stop()
    streams.sandbox.close()


__all__ = ["Streams", "start", "stop", "timedelta"]

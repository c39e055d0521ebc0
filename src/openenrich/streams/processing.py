"""Running a stream's template and pipeline on the batches the lake engine flushes.

    engine flush ──▶ Processing(key, version) ──▶ _Run (one per run of log records)
                        prepare: enrichers load their state (sessions)
                        process: the steps over the Arrow batch (flush thread); rows routed
                                 to destinations are staged as outbox files
                        record:  outbox rows and enricher state, in the manifest's transaction
                        finish:  enrichers adopt (or drop) their new state; problems -> /errors

A stream's pipeline is built once per configuration (its version, and the versions of the
tenant's templates it names) and reused for every batch, so enrichers keep their caches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.config import Settings
from openenrich.db import Database
from openenrich.enrichers.registry import Enricher, EnricherEnv, StreamScope
from openenrich.jobs.notify import JobHub
from openenrich.lake.engine import BatchProcessor, BufferKey
from openenrich.lake.parquet import EventBatch
from openenrich.lake.storage import LakeStorage
from openenrich.streams import outbox, templates
from openenrich.streams.models import StreamTemplate
from openenrich.streams.pipeline import Pipeline, Resources, build_pipeline, parse
from openenrich.streams.registry import StreamConfig, StreamRegistry
from openenrich.streams.stats import StreamStats
from openenrich.tenancy.roles import Environment
from openenrich.tenancy.tenant import Tenant

logger = logging.getLogger("openenrich.streams.processing")


def _stateful(enricher: Enricher) -> bool:
    return type(enricher).load is not Enricher.load or type(enricher).save is not Enricher.save


@dataclass(slots=True)
class _Built:
    fingerprint: tuple[object, ...]
    pipeline: Pipeline


class Processing:
    """The lake engine's `Processors` for streams, and what checks a pipeline on save."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        storage: LakeStorage,
        registry: StreamRegistry,
        stats: StreamStats,
        hub: Callable[[], JobHub],
        env: EnricherEnv,
    ) -> None:
        self.settings = settings
        self.database = database
        self.storage = storage
        self.registry = registry
        self.stats = stats
        self.hub = hub
        self.env = env
        salt = settings.mask_salt
        self._mask_salt = salt.get_secret_value().encode() if salt is not None else b""
        self._built: dict[tuple[str, str, str], _Built] = {}

    async def resources(self, session: AsyncSession, tenant: Tenant) -> Resources:
        return Resources(
            env=self.env,
            template=await templates.resolver(session, tenant),
            destinations=frozenset(
                await outbox.active_destinations(session, tenant.org_id, tenant.environment.value)
            ),
            mask_salt=(
                self.settings.mask_salt.get_secret_value().encode()
                if self.settings.mask_salt
                else b""
            ),
        )

    async def __call__(self, key: BufferKey, version: int | None) -> BatchProcessor | None:
        tenant = Tenant(key.org_id, Environment(key.environment))
        config = await self.registry.get(tenant, key.stream_id)
        if config is None or (not config.pipeline and config.template is None):
            return None
        pipeline = await self._pipeline(tenant, config)
        return _Run(self, pipeline, key, tenant)

    async def _pipeline(self, tenant: Tenant, config: StreamConfig) -> Pipeline:
        cache_key = (tenant.org_id, tenant.environment.value, config.stream_id)
        async with self.database.session() as session:
            rows = await session.execute(
                select(StreamTemplate.template_id, StreamTemplate.version).where(
                    tenant.owns(StreamTemplate)
                )
            )
            own = {str(row[0]): int(row[1]) for row in rows}
            fingerprint = (config.version, tuple(sorted(own.items())))
            built = self._built.get(cache_key)
            if built is not None and built.fingerprint == fingerprint:
                return built.pipeline
            resources = await self.resources(session, tenant)
        # What was valid when saved is built the same way now; the destinations a route
        # names were checked then (and cannot be deleted while it names them).
        unchecked = Resources(resources.env, resources.template, None, resources.mask_salt)
        pipeline = build_pipeline(
            parse(config.pipeline),
            unchecked,
            template=config.template,
            declared=config.declared if config.schema_mode == "strict" else None,
        )
        self._built[cache_key] = _Built(fingerprint, pipeline)
        return pipeline


@dataclass(slots=True)
class _Run:
    processing: Processing
    pipeline: Pipeline
    key: BufferKey
    tenant: Tenant
    staged: list[outbox.StagedBatch] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def scope(self) -> StreamScope:
        return StreamScope(self.key.org_id, self.key.environment, self.key.stream_id)

    async def prepare(self, batch: EventBatch) -> None:
        for enricher in self.pipeline.enrichers:
            if _stateful(enricher):
                await enricher.load(self.processing.database, self.scope, batch.table)

    def process(self, batch: EventBatch, name: str) -> EventBatch:
        outcome = self.pipeline.run(batch)
        self.problems = outcome.problems
        for destination, table in outcome.routed.items():
            if table.num_rows:
                self.staged.append(
                    outbox.stage(
                        self.processing.storage,
                        self.key.org_id,
                        self.key.environment,
                        destination,
                        self.key.stream_id,
                        name,
                        table,
                    )
                )
        return outcome.lake

    async def record(self, session: AsyncSession) -> None:
        if self.staged:
            await outbox.enqueue(session, self.processing.hub(), self.staged)
        for enricher in self.pipeline.enrichers:
            if _stateful(enricher):
                await enricher.save(session, self.scope)

    def finish(self, committed: bool) -> None:
        for enricher in self.pipeline.enrichers:
            if committed:
                enricher.committed()
            else:
                enricher.discarded()
        if committed:
            for problem in self.problems:
                self.processing.stats.error(
                    self.tenant,
                    kind="processing",
                    message=problem,
                    endpoint="flush",
                    stream_id=self.key.stream_id,
                )

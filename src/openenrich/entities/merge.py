"""Fusing existing records on demand (POST /api/fusion/merge), and the fused record any
fusion becomes (the enrichment job's too).

    sources(database, tenant, record_ids)   the records, checked: a tenant's, enrichment
                                            records of one entity and one schema version,
                                            each by another model; and that schema
    fusion.fuse_entity(…)                   the fusion, with the arbiter when asked
    fused_record(tenant, fused, …)          the EntityRecord (type "fusion", model "fusion")

`merge()` runs the three in one request. The reads use a session of their own that is
closed before the arbiter is called, and the record is added to the request's session
after it, so no connection is held while a model thinks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.db import Database
from openenrich.entities import schema_store
from openenrich.entities.fusion import Fused, fuse_entity
from openenrich.entities.models import EntityRecord
from openenrich.entities.normalize import normalize
from openenrich.errors import BadRequest, NotFound
from openenrich.ids import is_uuid, new_uuid, utcnow
from openenrich.llm.gateway import Gateway
from openenrich.tenancy.tenant import Tenant

MIN_RECORDS = 2
MAX_RECORDS = 20


@dataclass(frozen=True)
class Sources:
    records: list[EntityRecord]  # in the order asked for: ties are broken by it
    json_schema: dict[str, Any]

    @property
    def results(self) -> dict[str, dict[str, Any]]:
        return {record.model: record.structured_output for record in self.records}


async def sources(database: Database, tenant: Tenant, record_ids: Sequence[str]) -> Sources:
    """The records to merge and their schema; 404 for a record that is not the tenant's
    (or a schema version that no longer exists), 400 for records that cannot be merged."""
    if len(record_ids) < MIN_RECORDS:
        raise BadRequest(f"record_ids needs at least {MIN_RECORDS} records to merge")
    if len(record_ids) > MAX_RECORDS:
        raise BadRequest(f"record_ids may name at most {MAX_RECORDS} records")
    if len(set(record_ids)) != len(record_ids):
        raise BadRequest("record_ids names a record more than once")
    for record_id in record_ids:
        if not is_uuid(record_id):
            raise NotFound(f"Record {record_id} not found")
    async with database.session() as session:
        found = {
            row.id: row
            for row in await session.scalars(
                select(EntityRecord).where(
                    EntityRecord.id.in_(record_ids),
                    EntityRecord.org_id == tenant.org_id,
                    EntityRecord.environment == tenant.environment.value,
                )
            )
        }
        for record_id in record_ids:
            if record_id not in found:
                raise NotFound(f"Record {record_id} not found")
        records = [found[record_id] for record_id in record_ids]
        _check_mergeable(records)
        first = records[0]
        assert first.schema_id is not None
        assert first.schema_version is not None
        try:
            schema = await schema_store.load(session, tenant, first.schema_id, first.schema_version)
        except NotFound:
            raise NotFound(
                f"Schema {first.schema_id} version {first.schema_version} no longer exists"
            ) from None
        return Sources(records, schema.json_schema)


def _check_mergeable(records: list[EntityRecord]) -> None:
    for record in records:
        if record.type != "enrichment":
            raise BadRequest(
                f"Record {record.id} is a {record.type} record: only enrichment records merge"
            )
    first = records[0]
    if first.schema_id is None or first.schema_version is None:
        raise BadRequest(f"Record {first.id} names no schema: records without one cannot merge")
    entity = normalize(first.entity_data)
    for record in records[1:]:
        if normalize(record.entity_data) != entity:
            raise BadRequest(
                f"Records {first.id} and {record.id} are not of one entity (their entity_data "
                "differ)"
            )
        if (record.schema_id, record.schema_version) != (first.schema_id, first.schema_version):
            raise BadRequest(
                f"Records {first.id} and {record.id} were made with different schemas "
                f"({first.schema_id} v{first.schema_version}, "
                f"{record.schema_id} v{record.schema_version})"
            )
    models: set[str] = set()
    for record in records:
        if record.model in models:
            raise BadRequest(f"Two of the records are by {record.model}: merge different models")
        models.add(record.model)


def fused_record(
    tenant: Tenant,
    fused: Fused,
    *,
    entity_data: dict[str, Any],
    entity_name: str | None,
    schema_id: str | None,
    schema_version: int | None,
    models: list[str],
    arbitration_model: str | None,
    strategy: str | None,
    started_at: datetime,
    job_id: str | None = None,
    entity_index: int | None = None,
) -> EntityRecord:
    """The fused record: type and model "fusion", the fused models in `models`; its cost
    and tokens are the arbiter's (0 without one). Not added to any session."""
    completed_at = utcnow()
    input_tokens, output_tokens = fused.tokens
    return EntityRecord(
        id=new_uuid(),
        org_id=tenant.org_id,
        environment=tenant.environment.value,
        type="fusion",
        job_id=job_id,
        entity_index=entity_index,
        entity_data=entity_data,
        entity_name=entity_name,
        schema_id=schema_id,
        schema_version=schema_version,
        model="fusion",
        models=models,
        arbitration_model=arbitration_model,
        strategy=strategy,
        structured_output=fused.value,
        fusion=fused.account,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost=fused.cost,
        started_at=started_at,
        completed_at=completed_at,
        duration_ms=round((completed_at - started_at).total_seconds() * 1000),
        created_at=completed_at,
    )


async def merge(
    session: AsyncSession,
    gateway: Gateway,
    tenant: Tenant,
    found: Sources,
    arbitration_model: str | None,
) -> tuple[EntityRecord, Fused]:
    """Fuse the records (asking the arbiter about the disputed fields), add the fused
    record to `session`. The arbiter is checked (unknown model, missing key: 400) first."""
    if arbitration_model is not None:
        await gateway.ready(tenant, arbitration_model)
    started_at = utcnow()
    first = found.records[0]
    fused = await fuse_entity(
        gateway,
        tenant,
        found.results,
        found.json_schema,
        first.entity_data,
        arbitration_model=arbitration_model,
    )
    strategies = {record.strategy for record in found.records}
    record = fused_record(
        tenant,
        fused,
        entity_data=first.entity_data,
        entity_name=first.entity_name,
        schema_id=first.schema_id,
        schema_version=first.schema_version,
        models=[record.model for record in found.records],
        arbitration_model=arbitration_model,
        strategy=strategies.pop() if len(strategies) == 1 else None,
        started_at=started_at,
    )
    session.add(record)
    await session.flush()
    return record, fused

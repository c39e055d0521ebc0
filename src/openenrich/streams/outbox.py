"""TEMPORARY stand-in (replaced by the destinations branch)."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.jobs.notify import JobHub
from openenrich.lake.storage import LakeStorage
from openenrich.tenancy.tenant import Tenant


@dataclass(frozen=True)
class StagedBatch:
    org_id: str
    environment: str
    destination_id: str
    stream_id: str
    name: str
    path: str
    rows: int
    bytes: int


def stage(
    storage: LakeStorage,
    org_id: str,
    environment: str,
    destination_id: str,
    stream_id: str,
    name: str,
    table: pa.Table,
) -> StagedBatch:
    raise NotImplementedError


async def enqueue(session: AsyncSession, hub: JobHub, batches: list[StagedBatch]) -> None:
    raise NotImplementedError


async def destination_ids(session: AsyncSession, tenant: Tenant) -> frozenset[str] | None:
    return None

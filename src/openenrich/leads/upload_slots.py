"""At most `lead_upload_concurrency` (3) uploads in progress per tenant; the next is a 429
until one finishes, as the reference's "concurrent bulk uploads: 3 per account".

An upload holds its slot from before its body is read until its answer is ready, so a
slow client counts as an upload in progress. Two stores, chosen like the rate limiter's
(`rate_limit_backend`):

- `MemoryUploadSlots`: a count in this process. The default on SQLite, where one process
  serves.
- `DatabaseUploadSlots`: leases in `lead_upload_slots`, shared by every `serve` process on
  one PostgreSQL (an in-process count would let each process take three). A lease
  expires after `LEASE_SECONDS`, so a process that dies holding one gives it back; an
  upload that outlives its lease (a body trickled in for a minute) may let a fourth in.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite

from openenrich.config import Settings
from openenrich.db import Database, table
from openenrich.errors import RateLimited
from openenrich.leads.models import LeadUploadSlot
from openenrich.tenancy.tenant import Tenant

LEASE_SECONDS = 60.0
RETRY_AFTER_SECONDS = 1  # an upload of a few thousand leads takes well under a second


@dataclass(frozen=True, slots=True)
class Lease:
    tenant: Tenant
    slot: int
    holder: str


class UploadSlots(Protocol):
    concurrency: int

    async def acquire(self, tenant: Tenant) -> Lease | None: ...

    async def release(self, lease: Lease) -> None: ...


class MemoryUploadSlots:
    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self._held: Counter[Tenant] = Counter()

    async def acquire(self, tenant: Tenant) -> Lease | None:
        if self._held[tenant] >= self.concurrency:
            return None
        self._held[tenant] += 1
        return Lease(tenant, self._held[tenant] - 1, "")

    async def release(self, lease: Lease) -> None:
        self._held[lease.tenant] -= 1
        if self._held[lease.tenant] <= 0:
            del self._held[lease.tenant]


class DatabaseUploadSlots:
    """Slot k of a tenant is a row; taking it is an upsert that only overwrites an expired
    lease, so whichever process's statement reaches the row first gets it."""

    def __init__(self, database: Database, concurrency: int) -> None:
        self.database = database
        self.concurrency = concurrency
        self._insert = postgresql.insert if database.dialect == "postgresql" else sqlite.insert

    async def acquire(self, tenant: Tenant) -> Lease | None:
        slots = table(LeadUploadSlot)
        holder = secrets.token_hex(16)
        now = time.time()
        async with self.database.session() as session:
            for slot in range(self.concurrency):
                statement = (
                    self._insert(slots)
                    .values(
                        org_id=tenant.org_id,
                        environment=tenant.environment.value,
                        slot=slot,
                        holder=holder,
                        expires_at=now + LEASE_SECONDS,
                    )
                    .on_conflict_do_update(
                        index_elements=[slots.c.org_id, slots.c.environment, slots.c.slot],
                        set_={"holder": holder, "expires_at": now + LEASE_SECONDS},
                        where=slots.c.expires_at < now,
                    )
                    .returning(slots.c.slot)
                )
                taken = (await session.execute(statement)).first()
                if taken is not None:
                    await session.commit()
                    return Lease(tenant, slot, holder)
            await session.commit()
        return None

    async def release(self, lease: Lease) -> None:
        slots = table(LeadUploadSlot)
        async with self.database.session() as session:
            await session.execute(
                delete(slots).where(
                    slots.c.org_id == lease.tenant.org_id,
                    slots.c.environment == lease.tenant.environment.value,
                    slots.c.slot == lease.slot,
                    slots.c.holder == lease.holder,
                )
            )
            await session.commit()


def make_upload_slots(settings: Settings, database: Database) -> UploadSlots:
    backend = settings.rate_limit_backend
    if backend == "auto":
        backend = "memory" if database.dialect == "sqlite" else "database"
    if backend == "memory":
        return MemoryUploadSlots(settings.lead_upload_concurrency)
    return DatabaseUploadSlots(database, settings.lead_upload_concurrency)


@contextlib.asynccontextmanager
async def upload_slot(slots: UploadSlots, tenant: Tenant) -> AsyncIterator[None]:
    """Hold one of the tenant's slots, or refuse with a 429."""
    lease = await slots.acquire(tenant)
    if lease is None:
        raise RateLimited(
            f"Too many concurrent uploads: at most {slots.concurrency} per account;"
            " retry when one finishes",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    try:
        yield
    finally:
        await slots.release(lease)

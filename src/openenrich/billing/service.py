"""The credit ledger. A charge is keyed by (source, item): recording it twice is a no-op."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.billing.models import LedgerEntry
from openenrich.db import table
from openenrich.errors import PaymentRequired
from openenrich.ids import new_id, utcnow
from openenrich.tenancy.tenant import PlanLimits, Tenant


def _charge_statement(insert: Callable[[Table], Any]) -> Any:
    ledger = table(LedgerEntry)
    return insert(ledger).on_conflict_do_nothing(index_elements=["source_id", "item_id"])


_CHARGE = {
    "postgresql": _charge_statement(postgresql.insert),
    "sqlite": _charge_statement(sqlite.insert),
}


async def charge(
    session: AsyncSession,
    tenant: Tenant,
    *,
    source_id: str,
    item_id: str,
    credits: Decimal,
    description: str = "",
) -> None:
    """Record a charge once. The test environment is never billed."""
    if tenant.is_test or credits <= 0:
        return
    assert session.bind is not None
    await session.execute(
        _CHARGE[session.bind.dialect.name],
        {
            "id": new_id("led"),
            "org_id": tenant.org_id,
            "environment": tenant.environment.value,
            "source_id": source_id,
            "item_id": item_id,
            "description": description[:200],
            "credits": credits,
            "created_at": utcnow(),
        },
    )


async def used(session: AsyncSession, tenant: Tenant, source_id: str | None = None) -> Decimal:
    query = select(func.coalesce(func.sum(LedgerEntry.credits), 0)).where(tenant.owns(LedgerEntry))
    if source_id is not None:
        query = query.where(LedgerEntry.source_id == source_id)
    return Decimal(await session.scalar(query) or 0)


@dataclass(frozen=True, slots=True)
class Balance:
    used: Decimal
    remaining: Decimal | None  # None: unlimited; negative: overdraft owed
    maximum: Decimal | None


async def balance(session: AsyncSession, tenant: Tenant, plan: PlanLimits) -> Balance:
    spent = await used(session, tenant)
    if plan.credit_policy != "prepaid" or plan.max_credits is None or tenant.is_test:
        return Balance(spent, None, None)
    return Balance(spent, plan.max_credits - spent, plan.max_credits)


async def admit(session: AsyncSession, tenant: Tenant, plan: PlanLimits) -> None:
    """Refuse new work when the balance is at or below zero. Admitted work then runs to its
    end even past zero: the balance goes negative (overdraft)."""
    if plan.credit_policy != "prepaid" or plan.max_credits is None or tenant.is_test:
        return  # nothing to check: no query
    current = await balance(session, tenant, plan)
    if current.remaining is not None and current.remaining <= 0:
        raise PaymentRequired("Organisation has no credits remaining", code="insufficient_credits")

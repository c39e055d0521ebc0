"""Organisations, keys and plans. Callers own the transaction: nothing here commits."""

from __future__ import annotations

import hmac
import math
import time
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.db import Database
from openenrich.errors import BadRequest, NotFound, Unauthorized
from openenrich.ids import new_id, utcnow
from openenrich.tenancy import keys
from openenrich.tenancy.models import ApiKey, Organization, Plan
from openenrich.tenancy.roles import Environment, Role
from openenrich.tenancy.tenant import PlanLimits, Principal, Tenant

DEFAULT_ORG = "default"
DEFAULT_PLAN = "unlimited"


async def get_organization(session: AsyncSession, name: str) -> Organization:
    org = await session.scalar(select(Organization).where(Organization.name == name))
    if org is None:
        raise NotFound(f"Organisation '{name}' not found")
    return org


async def ensure_organization(session: AsyncSession, name: str) -> Organization:
    org = await session.scalar(select(Organization).where(Organization.name == name))
    return org if org is not None else await create_organization(session, name)


async def create_organization(session: AsyncSession, name: str) -> Organization:
    """A new organisation; IntegrityError if the name is taken (also by a concurrent one)."""
    if not name.strip() or len(name) > 100:
        raise BadRequest("organisation name must be 1 to 100 characters")
    org = Organization(id=new_id("org"), name=name, plan_name=DEFAULT_PLAN)
    session.add(org)
    await session.flush()
    return org


async def list_organizations(session: AsyncSession) -> list[Organization]:
    return list(await session.scalars(select(Organization).order_by(Organization.created_at)))


async def create_key(
    session: AsyncSession,
    org: Organization,
    *,
    environment: Environment = Environment.LIVE,
    role: Role = Role.MEMBER,
    name: str = "",
    expires_in: timedelta | None = None,
    auto_approve: bool = False,
) -> tuple[ApiKey, str]:
    """A new key and its plaintext, which exists only in this return value."""
    now = utcnow()
    for _ in range(5):  # a clash of 16-character prefixes is rare; a retry settles it
        plaintext = keys.generate(environment)
        prefix = keys.display_prefix(plaintext)
        if await session.scalar(select(ApiKey.id).where(ApiKey.prefix == prefix)) is None:
            break
    else:  # pragma: no cover - 47 bits of prefix would have to clash five times
        raise RuntimeError("could not find a free key prefix")
    key = ApiKey(
        id=new_id("key"),
        org_id=org.id,
        environment=environment.value,
        name=name,
        role=role.value,
        prefix=prefix,
        key_hash=keys.digest(plaintext),
        created_at=now,
        expires_at=now + expires_in if expires_in else None,
        auto_approve=auto_approve,
    )
    session.add(key)
    await session.flush()
    return key, plaintext


async def list_keys(
    session: AsyncSession, *, tenant: Tenant | None = None, org: Organization | None = None
) -> list[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
    if tenant is not None:
        query = query.where(tenant.owns(ApiKey))
    if org is not None:
        query = query.where(ApiKey.org_id == org.id)
    return list(await session.scalars(query))


async def revoke_key(session: AsyncSession, prefix: str, *, tenant: Tenant | None = None) -> ApiKey:
    """Revoke the key named by its display prefix; another tenant's key is not found."""
    query = select(ApiKey).where(ApiKey.prefix == prefix)
    if tenant is not None:
        query = query.where(tenant.owns(ApiKey))
    key = await session.scalar(query)
    if key is None:
        raise NotFound(f"API key '{prefix}' not found")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await session.flush()
    return key


_KEY_LOOKUP = (
    select(
        ApiKey.id,
        ApiKey.prefix,
        ApiKey.role,
        ApiKey.org_id,
        ApiKey.environment,
        ApiKey.key_hash,
        ApiKey.revoked_at,
        ApiKey.expires_at,
        ApiKey.last_used_at,
        ApiKey.auto_approve,
        Organization.name.label("org_name"),
        Plan.name.label("plan_name"),
        Plan.requests_per_second,
        Plan.events_per_month,
        Plan.lead_quota,
        Plan.credit_policy,
        Plan.max_credits,
    )
    .join(Organization, Organization.id == ApiKey.org_id)
    .join(Plan, Plan.name == Organization.plan_name)
    .where(ApiKey.key_hash == bindparam("digest"))
)


class KeyCache:
    """Principals already looked up, valid while no key, organisation or plan has changed.

    Every request still asks the database whether one has (`Database.tenancy_marker`, a
    counter that triggers bump: microseconds on SQLite); if so, the entry is not used. A
    revoked, expired, re-planned or deleted key is therefore refused on the very next
    request, from any process. Other writes (runs, events, a key's `last_used_at`) leave
    the cache warm. Where the backend has no cheap marker (PostgreSQL), nothing is cached.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self._entries: dict[str, tuple[Principal, int]] = {}
        self._limit = limit

    def get(self, digest: str, marker: int | None) -> Principal | None:
        if marker is None:
            return None
        entry = self._entries.get(digest)
        if entry is None or entry[1] != marker:
            return None
        return entry[0]

    def put(self, digest: str, principal: Principal, marker: int | None) -> None:
        if marker is None:
            return
        if len(self._entries) >= self._limit:
            self._entries.clear()
        self._entries[digest] = (principal, marker)


async def authenticate(
    database: Database, presented: str | None, cache: KeyCache | None = None
) -> Principal:
    """The principal a presented key stands for, or `Unauthorized`, the same for every failure.

    Only reads (every request pays for it: one indexed query on the fastest path the backend
    has, or a `KeyCache` hit); a caller that accepts the request then calls
    `record_key_use`.
    """
    if presented is None or not keys.is_well_formed(presented):
        raise Unauthorized()
    digest = keys.digest(presented)
    # Read the marker before the lookup: a change that lands during it is seen next time.
    marker = database.tenancy_marker() if cache is not None else None
    if cache is not None:
        cached = cache.get(digest, marker)
        if cached is not None:
            if cached.expires_at is not None and cached.expires_at <= utcnow():
                raise Unauthorized()
            return cached
    row = await database.read(
        lambda connection: connection.execute(_KEY_LOOKUP, {"digest": digest}).one_or_none()
    )
    # The lookup is by digest, so its timing says nothing about the plaintext; the
    # constant-time compare is the check that decides.
    if (
        row is None
        or not hmac.compare_digest(row.key_hash, digest)
        or row.revoked_at is not None
        or (row.expires_at is not None and row.expires_at <= utcnow())
    ):
        raise Unauthorized()
    principal = Principal(
        key_id=row.id,
        key_prefix=row.prefix,
        role=Role(row.role),
        tenant=Tenant(org_id=row.org_id, environment=Environment(row.environment)),
        org_name=row.org_name,
        plan=PlanLimits(
            name=row.plan_name,
            requests_per_second=row.requests_per_second,
            events_per_month=row.events_per_month,
            lead_quota=row.lead_quota,
            credit_policy=row.credit_policy,
            max_credits=row.max_credits,
        ),
        last_used_at=row.last_used_at,
        expires_at=row.expires_at,
        auto_approve=row.auto_approve,
    )
    if cache is not None:
        cache.put(digest, principal, marker)
    return principal


class KeyUseTracker:
    """Decides when a key's `last_used_at` is worth writing.

    The column has `resolution` precision: a key used a thousand times a second costs one
    write a second, not a thousand, and concurrent requests in one process share it.
    """

    def __init__(self, resolution: float) -> None:
        self.resolution = resolution
        self._written: dict[str, float] = {}  # key id -> time.monotonic() of our last write

    def due(self, principal: Principal) -> bool:
        last = principal.last_used_at
        if last is not None and (utcnow() - last).total_seconds() < self.resolution:
            return False
        now = time.monotonic()
        if now - self._written.get(principal.key_id, -math.inf) < self.resolution:
            return False
        self._written[principal.key_id] = now
        return True


async def record_key_use(session: AsyncSession, key_id: str) -> None:
    await session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=utcnow()))


async def bootstrap(session: AsyncSession) -> str | None:
    """On a database with no organisation yet: create `default` and return its admin key."""
    if await session.scalar(select(Organization.id).limit(1)) is not None:
        return None
    # Create, not get-or-create: a process that bootstraps at the same moment must fail
    # on the unique name rather than add a second admin key to the first one's org.
    org = await create_organization(session, DEFAULT_ORG)
    _key, plaintext = await create_key(
        session, org, environment=Environment.LIVE, role=Role.ADMIN, name="bootstrap admin"
    )
    return plaintext


async def list_plans(session: AsyncSession) -> list[Plan]:
    return list(await session.scalars(select(Plan).order_by(Plan.name)))


async def get_plan(session: AsyncSession, name: str) -> Plan:
    plan = await session.get(Plan, name)
    if plan is None:
        raise NotFound(f"Plan '{name}' not found")
    return plan


async def set_org_plan(session: AsyncSession, org_name: str, plan_name: str) -> Organization:
    org = await get_organization(session, org_name)
    plan = await get_plan(session, plan_name)
    org.plan_name = plan.name
    await session.flush()
    return org


@dataclass(frozen=True, slots=True)
class PlanChanges:
    display_name: str | None = None
    description: str | None = None
    # For the limits, `None` means "leave as is" and `UNLIMITED` means "no limit".
    requests_per_second: float | Unlimited | None = None
    events_per_month: int | Unlimited | None = None
    lead_quota: int | Unlimited | None = None
    credit_policy: str | None = None
    max_credits: Decimal | Unlimited | None = None


class Unlimited:
    """Marks a plan limit as removed (stored as NULL)."""


UNLIMITED = Unlimited()
CREDIT_POLICIES = ("unlimited", "prepaid")


async def upsert_plan(session: AsyncSession, name: str, changes: PlanChanges) -> Plan:
    if changes.credit_policy is not None and changes.credit_policy not in CREDIT_POLICIES:
        raise BadRequest(f"credit_policy must be one of {', '.join(CREDIT_POLICIES)}")
    plan = await session.get(Plan, name)
    if plan is None:
        plan = Plan(name=name, display_name=changes.display_name or name, description="")
        plan.credit_policy = "unlimited"
        session.add(plan)
    if changes.display_name is not None:
        plan.display_name = changes.display_name
    if changes.description is not None:
        plan.description = changes.description
    if changes.credit_policy is not None:
        plan.credit_policy = changes.credit_policy
    for field in ("requests_per_second", "events_per_month", "lead_quota", "max_credits"):
        value = getattr(changes, field)
        if value is not None:
            setattr(plan, field, None if isinstance(value, Unlimited) else value)
    if plan.requests_per_second is not None and plan.requests_per_second <= 0:
        raise BadRequest("requests_per_second must be positive")
    await session.flush()
    return plan

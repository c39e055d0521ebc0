"""`POST /v1/pipelines/{id}/leads`: a JSON array of leads into a pipeline.

Each row is checked on its own: a bad row is `failed` with its reason and the others
land. A row is `skipped` when its address (normalised: `addresses.email_key`) is already
in the tenant's account, in any pipeline, or earlier in the batch. The plan's lead quota
counts the tenant's leads: the batch is cut to what still fits (the rest `dropped`), and
an upload that can add nothing at the quota is a 402.

The quota check is atomic: the upload first locks the tenant's `lead_accounts` row (an
upsert, which takes the row lock on PostgreSQL and the write lock on SQLite) and holds it
until the request commits, so two uploads of one tenant, in any processes, pass the
check one after the other and cannot both fill the last places. The rows go in with one
statement per table (`bulk.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.db import table
from openenrich.errors import BadRequest, PayloadTooLarge, PaymentRequired
from openenrich.ids import new_uuids, parse_uuid, utcnow
from openenrich.leads import bulk, pipelines
from openenrich.leads.addresses import MalformedAddress, email_key
from openenrich.leads.models import LEAD_FIELDS, LeadAccount, Pipeline
from openenrich.tenancy.tenant import Principal, Tenant

_KNOWN = frozenset({"email", "custom_fields", *LEAD_FIELDS})
_UNKNOWN_FIELD = (
    "unknown field {!r}: a lead has email, "
    + ", ".join(LEAD_FIELDS)
    + " and custom_fields (an object, for anything else)"
)


@dataclass(slots=True)
class Candidate:
    """A row that passed its checks: what its lead will hold."""

    index: int
    row_email: str  # as sent
    email: str  # stripped
    key: str
    fields: tuple[str | None, ...]  # in LEAD_FIELDS' order
    custom_fields: str  # JSON text, written as is


_NO_FIELDS: tuple[str | None, ...] = (None,) * len(LEAD_FIELDS)


def _checked(index: int, row: Any) -> Candidate | str:
    """The row's lead, or why it cannot be one."""
    if not isinstance(row, dict):
        return "each lead must be a JSON object"
    email = row.get("email")
    if email is None:
        return "email is required"
    if not isinstance(email, str):
        return "email must be a string"
    email = email.strip()
    if not email:
        return "email is required"
    fields = _NO_FIELDS
    custom_text = "{}"
    if len(row) > 1:  # anything besides the address (most rows of a big upload have not)
        if not _KNOWN.issuperset(row):
            return _UNKNOWN_FIELD.format(next(name for name in row if name not in _KNOWN))
        fields = tuple(map(row.get, LEAD_FIELDS))
        for name, value in zip(LEAD_FIELDS, fields, strict=True):
            if value is not None and type(value) is not str:
                return f"{name} must be a string"
        custom = row.get("custom_fields")
        if isinstance(custom, dict):
            custom_text = orjson.dumps(custom).decode()
        elif custom is not None:
            return "custom_fields must be an object"
    try:
        key = email_key(email)
    except MalformedAddress as error:
        return f"email is malformed: {error}"
    return Candidate(index, row["email"], email, key, fields, custom_text)


def check_rows(rows: list[Any]) -> tuple[list[dict[str, Any]], list[Candidate]]:
    """Each row's outcome where the rows alone decide it (failed; a repeat of an earlier
    row's address), None for the others; and the candidates: the good rows, one per
    address, in order."""
    outcomes: list[Any] = [None] * len(rows)
    candidates: list[Candidate] = []
    first_row: dict[str, int] = {}
    for index, row in enumerate(rows):
        checked = _checked(index, row)
        if isinstance(checked, str):
            outcome = {"index": index, "status": "failed", "reason": checked}
            if isinstance(row, dict) and isinstance(row.get("email"), str):
                outcome["email"] = row["email"]
            outcomes[index] = outcome
            continue
        earlier = first_row.setdefault(checked.key, index)
        if earlier != index:
            outcomes[index] = {
                "index": index,
                "status": "skipped",
                "email": checked.row_email,
                "reason": f"duplicate of row {earlier} in this upload",
            }
            continue
        candidates.append(checked)
    return outcomes, candidates


def _insert_for(session: AsyncSession) -> Any:
    assert session.bind is not None
    return postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert


async def _lock_account(session: AsyncSession, tenant: Tenant) -> int:
    """Lock the tenant's lead count until the transaction ends, and read it."""
    accounts = table(LeadAccount)
    statement = (
        _insert_for(session)(accounts)
        .values(org_id=tenant.org_id, environment=tenant.environment.value, lead_count=0)
        .on_conflict_do_update(
            index_elements=[accounts.c.org_id, accounts.c.environment],
            set_={"lead_count": accounts.c.lead_count},
        )
        .returning(accounts.c.lead_count)
    )
    return int((await session.execute(statement)).scalar_one())


def _quota_of(principal: Principal) -> int | None:
    # Test keys have no quotas (as streams' monthly events): they act in a tenant of
    # their own that no plan bills.
    return None if principal.tenant.is_test else principal.plan.lead_quota


async def upload(
    session: AsyncSession,
    principal: Principal,
    pipeline_id: str,
    rows: Any,
    *,
    max_rows: int,
) -> dict[str, Any]:
    """Store the rows' leads in the pipeline; the answer (`schemas.UploadOut`) as plain
    values, for orjson."""
    tenant = principal.tenant
    key = parse_uuid(pipeline_id)
    if key is None:
        raise pipelines.not_found()
    if not isinstance(rows, list):
        raise BadRequest("Request body must be a JSON array of leads")
    if not rows:
        raise BadRequest("Request body is an empty array: send at least one lead")
    if len(rows) > max_rows:
        raise PayloadTooLarge(f"At most {max_rows} leads per upload: chunk larger lists")
    # Before the first statement: no connection is held while the rows are checked.
    outcomes, candidates = check_rows(rows)
    quota = _quota_of(principal)

    pipeline_table = table(Pipeline)
    found = await session.scalar(
        select(pipeline_table.c.id).where(
            pipeline_table.c.id == key,
            pipeline_table.c.org_id == tenant.org_id,
            pipeline_table.c.environment == tenant.environment.value,
        )
    )
    if found is None:
        raise pipelines.not_found()

    count = await _lock_account(session, tenant)
    new = candidates
    dropped: list[Candidate] = []
    if quota is not None and len(candidates) > quota - count:
        # Only now does it matter which addresses are new: those the account already has
        # take no place.
        existing = await bulk.existing_keys(session, tenant, [c.key for c in candidates])
        new = [c for c in candidates if c.key not in existing]
        room = max(quota - count, 0)
        if new and room == 0:
            raise PaymentRequired(
                f"Lead quota exceeded: your plan allows {quota} leads",
                extra={"current_count": count, "quota_limit": quota},
            )
        new, dropped = new[:room], new[room:]

    now = utcnow()
    lead_ids = new_uuids(len(new))
    columns: dict[str, list[Any]] = {
        "id": list(lead_ids),
        "email": [c.email for c in new],
        "email_key": [c.key for c in new],
        "custom_fields": [c.custom_fields for c in new],
    }
    with_fields = [c for c in new if c.fields is not _NO_FIELDS]
    for position, name in enumerate(LEAD_FIELDS):
        if any(c.fields[position] is not None for c in with_fields):
            columns[name] = [c.fields[position] for c in new]
    inserted = await bulk.insert_leads(session, tenant, columns, now)
    created = [
        (c, lead_id) for lead_id, c in zip(lead_ids, new, strict=True) if lead_id in inserted
    ]
    links = new_uuids(len(created))
    await bulk.link_leads(session, tenant, key, links, [lead_id for _, lead_id in created], now)
    total = await _count_in(session, tenant, key, len(created), now)

    # What became of each candidate; the rows that failed or repeated an earlier one
    # were decided by check_rows.
    for candidate in candidates:
        outcomes[candidate.index] = {
            "index": candidate.index,
            "status": "skipped",
            "email": candidate.row_email,
            "reason": "already in your account",
        }
    for (candidate, lead_id), link in zip(created, links, strict=True):
        outcomes[candidate.index] = {
            "index": candidate.index,
            "status": "created",
            "email": candidate.row_email,
            "lead_id": lead_id,
            "pipeline_lead_id": link,
        }
    for candidate in dropped:
        outcome = outcomes[candidate.index]
        outcome["status"] = "dropped"
        outcome["reason"] = "over your plan's lead quota"
    tally = dict.fromkeys(("created", "skipped", "failed", "dropped"), 0)
    for outcome in outcomes:
        tally[outcome["status"]] += 1
    return {
        "pipeline_id": key,
        "received": len(rows),
        **tally,
        "total_leads": total,
        "current_count": count + len(created),
        "quota_limit": quota,
        "rows": outcomes,
    }


async def _count_in(
    session: AsyncSession, tenant: Tenant, pipeline_id: str, created: int, now: Any
) -> int:
    """Add `created` to the pipeline's and the account's counters (in this transaction,
    like the rows); the pipeline's total after."""
    pipeline_table = table(Pipeline)
    if not created:
        total = await session.scalar(
            select(pipeline_table.c.total_leads).where(pipeline_table.c.id == pipeline_id)
        )
        return int(total or 0)
    total = await session.scalar(
        update(pipeline_table)
        .where(pipeline_table.c.id == pipeline_id)
        .values(
            total_leads=pipeline_table.c.total_leads + created,
            imported_leads=pipeline_table.c.imported_leads + created,
            updated_at=now,
        )
        .returning(pipeline_table.c.total_leads)
    )
    accounts = table(LeadAccount)
    await session.execute(
        update(accounts)
        .where(
            accounts.c.org_id == tenant.org_id,
            accounts.c.environment == tenant.environment.value,
        )
        .values(lead_count=accounts.c.lead_count + created)
    )
    return int(total or 0)

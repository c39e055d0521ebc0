"""Pipelines and leads for the enrichment tests, written as rows through the models.

The one place tests make them: pipelines and uploads are another part of the surface
(`pipeline_routes.py`, `uploads.py`), and once they are merged this can post to
`POST /v1/pipelines` and `POST /v1/pipelines/:id/leads` instead. It writes what an upload
writes: the lead (one per address per tenant), the junction row, the pipeline's and the
account's counters, and the custom-field keys (`fields.remember_keys`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select

from openenrich.config import Settings
from openenrich.db import Database
from openenrich.ids import new_uuid, utcnow
from openenrich.leads import fields
from openenrich.leads.models import LEAD_FIELDS, Lead, LeadAccount, Pipeline, PipelineLead
from openenrich.tenancy import service
from openenrich.tenancy.roles import Environment
from openenrich.tenancy.tenant import Tenant


@dataclass(frozen=True)
class Seeded:
    pipeline_id: str
    lead_ids: list[str]  # in the order given (the last one is the most recent)


def _run(settings: Settings, work: Any) -> Any:
    async def main() -> Any:
        database = Database.from_settings(settings)
        try:
            async with database.session() as session:
                result = await work(session)
                await session.commit()
                return result
        finally:
            await database.dispose()

    return asyncio.run(main())


def more_leads(
    settings: Settings, pipeline_id: str, leads: list[dict[str, Any]], *, org: str = "acme"
) -> Seeded:
    """Another batch into an existing pipeline, newer than the ones before."""
    return pipeline(settings, leads, org=org, into=pipeline_id)


def pipeline(
    settings: Settings,
    leads: list[dict[str, Any]],
    *,
    org: str = "acme",
    name: str = "Q3 outbound",
    remember: bool = True,
    into: str | None = None,
) -> Seeded:
    """A pipeline of `org` (live) holding `leads` (each with `email`, lead fields and
    `custom_fields`), uploaded in order: the last is the newest. With `remember=False` the
    custom-field keys are not noted (as a writer that does not note them would leave it)."""

    async def work(session: Any) -> Seeded:
        organization = await service.ensure_organization(session, org)
        tenant = Tenant(organization.id, Environment.LIVE)
        owner = {"org_id": tenant.org_id, "environment": tenant.environment.value}
        now = utcnow()
        if into is None:
            row = Pipeline(
                id=new_uuid(),
                name=name,
                created_at=now,
                updated_at=now,
                total_leads=0,
                imported_leads=0,
                **owner,
            )
            session.add(row)
        else:
            row = await session.get(Pipeline, into)
        row.total_leads += len(leads)
        row.imported_leads += len(leads)
        rows: list[dict[str, Any]] = []
        junctions: list[dict[str, Any]] = []
        keys: set[str] = set()
        for n, given in enumerate(leads):
            moment = now + timedelta(microseconds=n)
            custom = given.get("custom_fields") or {}
            keys |= set(custom)
            rows.append(
                {
                    "id": new_uuid(),
                    "email": given["email"],
                    "email_key": given["email"].lower(),
                    "custom_fields": custom,
                    "enrichment_status": "NOT_ENRICHED",
                    "created_at": moment,
                    "updated_at": moment,
                    **{field: given.get(field) for field in LEAD_FIELDS},
                    **owner,
                }
            )
            junctions.append(
                {
                    "id": new_uuid(),
                    "pipeline_id": row.id,
                    "lead_id": rows[-1]["id"],
                    "stage": "IMPORTED",
                    "email_validation_status": None,
                    "email_validation": None,
                    "created_at": moment,
                    **owner,
                }
            )
        await session.flush()
        if rows:
            await session.execute(insert(Lead), rows)
            await session.execute(insert(PipelineLead), junctions)
        lead_ids = [lead["id"] for lead in rows]
        account = await session.get(LeadAccount, (tenant.org_id, tenant.environment.value))
        if account is None:
            session.add(LeadAccount(lead_count=len(leads), **owner))
        else:
            account.lead_count += len(leads)
        if remember:
            await fields.remember_keys(session, tenant, keys)
        await session.flush()
        return Seeded(row.id, lead_ids)

    result: Seeded = _run(settings, work)
    return result


def leads(settings: Settings, lead_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The leads as stored: custom_fields and enrichment_status, by id."""

    async def work(session: Any) -> dict[str, dict[str, Any]]:
        rows = await session.scalars(select(Lead).where(Lead.id.in_(lead_ids)))
        return {
            row.id: {
                "custom_fields": row.custom_fields,
                "enrichment_status": row.enrichment_status,
                "company": row.company,
            }
            for row in rows
        }

    result: dict[str, dict[str, Any]] = _run(settings, work)
    return result


def counters(settings: Settings, pipeline_id: str) -> dict[str, int]:
    async def work(session: Any) -> dict[str, int]:
        row = await session.get(Pipeline, pipeline_id)
        return {"total_leads": row.total_leads, "enriched_leads": row.enriched_leads}

    result: dict[str, int] = _run(settings, work)
    return result

"""Validation jobs: each lead's address through our own email verification engine
(`email/`), through the lead-job machinery (jobs.py).

The reference's services are ours, needing no third-party key:

    BOUNCEBAN  the SMTP probe (email.Mode.PROBE)
    MAILVERI   syntax, DNS and the lists, no SMTP (email.Mode.HEURISTIC)
    HYBRID     the probe first, the heuristic where the probe is inconclusive

A lead whose pipeline row already has a status is skipped (counted in `skipped_leads`,
not in `processed_leads`) unless the job was started with `"force": true`. The verdict
and the engine's raw observations land on the pipeline lead
(`pipeline_lead_email_validation_status`, `email_validation`); the pipeline's counters
(`validated_leads`, `valid_emails`, …) move with them in the same transaction, an old
verdict's count taken back when a forced run replaces it. UNKNOWN counts as processed,
never as valid, invalid or risky.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.db import Database, table
from openenrich.email.pool import SmtpPool
from openenrich.email.verdict import Mode
from openenrich.email.verifier import EmailVerifier
from openenrich.errors import BadRequest
from openenrich.jobs.idempotency import Idempotency, create_once
from openenrich.jobs.notify import JobHub
from openenrich.jobs.worker import JobContext
from openenrich.leads import jobs
from openenrich.leads.models import Pipeline, PipelineLead
from openenrich.leads.schemas import (
    VALIDATION_SERVICES,
    ValidationJob,
    ValidationProgress,
    ValidationStart,
)
from openenrich.tenancy.tenant import Tenant

VALIDATION = jobs.Family(
    name="validation",
    kind="leads.validation",
    type_field="service",
    label="Validation job",
    progress=ValidationProgress,
    record=ValidationJob,
)

MODES = {"BOUNCEBAN": Mode.PROBE, "MAILVERI": Mode.HEURISTIC, "HYBRID": Mode.HYBRID}
# A verdict's counter on the job and on the pipeline.
JOB_COUNTER = {
    "VALID": "valid_leads",
    "INVALID": "invalid_leads",
    "RISKY": "risky_leads",
    "UNKNOWN": "unknown_leads",
}
PIPELINE_COUNTER = {
    "VALID": "valid_emails",
    "INVALID": "invalid_emails",
    "RISKY": "risky_emails",
    "UNKNOWN": "unknown_emails",
}


async def start(
    database: Database,
    hub: JobHub,
    tenant: Tenant,
    body: ValidationStart,
    idempotency: Idempotency | None,
) -> tuple[ValidationJob, bool]:
    """A new job, committed (or the one an earlier request with the same Idempotency-Key
    made), and whether it is new."""
    service = body.service
    if not isinstance(service, str) or service not in VALIDATION_SERVICES:
        raise BadRequest(f"invalid service: use one of {', '.join(VALIDATION_SERVICES)}")
    chosen = jobs.targets(body.pipeline_id, body.lead_ids, body.limit)
    config = {"force": body.force}

    async def create(session: AsyncSession) -> str:
        return await jobs.create(session, hub, VALIDATION, tenant, chosen, service, config)

    async def describe(session: AsyncSession, job_id: str) -> ValidationJob:
        record = await jobs.record_in(session, VALIDATION, tenant, job_id)
        assert isinstance(record, ValidationJob)
        return record

    made = await create_once(database, hub, VALIDATION.view, tenant, idempotency, create, describe)
    return made.resource, made.new


_pipeline_leads = table(PipelineLead)
_pipelines = table(Pipeline)

# A lead targeted by id (no pipeline named) is validated in the pipeline that holds it.
_ROWS_OF_LEADS = select(
    _pipeline_leads.c.id,
    _pipeline_leads.c.lead_id,
    _pipeline_leads.c.pipeline_id,
    _pipeline_leads.c.email_validation_status,
).where(_pipeline_leads.c.lead_id.in_(bindparam("lead_ids", expanding=True)))
_ROWS = select(
    _pipeline_leads.c.id,
    _pipeline_leads.c.lead_id,
    _pipeline_leads.c.pipeline_id,
    _pipeline_leads.c.email_validation_status,
).where(_pipeline_leads.c.id.in_(bindparam("ids", expanding=True)))
_SET_VERDICT = (
    _pipeline_leads.update()
    .where(_pipeline_leads.c.id == bindparam("row_id"))
    .values(
        email_validation_status=bindparam("verdict"),
        email_validation=bindparam("observations"),
    )
)


class Validate:
    """One lead: its address through the engine (one verifier per job attempt, so DNS
    answers and catch-all findings are shared across its leads)."""

    def __init__(self, verifier: EmailVerifier, mode: Mode, force: bool) -> None:
        self.verifier = verifier
        self.mode = mode
        self.force = force

    async def run(self, item: jobs.Item) -> jobs.Outcome:
        assert item.lead is not None
        if item.validation_status is not None and not self.force:
            return jobs.Outcome(item, "skipped")
        verification = await self.verifier.verify(item.lead["email"], self.mode)
        verdict = str(verification.verdict)
        return jobs.Outcome(
            item,
            "done",
            values={"verdict": verdict, "observations": verification.as_dict()},
            counters={JOB_COUNTER[verdict]: 1},
        )

    async def record(self, session: AsyncSession, outcomes: Sequence[jobs.Outcome]) -> None:
        done = [o for o in outcomes if o.status == "done"]
        if not done:
            return
        rows = await self._rows(session, done)
        changes: list[dict[str, Any]] = []
        moved: dict[str, Counter[str]] = {}
        for outcome in done:
            for row in rows.get(outcome.item.lead_id, ()):
                previous = row.email_validation_status
                if previous is not None and not self.force:
                    continue  # validated by another job meanwhile: its verdict stands
                verdict = outcome.values["verdict"]
                changes.append(
                    {
                        "row_id": row.id,
                        "verdict": verdict,
                        "observations": outcome.values["observations"],
                    }
                )
                counts = moved.setdefault(row.pipeline_id, Counter())
                counts[PIPELINE_COUNTER[verdict]] += 1
                if previous is None:
                    counts["validated_leads"] += 1
                else:
                    counts[PIPELINE_COUNTER[previous]] -= 1
        if changes:
            await session.execute(_SET_VERDICT, changes)
        for pipeline_id, counts in sorted(moved.items()):
            changed = {name: _pipelines.c[name] + n for name, n in counts.items() if n}
            if changed:  # a forced run that found the same verdicts moves nothing
                await session.execute(
                    _pipelines.update().where(_pipelines.c.id == pipeline_id).values(changed)
                )

    @staticmethod
    async def _rows(session: AsyncSession, done: Sequence[jobs.Outcome]) -> dict[str, list[Any]]:
        """The pipeline rows the results go to, by lead id, as this transaction sees them
        (locked on PostgreSQL, so two jobs on one lead count it once)."""
        ids = sorted({o.item.pipeline_lead_id for o in done if o.item.pipeline_lead_id})
        loose = sorted({o.item.lead_id for o in done if o.item.pipeline_lead_id is None})
        found: list[Any] = []
        if ids:
            found += await session.execute(_ROWS.with_for_update(), {"ids": ids})
        if loose:
            found += await session.execute(_ROWS_OF_LEADS.with_for_update(), {"lead_ids": loose})
        rows: dict[str, list[Any]] = {}
        for row in found:
            rows.setdefault(row.lead_id, []).append(row)
        return rows


async def execute(ctx: JobContext) -> None:
    assert ctx.parts is not None, "the worker gives jobs the process's parts"
    pool = ctx.parts.get(SmtpPool)

    async def make_step(ctx: JobContext, service: str, config: dict[str, Any]) -> jobs.Step:
        return Validate(verifier, MODES[service], bool(config.get("force")))

    async with EmailVerifier(ctx.settings, pool) as verifier:
        await jobs.execute(ctx, VALIDATION, make_step)

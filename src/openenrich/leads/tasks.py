"""The lead jobs as job kinds: each family's handler through the shared machinery."""

from __future__ import annotations

from openenrich.jobs.worker import JobSpec
from openenrich.leads import enrichment, jobs, validation


def enrichment_spec() -> JobSpec:
    return jobs.spec(enrichment.ENRICHMENT, enrichment.execute)


def validation_spec() -> JobSpec:
    return jobs.spec(validation.VALIDATION, validation.execute)

"""The lead jobs as job kinds: each family's handler through the shared machinery."""

from __future__ import annotations

from openenrich.jobs.worker import JobSpec
from openenrich.leads import enrichment, jobs


def enrichment_spec() -> JobSpec:
    return jobs.spec(enrichment.ENRICHMENT, enrichment.execute)

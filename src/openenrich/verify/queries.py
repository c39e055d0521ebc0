"""The statements runs repeat, built once.

Long-polls, event streams and every GET render a run, and a worker writes each check in a
few statements. Building an SQLAlchemy statement, and the ORM's bookkeeping around it,
cost several times what the database took to run it (profiled: a quarter of a busy loop),
so these are Core statements on the tables, with bound parameters.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, bindparam, func, select

from openenrich.db import table
from openenrich.jobs.models import Job
from openenrich.verify.models import Run, ToolCall, Workflow

AnyRow = Row[Any, *tuple[Any, ...]]

_runs = table(Run)
_jobs = table(Job)
_calls = table(ToolCall)
_workflows = table(Workflow)

# -- reading a run -------------------------------------------------------------------------

RUN = (
    select(
        _runs.c.id,
        _runs.c.org_id,
        _runs.c.environment,
        _runs.c.thread_id,
        _runs.c.message,
        _runs.c.workflow,
        _runs.c.metadata.label("metadata_"),
        _runs.c.answer,
        _runs.c.report,
        _runs.c.report_link,
        _runs.c.plan,
        _runs.c.created_at,
        _jobs.c.status,
        _jobs.c.error,
        _jobs.c.started_at,
        _jobs.c.finished_at,
    )
    .join(_jobs, _jobs.c.id == _runs.c.id)
    .where(
        _runs.c.id == bindparam("run_id"),
        _runs.c.org_id == bindparam("org_id"),
        _runs.c.environment == bindparam("environment"),
    )
)

CALLS = (
    select(
        _calls.c.id,
        _calls.c.name,
        _calls.c.status,
        _calls.c.billed,
        _calls.c.credits,
        _calls.c.latency_ms,
    )
    .where(_calls.c.run_id == bindparam("run_id"))
    .order_by(_calls.c.created_at, _calls.c.id)
)


def run_rows(
    connection: Connection, run_id: str, org_id: str, environment: str
) -> tuple[AnyRow, list[AnyRow]] | None:
    run = connection.execute(
        RUN, {"run_id": run_id, "org_id": org_id, "environment": environment}
    ).one_or_none()
    if run is None:
        return None
    return run, list(connection.execute(CALLS, {"run_id": run_id}))


WORKFLOW = select(
    _workflows.c.slug,
    _workflows.c.name,
    _workflows.c.description,
    _workflows.c.content,
    _workflows.c.is_active,
).where(
    _workflows.c.org_id == bindparam("org_id"),
    _workflows.c.environment == bindparam("environment"),
    _workflows.c.slug == bindparam("slug"),
)

ACTIVE_RUNS = (
    select(func.count())
    .select_from(_runs.join(_jobs, _jobs.c.id == _runs.c.id))
    .where(_runs.c.api_key_id == bindparam("api_key_id"), _jobs.c.status.in_(("queued", "running")))
)

# -- executing a run -----------------------------------------------------------------------

TO_EXECUTE = select(
    _runs.c.id,
    _runs.c.org_id,
    _runs.c.environment,
    _runs.c.thread_id,
    _runs.c.message,
    _runs.c.workflow,
    _runs.c.auto_approve,
    _runs.c.created_at,
).where(_runs.c.id == bindparam("run_id"))

EARLIER_IN_THREAD = (
    select(_runs.c.id, _runs.c.message, _runs.c.answer, _runs.c.report)
    .where(_runs.c.thread_id == bindparam("thread_id"), _runs.c.created_at < bindparam("before"))
    .order_by(_runs.c.created_at)
)

CALL_AT_STEP = select(
    _calls.c.id, _calls.c.name, _calls.c.status, _calls.c.output, _calls.c.summary
).where(_calls.c.run_id == bindparam("run_id"), _calls.c.step == bindparam("step"))

INSERT_CALL = _calls.insert()

FINISH_CALL = (
    _calls.update()
    .where(_calls.c.id == bindparam("call_id"))
    .values(
        status=bindparam("set_status"),
        output=bindparam("set_output"),
        summary=bindparam("set_summary"),
        latency_ms=bindparam("set_latency_ms"),
        billed=bindparam("set_billed"),
        credits=bindparam("set_credits"),
    )
)

# The answer grows by one sentence per check: appended in the database, not read first.
ADD_TO_ANSWER = (
    _runs.update()
    .where(_runs.c.id == bindparam("run_id"))
    .values(answer=func.coalesce(_runs.c.answer + " ", "") + bindparam("text"))
)

SET_PLAN = _runs.update().where(_runs.c.id == bindparam("run_id")).values(plan=bindparam("plan"))

# The final answer replaces the running narration.
SET_REPORT = (
    _runs.update()
    .where(_runs.c.id == bindparam("run_id"))
    .values(answer=bindparam("text"), report=bindparam("report"), report_link=bindparam("link"))
)

# The signed download's lookup: by id alone, the link being the credential.
REPORT_FOR_DOWNLOAD = select(
    _runs.c.id, _runs.c.org_id, _runs.c.report, _runs.c.report_link, _runs.c.created_at
).where(_runs.c.id == bindparam("run_id"))

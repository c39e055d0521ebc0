"""The default run executor: plan the checks, ask for approval when the plan is long,
run each check through the tool registry, bill it, and write the answer and report.

An executor is a function of a `JobContext`. It is called again from the top when a run
resumes (after approval) or is retried (after an interruption): the plan is kept in the
job's state, and every finished check is a `ToolCall` row keyed by (run, step), so a
retry skips what was done and bills nothing twice.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.billing import service as billing
from openenrich.config import Settings
from openenrich.email.pool import SmtpPool
from openenrich.ids import isoformat, new_id, utcnow
from openenrich.jobs.worker import JobContext
from openenrich.json_output import json_values
from openenrich.verify import queries, service
from openenrich.verify.identifiers import Found, find
from openenrich.verify.tools import REGISTRY, Tool, ToolEnv, ToolResult
from openenrich.verify.workflows import WorkflowSpec
from openenrich.webhooks import service as webhooks

RunExecutor = Callable[[JobContext], Awaitable[None]]
DONE = ("success", "failed", "not_found")


def plan_checks(workflow: WorkflowSpec | None, identifiers: list[Found]) -> list[dict[str, str]]:
    """One task per (check, identifier of its kind). Without a workflow, every tool that
    can check a found identifier."""
    names = workflow.checks if workflow else tuple(REGISTRY)
    tasks = []
    for name in names:
        tool = REGISTRY.get(name)
        if tool is None:
            continue
        for found in identifiers:
            if found.kind == tool.kind:
                tasks.append({"tool": name, "kind": found.kind, "value": found.value})
    return tasks


def describe(tasks: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "summary": f"{len(tasks)} checks: " + ", ".join(sorted({t["tool"] for t in tasks})),
        "tasks": [{"goal": f"Run {t['tool']} on {t['value']}", "tool": t["tool"]} for t in tasks],
    }


@dataclass(frozen=True, slots=True)
class Checked:
    """A finished check, for the report."""

    id: str
    name: str
    status: str
    output: dict[str, Any] | None


async def execute_run(ctx: JobContext) -> None:
    settings: Settings = ctx.settings
    approval_timeout = timedelta(seconds=settings.approval_timeout_seconds)
    async with ctx.transaction() as session:
        run = (await session.execute(queries.TO_EXECUTE, {"run_id": ctx.job_id})).one()
        earlier = (
            await session.execute(
                queries.EARLIER_IN_THREAD, {"thread_id": run.thread_id, "before": run.created_at}
            )
        ).all()
        await ctx.ensure_running(session)
        tasks: list[dict[str, str]] | None = ctx.state.get("tasks")
        if tasks is None:
            workflow = (
                await service.find_workflow(session, ctx.tenant, run.workflow)
                if run.workflow
                else None
            )
            identifiers = find(run.message)
            if not identifiers:  # a follow-up in a thread works on what was said before
                for previous in reversed(earlier):
                    identifiers = find(previous.message)
                    if identifiers:
                        break
            tasks = plan_checks(workflow, identifiers)
            await ctx.save_state(session, tasks=tasks)
            await ctx.progress(session, 0, len(tasks))
            if len(tasks) >= settings.approval_min_checks and not run.auto_approve:
                plan = describe(tasks)
                await session.execute(queries.SET_PLAN, {"run_id": run.id, "plan": plan})
                await ctx.emit("run.requires_approval", {"plan": plan}, session)
                await ctx.park(
                    session,
                    until=utcnow() + approval_timeout,
                    then=lambda parked: _announce_parked(ctx, parked),
                )
        elif (
            not ctx.state.get("approved")
            and len(tasks) >= settings.approval_min_checks
            and not run.auto_approve
        ):
            # Retried before anyone approved: park again with the same plan.
            await ctx.park(session, until=utcnow() + approval_timeout)
        # Each check starts in the transaction that ended the step before it (this one, or
        # the previous check's), and the last check's result goes with the report: one
        # commit per check, not two, fsyncs included.
        results: list[Checked] = []
        if not tasks:
            await _finish(ctx, session, run, tasks, results, earlier)
            return
        upcoming: Upcoming | None = await _begin(ctx, session, run.id, 0, tasks)

    assert ctx.http is not None, "the worker gives jobs an HTTP client"
    assert ctx.parts is not None, "the worker gives jobs the process's parts"
    env = ToolEnv(http=ctx.http, settings=settings, smtp=ctx.parts.get(SmtpPool))
    while upcoming is not None:
        result = await _run_tool(upcoming, env)
        async with ctx.transaction() as session:
            await ctx.ensure_running(session)  # cancelled meanwhile: the result is dropped
            results.append(await _record(ctx, session, run.id, upcoming, result, len(tasks)))
            index = upcoming.index + 1
            if index < len(tasks):
                upcoming = await _begin(ctx, session, run.id, index, tasks)
            else:
                upcoming = None
                await _finish(ctx, session, run, tasks, results, earlier)


async def _finish(
    ctx: JobContext,
    session: AsyncSession,
    run: Any,
    tasks: list[dict[str, str]],
    results: list[Checked],
    earlier: Sequence[Any],
) -> None:
    passed = sum(1 for call in results if call.status == "success")
    closing = (
        f"{passed} of {len(results)} checks passed."
        if results
        else "No identifiers to verify were found in the request."
    )
    report = {
        "summary": closing,
        "workflow": run.workflow,
        "thread_id": run.thread_id,
        "checks": [
            {
                "call_id": call.id,
                "tool": call.name,
                "input": task["value"],
                "status": call.status,
                "result": call.output,
            }
            for task, call in zip(tasks, results, strict=True)
        ],
        "earlier_runs": [
            {"run_id": previous.id, "answer": previous.answer} for previous in earlier
        ],
        "generated_at": isoformat(utcnow()),
    }
    await session.execute(queries.SET_REPORT, {"run_id": run.id, "text": closing, "report": report})
    await ctx.emit_all(
        [("answer.delta", {"text": closing}), ("run.report", {"report": report})], session
    )
    if await ctx.finish(session, "completed"):
        await service.announce_end(session, ctx.hub, ctx.tenant, ctx.job_id)


@dataclass(frozen=True, slots=True)
class Upcoming:
    """A check about to run: its call row exists (or it finished in an earlier attempt)."""

    index: int
    tool: Tool
    value: str
    call_id: str
    done: Checked | None  # finished before this attempt: not run, not billed again


async def _begin(
    ctx: JobContext, session: AsyncSession, run_id: str, index: int, tasks: list[dict[str, str]]
) -> Upcoming:
    """Start check `index`: its call row (keyed by run and step) and its `tool_call` started
    event. A check finished in an earlier attempt comes back as done instead."""
    task = tasks[index]
    tool = REGISTRY[task["tool"]]
    step = f"{index}:{tool.name}:{task['value']}"[:120]
    found = (
        await session.execute(queries.CALL_AT_STEP, {"run_id": run_id, "step": step})
    ).one_or_none()
    if found is not None and found.status in DONE:
        done = Checked(found.id, found.name, found.status, found.output)
        return Upcoming(index, tool, task["value"], found.id, done)
    if found is None:
        call_id = new_id("call")
        await session.execute(
            queries.INSERT_CALL,
            {
                "id": call_id,
                "org_id": ctx.tenant.org_id,
                "environment": ctx.tenant.environment.value,
                "run_id": run_id,
                "step": step,
                "name": tool.name,
                "arguments": {"value": task["value"]},
                "status": "started",
                "billed": False,
                "credits": Decimal(0),
                "created_at": utcnow(),
            },
        )
    else:
        call_id = found.id
    await ctx.emit("tool_call", {"id": call_id, "name": tool.name, "status": "started"}, session)
    return Upcoming(index, tool, task["value"], call_id, None)


async def _run_tool(upcoming: Upcoming, env: ToolEnv) -> tuple[ToolResult, int] | None:
    if upcoming.done is not None:
        return None
    started = time.perf_counter()
    try:
        result = await upcoming.tool.run(upcoming.value, env)
    except Exception as error:  # a tool's own failure is the check's outcome, not the run's
        name = upcoming.tool.name
        result = ToolResult("failed", f"{name} could not run: {type(error).__name__}.", {})
    return result, round((time.perf_counter() - started) * 1000)


async def _record(
    ctx: JobContext,
    session: AsyncSession,
    run_id: str,
    upcoming: Upcoming,
    outcome: tuple[ToolResult, int] | None,
    total: int,
) -> Checked:
    """Write a check's result, bill it, and tell the listeners."""
    if outcome is None:
        assert upcoming.done is not None
        return upcoming.done
    result, latency = outcome
    tool, call_id = upcoming.tool, upcoming.call_id
    billed = result.status == "success" and not ctx.tenant.is_test
    await session.execute(
        queries.FINISH_CALL,
        {
            "call_id": call_id,
            "set_status": result.status,
            "set_output": result.output,
            "set_latency_ms": latency,
            "set_billed": billed,
            "set_credits": tool.price if billed else Decimal(0),
        },
    )
    if billed:
        await billing.charge(
            session,
            ctx.tenant,
            source_id=run_id,
            item_id=call_id,
            credits=tool.price,
            description=tool.name,
        )
    await session.execute(queries.ADD_TO_ANSWER, {"run_id": run_id, "text": result.summary})
    await ctx.emit_all(
        [
            ("tool_call", {"id": call_id, "name": tool.name, "status": result.status}),
            ("answer.delta", {"text": result.summary}),
        ],
        session,
    )
    await ctx.progress(session, upcoming.index + 1, total)
    return Checked(call_id, tool.name, result.status, result.output)


async def _announce_parked(ctx: JobContext, session: AsyncSession) -> None:
    """The webhook for a run that waits for its plan's approval."""
    body = await service.resource(session, ctx.tenant, ctx.job_id)
    await webhooks.enqueue(session, ctx.hub, ctx.tenant, "run.requires_approval", json_values(body))

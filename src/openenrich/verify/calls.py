"""One call of a tool in a run: its row, its events, its price.

Every call, the rules planner's and the LLM agent's alike, goes through here: a row keyed
by (run, step) is written before the tool runs (so a retried run finds what an earlier
attempt finished, and neither runs nor bills it again), `tool_call` events tell the
listeners, and a successful call is billed in the same transaction as its result.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.billing import service as billing
from openenrich.ids import new_id, utcnow
from openenrich.jobs.worker import JobContext
from openenrich.verify import queries
from openenrich.verify.report import CheckOutcome
from openenrich.verify.tools import REGISTRY, Tool, ToolEnv, ToolResult, price_of

DONE = ("success", "failed", "not_found")
Task = dict[str, Any]  # {"tool", "kind", "value", "arguments"?}: kept in the job's state


@dataclass(frozen=True, slots=True)
class Upcoming:
    """A check about to run: its call row exists (or it finished in an earlier attempt)."""

    index: int
    tool: Tool
    task: Task
    call_id: str
    done: CheckOutcome | None  # finished before this attempt: not run, not billed again


async def begin_call(
    ctx: JobContext,
    session: AsyncSession,
    run_id: str,
    index: int,
    task: Task,
    step: str,
    call_id: str | None = None,
) -> Upcoming:
    """A call's row (keyed by run and `step`, so a retried run finds it, and named
    `call_id` when given) and its `tool_call` started event, or the call as an earlier
    attempt finished it."""
    tool = REGISTRY[task["tool"]]
    step = f"{step}:{task['value']}"[:120]
    found = (
        await session.execute(queries.CALL_AT_STEP, {"run_id": run_id, "step": step})
    ).one_or_none()
    if found is not None and found.status in DONE:
        done = outcome_of(found.id, task, found.status, found.summary or "", found.output)
        return Upcoming(index, tool, task, found.id, done)
    if found is None:
        arguments = {"value": task["value"], **task.get("arguments", {})}
        call_id = await insert_call(ctx, session, run_id, step, tool.name, arguments, call_id)
    else:
        call_id = found.id
    await ctx.emit("tool_call", {"id": call_id, "name": tool.name, "status": "started"}, session)
    return Upcoming(index, tool, task, call_id, None)


async def insert_call(
    ctx: JobContext,
    session: AsyncSession,
    run_id: str,
    step: str,
    name: str,
    arguments: dict[str, Any],
    call_id: str | None = None,
    **finished: Any,
) -> str:
    """A call's row, `started` unless `finished` gives its status, output, billing…"""
    call_id = call_id or new_id("call")
    row = {
        "id": call_id,
        "org_id": ctx.tenant.org_id,
        "environment": ctx.tenant.environment.value,
        "run_id": run_id,
        "step": step,
        "name": name,
        "arguments": arguments,
        "status": "started",
        "billed": False,
        "credits": Decimal(0),
        "created_at": utcnow(),
    }
    await session.execute(queries.INSERT_CALL, {**row, **finished})
    return call_id


def outcome_of(
    call_id: str, task: Task, status: str, summary: str, output: dict[str, Any] | None
) -> CheckOutcome:
    return CheckOutcome(
        call_id, task["tool"], task["kind"], task["value"], status, summary, output or {}
    )


def ahead(index: int, task: Task) -> Upcoming:
    """A local check to run before its row exists (see `record_ahead`)."""
    return Upcoming(index, REGISTRY[task["tool"]], task, new_id("call"), None)


async def record_ahead(
    ctx: JobContext,
    session: AsyncSession,
    run_id: str,
    upcoming: Upcoming,
    step: str,
    outcome: tuple[ToolResult, int] | None,
    total: int,
) -> CheckOutcome:
    """A local check that ran ahead of its transaction: its row, events and billing, as
    `begin_call` and `record_call` write them for a check that waits. Its row cannot exist
    yet: checks run ahead only after a check that ran in this attempt, and are written in
    the transaction that writes that check's result."""
    begun = await begin_call(
        ctx, session, run_id, upcoming.index, upcoming.task, step, upcoming.call_id
    )
    return await record_call(ctx, session, run_id, begun, None if begun.done else outcome, total)


async def run_tool(upcoming: Upcoming, env: ToolEnv) -> tuple[ToolResult, int] | None:
    if upcoming.done is not None:
        return None
    started = time.perf_counter()
    env = dataclasses.replace(env, arguments=upcoming.task.get("arguments", {}))
    try:
        result = await upcoming.tool.run(upcoming.task["value"], env)
    except Exception as error:  # a tool's own failure is the check's outcome, not the run's
        name = upcoming.tool.name
        result = ToolResult("failed", f"{name} could not run: {type(error).__name__}.", {})
    return result, round((time.perf_counter() - started) * 1000)


def checked(upcoming: Upcoming, outcome: tuple[ToolResult, int] | None) -> CheckOutcome:
    """The check as the report sees it, before (or without) its row being written."""
    if outcome is None:
        assert upcoming.done is not None
        return upcoming.done
    result = outcome[0]
    return outcome_of(upcoming.call_id, upcoming.task, result.status, result.summary, result.output)


async def record_call(
    ctx: JobContext,
    session: AsyncSession,
    run_id: str,
    upcoming: Upcoming,
    outcome: tuple[ToolResult, int] | None,
    total: int,
) -> CheckOutcome:
    """Write a check's result, bill it, and tell the listeners."""
    if outcome is None:
        assert upcoming.done is not None
        return upcoming.done
    result, latency = outcome
    tool, call_id = upcoming.tool, upcoming.call_id
    price = price_of(tool, ctx.settings)
    billed = result.status == "success" and not ctx.tenant.is_test
    await session.execute(
        queries.FINISH_CALL,
        {
            "call_id": call_id,
            "set_status": result.status,
            "set_output": result.output,
            "set_summary": result.summary,
            "set_latency_ms": latency,
            "set_billed": billed,
            "set_credits": price if billed else Decimal(0),
        },
    )
    if billed:
        await billing.charge(
            session,
            ctx.tenant,
            source_id=run_id,
            item_id=call_id,
            credits=price,
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
    return outcome_of(call_id, upcoming.task, result.status, result.summary, result.output)

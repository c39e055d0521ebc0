"""The default run executor: plan the checks, ask for approval when the plan is long,
run each check through the tool registry, bill it, and write the answer and report.

An executor is a function of a `JobContext`. It is called again from the top when a run
resumes (after approval) or is retried (after an interruption): the plan is kept in the
job's state, and every finished check is a `ToolCall` row keyed by (run, step), so a
retry skips what was done and bills nothing twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.billing import service as billing
from openenrich.config import Settings
from openenrich.email.pool import SmtpPool
from openenrich.ids import isoformat, utcnow
from openenrich.jobs.worker import JobContext
from openenrich.json_output import json_values
from openenrich.verify import links, queries, service
from openenrich.verify.agent import AgentOutcome, agent_credits, run_agent
from openenrich.verify.calls import (
    Task,
    Upcoming,
    ahead,
    begin_call,
    checked,
    insert_call,
    record_ahead,
    record_call,
    run_tool,
)
from openenrich.verify.identifiers import Found, find
from openenrich.verify.pdf import pdf_path, render_pdf, write_pdf
from openenrich.verify.report import (
    CheckOutcome,
    NotCheckable,
    answer_sentences,
    build_report,
)
from openenrich.verify.subject import Subject, subject_of
from openenrich.verify.tools import REGISTRY, ToolEnv, ToolResult
from openenrich.verify.workflows import WorkflowSpec
from openenrich.webhooks import service as webhooks

RunExecutor = Callable[[JobContext], Awaitable[None]]


def plan_checks(workflow: WorkflowSpec | None, identifiers: list[Found]) -> list[Task]:
    """One task per (check, identifier of its kind). Without a workflow, every tool that
    can check a found identifier."""
    names = workflow.checks if workflow else tuple(REGISTRY)
    tasks: list[Task] = []
    for name in names:
        tool = REGISTRY.get(name)
        if tool is None:
            continue
        for found in identifiers:
            if found.kind == tool.kind:
                tasks.append({"tool": name, "kind": found.kind, "value": found.value})
    return tasks


# An email's local part that reads as a person's name: two or more words of letters.
_NAME_LIKE = re.compile(r"^[^\W\d_]{2,}(?:[._-][^\W\d_]{2,})+$")


def plan_cross_checks(subject: Subject, identifiers: list[Found]) -> list[Task]:
    """Checks that tie the request together, after the identifiers' own: the subject's name
    against the names its identifiers carry (an email such as rahul.sharma@…), and the
    subject against the sanctions list."""
    if subject.name is None:
        return []
    tasks: list[Task] = []
    for found in identifiers:
        local = found.value.partition("@")[0] if found.kind == "email" else ""
        if local and _NAME_LIKE.match(local):
            against = " ".join(part.capitalize() for part in re.split(r"[._-]", local))
            tasks.append(
                {
                    "tool": "name_match",
                    "kind": "name",
                    "value": subject.name,
                    "arguments": {"against": against, "source": f"email {found.value}"},
                }
            )
    if "sanctions_screening" in REGISTRY:
        arguments = {"birth_date": subject.birth_date} if subject.birth_date else {}
        tasks.append(
            {
                "tool": "sanctions_screening",
                "kind": "name",
                "value": subject.name,
                "arguments": arguments,
            }
        )
    return tasks


def describe(tasks: list[Task]) -> dict[str, Any]:
    return {
        "summary": f"{len(tasks)} checks: " + ", ".join(sorted({t["tool"] for t in tasks})),
        "tasks": [{"goal": f"Run {t['tool']} on {t['value']}", "tool": t["tool"]} for t in tasks],
    }


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
        tasks: list[Task] | None = ctx.state.get("tasks")
        if tasks is None:
            workflow = (
                await service.find_workflow(session, ctx.tenant, run.workflow)
                if run.workflow
                else None
            )
            identifiers, subject = _read_request(run.message, earlier)
            checkable = [found for found in identifiers if not found.masked]
            tasks = plan_checks(workflow, checkable) + plan_cross_checks(subject, checkable)
            unchecked = [
                {"kind": found.kind, "value": found.value, "reason": "masked"}
                for found in identifiers
                if found.masked
            ]
            # A required check with nothing to check: the report says what was not given.
            planned = {task["tool"] for task in tasks}
            unchecked += [
                {"kind": REGISTRY[name].kind, "value": "", "reason": "not given"}
                for name in (workflow.required if workflow else ())
                if name not in planned and name in REGISTRY
            ]
            ask_first = bool(tasks) and (
                (workflow is not None and workflow.plan)
                or len(tasks) >= settings.approval_min_checks
            )
            await ctx.save_state(
                session,
                tasks=tasks,
                subject=dataclasses.asdict(subject),
                unchecked=unchecked,
                emphasis=list(workflow.emphasis) if workflow else [],
                ask_first=ask_first,
            )
            await ctx.progress(session, 0, len(tasks))
            if ask_first and not run.auto_approve:
                plan = describe(tasks)
                await session.execute(queries.SET_PLAN, {"run_id": run.id, "plan": plan})
                await ctx.emit("run.requires_approval", {"plan": plan}, session)
                await ctx.park(
                    session,
                    until=utcnow() + approval_timeout,
                    then=lambda parked: _announce_parked(ctx, parked),
                )
        elif not ctx.state.get("approved") and _asks_first(ctx, tasks) and not run.auto_approve:
            # Retried before anyone approved: park again with the same plan.
            await ctx.park(session, until=utcnow() + approval_timeout)
        # Each check starts in the transaction that ended the step before it (this one, or
        # the previous check's), and the last check's result goes with the report: one
        # commit per check, not two, fsyncs included.
        results: list[CheckOutcome] = []
        agent_model = settings.verify_agent_model
        upcoming = (
            await _begin(ctx, session, run.id, 0, tasks) if tasks and not agent_model else None
        )

    assert ctx.http is not None, "the worker gives jobs an HTTP client"
    assert ctx.parts is not None, "the worker gives jobs the process's parts"
    env = ToolEnv(http=ctx.http, settings=settings, smtp=ctx.parts.get(SmtpPool))
    if agent_model:
        await _run_with_agent(ctx, run, agent_model, tasks, earlier, env)
        return
    if upcoming is None:  # nothing to check: the report says so
        async with ctx.turn():
            nothing = await _final(ctx, run, results, earlier)
            async with ctx.transaction() as session:
                await ctx.ensure_running(session)
                await _finish(ctx, session, run, nothing)
    while upcoming is not None:
        outcome = await run_tool(upcoming, env)
        # From here to the commit it is CPU work and the database: one turn.
        async with ctx.turn():
            upcoming = await _record(ctx, run, tasks, upcoming, outcome, results, earlier, env)


async def _record(
    ctx: JobContext,
    run: Any,
    tasks: list[Task],
    upcoming: Upcoming,
    outcome: tuple[ToolResult, int] | None,
    results: list[CheckOutcome],
    earlier: Sequence[Any],
    env: ToolEnv,
) -> Upcoming | None:
    """Write a check's outcome, with the local checks after it, and begin the next check;
    after the last one, the report. Returns the next check, if any."""
    now = [checked(upcoming, outcome)]
    # The local checks after it (a screening, a name comparison) run now and are written
    # with it: no transaction of their own.
    following: list[tuple[Upcoming, tuple[ToolResult, int] | None]] = []
    index = upcoming.index + 1
    while outcome is not None and index < len(tasks) and REGISTRY[tasks[index]["tool"]].local:
        local = ahead(index, tasks[index])
        following.append((local, await run_tool(local, env)))
        now.append(checked(*following[-1]))
        index += 1
    # The report and its PDF are made before the last transaction opens: no database
    # lock should wait for them.
    final = await _final(ctx, run, results + now, earlier) if index == len(tasks) else None
    async with ctx.transaction() as session:
        await ctx.ensure_running(session)  # cancelled meanwhile: the results are dropped
        results.append(await record_call(ctx, session, run.id, upcoming, outcome, len(tasks)))
        for local, local_outcome in following:
            step = _step(local.index, local.task)
            results.append(
                await record_ahead(ctx, session, run.id, local, step, local_outcome, len(tasks))
            )
        if final is not None:
            await _finish(ctx, session, run, final)
            return None
        return await _begin(ctx, session, run.id, index, tasks)


def _asks_first(ctx: JobContext, tasks: list[Task]) -> bool:
    """Whether the run's plan waits for approval (runs planned before workflows could ask
    for it kept only their tasks)."""
    asks: bool | None = ctx.state.get("ask_first")
    if asks is None:
        settings: Settings = ctx.settings
        return len(tasks) >= settings.approval_min_checks
    return asks


def _read_request(message: str, earlier: Sequence[Any]) -> tuple[list[Found], Subject]:
    """The identifiers and subject of a request; a follow-up in a thread ("Also check his
    employment history") works on what was said before."""
    identifiers = find(message)
    subject = subject_of(message, [found.value for found in identifiers])
    for previous in reversed(earlier):
        if identifiers and subject.name:
            break
        before = find(previous.message)
        if not identifiers:
            identifiers = before
        if subject.name is None:
            subject = subject_of(previous.message, [found.value for found in before])
    return identifiers, subject


@dataclass(frozen=True, slots=True)
class Final:
    """What a finished run writes: its report, its answer a sentence at a time, and what its
    report_url is minted from (the PDF is on disk already)."""

    report: dict[str, Any]
    sentences: list[str]
    link: dict[str, Any]


async def _run_with_agent(
    ctx: JobContext,
    run: Any,
    model: str,
    tasks: list[Task],
    earlier: Sequence[Any],
    env: ToolEnv,
) -> None:
    subject = Subject(**ctx.state.get("subject", {"name": None, "birth_date": None}))
    async with ctx.transaction() as session:
        workflow = (
            await service.find_workflow(session, ctx.tenant, run.workflow) if run.workflow else None
        )
    outcome = await run_agent(ctx, run, model, workflow, tasks, subject, earlier, env)
    async with ctx.turn():
        final = await _final(ctx, run, outcome.results, earlier, agent=outcome)
        async with ctx.transaction() as session:
            await ctx.ensure_running(session)
            await _bill_agent(ctx, session, run.id, outcome)
            await _finish(ctx, session, run, final)


async def _bill_agent(
    ctx: JobContext, session: AsyncSession, run_id: str, outcome: AgentOutcome
) -> None:
    """The model's tokens, as a call named `agent` (once: a retry finds the row)."""
    found = (
        await session.execute(queries.CALL_AT_STEP, {"run_id": run_id, "step": "agent"})
    ).one_or_none()
    if found is not None:
        return
    settings: Settings = ctx.settings
    credits = agent_credits(outcome, settings.verify_agent_credits_per_1k_tokens)
    billed = not ctx.tenant.is_test
    tokens = {"input_tokens": outcome.input_tokens, "output_tokens": outcome.output_tokens}
    call_id = await insert_call(
        ctx,
        session,
        run_id,
        "agent",
        "agent",
        {"model": outcome.model},
        status="success",
        output={"model": outcome.model, **tokens},
        summary=f"{outcome.model}: {sum(tokens.values())} tokens.",
        billed=billed,
        credits=credits if billed else Decimal(0),
    )
    if billed and credits:
        await billing.charge(
            session,
            ctx.tenant,
            source_id=run_id,
            item_id=call_id,
            credits=credits,
            description=f"agent tokens ({outcome.model})",
        )


async def _final(
    ctx: JobContext,
    run: Any,
    results: list[CheckOutcome],
    earlier: Sequence[Any],
    agent: AgentOutcome | None = None,
) -> Final:
    subject = Subject(**ctx.state.get("subject", {"name": None, "birth_date": None}))
    unchecked = [NotCheckable(**item) for item in ctx.state.get("unchecked", [])]
    report = build_report(
        subject=subject,
        workflow=run.workflow,
        thread_id=run.thread_id,
        checks=results,
        unchecked=unchecked,
        earlier=[
            {
                "run_id": previous.id,
                "answer": previous.answer,
                "verdict": (previous.report or {}).get("verdict"),
            }
            for previous in earlier
        ],
        emphasis=ctx.state.get("emphasis", []),
        generated_at=isoformat(utcnow()),
    )
    sentences = answer_sentences(subject, report["verdict"], results, unchecked)
    if agent is not None:  # the model's verdict and words, beside what its calls returned
        report["verdict"], report["reasons"] = agent.verdict, agent.reasons
        report["agent"] = {
            "model": agent.model,
            "input_tokens": agent.input_tokens,
            "output_tokens": agent.output_tokens,
        }
        sentences = agent.sentences() or sentences
    content = await asyncio.to_thread(
        render_pdf, report, run_id=run.id, created_at=isoformat(run.created_at)
    )
    path = pdf_path(ctx.settings.data_dir, ctx.tenant.org_id, run.id)
    await asyncio.to_thread(write_pdf, path, content)
    return Final(report, sentences, links.new_link(ctx.settings))


async def _finish(ctx: JobContext, session: AsyncSession, run: Any, final: Final) -> None:
    answer = " ".join(final.sentences)
    await session.execute(
        queries.SET_REPORT,
        {"run_id": run.id, "text": answer, "report": final.report, "link": final.link},
    )
    await ctx.emit_all(
        [("answer.delta", {"text": sentence}) for sentence in final.sentences]
        + [("run.report", {"report": final.report})],
        session,
    )
    if await ctx.finish(session, "completed"):
        await service.announce_end(session, ctx.hub, ctx.tenant, ctx.job_id)


async def _begin(
    ctx: JobContext, session: AsyncSession, run_id: str, index: int, tasks: list[Task]
) -> Upcoming:
    """Start check `index`: its call row (keyed by run and step) and its `tool_call` started
    event. A check finished in an earlier attempt comes back as done instead."""
    return await begin_call(ctx, session, run_id, index, tasks[index], _step(index, tasks[index]))


def _step(index: int, task: Task) -> str:
    """A check's place in its run's plan: what its call row is keyed by."""
    return f"{index}:{task['tool']}"


async def _announce_parked(ctx: JobContext, session: AsyncSession) -> None:
    """The webhook for a run that waits for its plan's approval."""
    body = await service.resource(session, ctx.tenant, ctx.job_id)
    await webhooks.enqueue(session, ctx.hub, ctx.tenant, "run.requires_approval", json_values(body))

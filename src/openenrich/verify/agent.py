"""The LLM agent: a run checked by a model that calls the tools itself.

When the server configures a model for verification (`OPENENRICH_VERIFY_AGENT_MODEL`), a
run's checks are made by that model through our gateway (llm/gateway.py: the tenant's or
the server's key, limits, retries, pydantic-ai's model clients): its instructions are the
workflow's Markdown procedure, its prompt the request, what was read in it and the
thread's earlier answers, and its tools the workflow's checks and the cross-checks. Every
call it makes goes through `calls.py` as the rules planner's do (a row keyed by the run,
the tool and the value, `tool_call` events, billing of what succeeded), so a retried run
neither runs nor bills a finished call again, in whatever order its model asks. Its
output is JSON with a schema (`AGENT_OUTPUT`): the verdict, the reasons and the answer,
which go into the report beside the checks the calls actually returned. Its tokens are
billed as a call named `agent`.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from openenrich.jobs.worker import JobContext
from openenrich.llm.gateway import Gateway
from openenrich.llm.gateway import Tool as ModelTool
from openenrich.verify.calls import Task, begin_call, record_call, run_tool
from openenrich.verify.report import VERDICTS, CheckOutcome
from openenrich.verify.subject import Subject
from openenrich.verify.tools import REGISTRY, Tool, ToolEnv
from openenrich.verify.workflows import WorkflowSpec

AGENT_OUTPUT: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["verdict", "reasons", "answer"],
    "properties": {
        "verdict": {"enum": list(VERDICTS)},
        "reasons": {"type": "array", "items": {"type": "string"}},
        "answer": {"type": "string"},
    },
}

_INSTRUCTIONS = """You verify identities and businesses for a compliance analyst.
Check every identifier the request gives with the tools, one call per identifier; compare
the subject's name with names the identifiers carry (name_match) and screen the subject
(sanctions_screening). Never invent a result: only what the tools returned counts. Then
answer with JSON: the verdict (verified: every identifier checked and passed;
partially_verified: some passed; not_verified: nothing passed; needs_review: a sanctions
candidate or a name that does not match), the reasons, and the answer in plain sentences
for the analyst, the verdict first. Never write an Aadhaar number or an SSN whole."""

_CROSS_CHECKS = ("name_match", "sanctions_screening")


@dataclass(frozen=True, slots=True)
class AgentOutcome:
    results: list[CheckOutcome]
    verdict: str
    reasons: list[str]
    answer: str
    model: str
    input_tokens: int
    output_tokens: int

    def sentences(self) -> list[str]:
        return [part for part in re.split(r"(?<=[.!?])\s+", self.answer.strip()) if part]


async def run_agent(
    ctx: JobContext,
    run: Any,
    model: str,
    workflow: WorkflowSpec | None,
    tasks: Sequence[Task],
    subject: Subject,
    earlier: Sequence[Any],
    env: ToolEnv,
) -> AgentOutcome:
    assert ctx.parts is not None, "the worker gives jobs the process's parts"
    gateway = ctx.parts.get(Gateway)
    results: list[CheckOutcome] = []
    places = itertools.count()
    asked: Counter[tuple[str, str]] = Counter()
    names = (*workflow.checks, *_CROSS_CHECKS) if workflow else tuple(REGISTRY)

    def model_tool(tool: Tool) -> ModelTool:
        async def call(arguments: dict[str, Any]) -> dict[str, Any]:
            value = str(arguments.get("value", "")).strip()
            extra = {k: str(v) for k, v in arguments.items() if k != "value" and v}
            task: Task = {"tool": tool.name, "kind": tool.kind, "value": value}
            if extra:
                task["arguments"] = extra
            place = next(places)
            # Keyed by what is asked, not when: a retried run whose model asks in another
            # order still finds (and does not bill again) the calls already made.
            asked[(tool.name, value)] += 1
            step = f"agent:{tool.name}:{asked[(tool.name, value)]}"
            async with ctx.transaction() as session:
                await ctx.ensure_running(session)
                upcoming = await begin_call(ctx, session, run.id, place, task, step)
            outcome = await run_tool(upcoming, env)
            async with ctx.transaction() as session:
                await ctx.ensure_running(session)
                done = await record_call(ctx, session, run.id, upcoming, outcome, place + 1)
            results.append(done)
            return {"status": done.status, "summary": done.summary, "result": done.output}

        return ModelTool(tool.name, tool.description, _parameters(tool), call)

    tools = [model_tool(REGISTRY[name]) for name in dict.fromkeys(names) if name in REGISTRY]
    system = _INSTRUCTIONS + (
        f"\n\nThe procedure to follow:\n\n{workflow.content}" if workflow else ""
    )
    result = await gateway.complete(
        ctx.tenant,
        model,
        _prompt(run.message, subject, tasks, earlier),
        output_schema=AGENT_OUTPUT,
        tools=tools,
        system=system,
        job_id=run.id,
    )
    value = result.value
    return AgentOutcome(
        results,
        str(value["verdict"]),
        [str(reason) for reason in value["reasons"]],
        str(value["answer"]),
        result.model,
        result.usage.input_tokens,
        result.usage.output_tokens,
    )


def agent_credits(outcome: AgentOutcome, per_thousand: Decimal) -> Decimal:
    tokens = outcome.input_tokens + outcome.output_tokens
    return (Decimal(tokens) * per_thousand / 1000).quantize(Decimal("0.0001"))


def _parameters(tool: Tool) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "value": {"type": "string", "description": f"the {tool.kind} to check, as written"}
    }
    if tool.name == "name_match":
        properties["against"] = {"type": "string", "description": "the other name"}
        properties["source"] = {"type": "string", "description": "where that name is from"}
    if tool.name == "sanctions_screening":
        properties["birth_date"] = {"type": "string", "description": "YYYY-MM-DD, if known"}
    return {"type": "object", "properties": properties, "required": ["value"]}


def _prompt(message: str, subject: Subject, tasks: Sequence[Task], earlier: Sequence[Any]) -> str:
    lines = [f"Request: {message}"]
    if subject.name:
        born = f", born {subject.birth_date}" if subject.birth_date else ""
        lines.append(f"Subject: {subject.name}{born}")
    if tasks:
        lines.append("Identifiers read in it (tool: value):")
        lines += [f"- {task['tool']}: {task['value']}" for task in tasks]
    if earlier:
        lines.append("Earlier in this thread:")
        lines += [
            f"- {previous.message} -> {previous.answer or 'no answer'}" for previous in earlier
        ]
    return "\n".join(lines)

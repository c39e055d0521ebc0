"""The checks that tie a request together: the subject's name against another name
(`name_match`), and the subject against a sanctions list (`sanctions_screening`).

They register like every other tool; what they compare the value with comes in the call's
arguments (`ToolEnv.arguments`), which the planner fills (executor.plan_cross_checks).
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

from openenrich.verify import names, sanctions
from openenrich.verify.tools import ToolEnv, ToolResult, bad, ok, register


@register(
    "name_match",
    kind="name",
    local=True,
    description="Name match: the subject's name against a name an identifier carries "
    "(transliteration, initials, titles and legal forms allowed for), scored 0-100",
)
async def check_name_match(value: str, env: ToolEnv) -> ToolResult:
    against = env.arguments.get("against", "")
    if not against:
        return ToolResult("not_found", f"No name to compare {value} with.", {})
    found = names.match(value, against)
    source = env.arguments.get("source", "")
    output: dict[str, Any] = {
        "name": value,
        "against": against,
        "source": source,
        "score": found.score,
        "method": found.method,
    }
    said = f"Name match {found.score:g}% between {value} and {against}"
    said += f" ({source})." if source else "."
    return ok(said, **output)


@register(
    "sanctions_screening",
    kind="name",
    local=True,
    description="Sanctions screening: the subject against the configured sanctions list "
    "(OpenSanctions targets.simple.csv format), candidates with scores and the fields "
    "that matched",
)
async def check_sanctions(value: str, env: ToolEnv) -> ToolResult:
    path = env.settings.verify_sanctions_list
    if path is None:
        return ToolResult(
            "not_found",
            "Sanctions screening could not run: no sanctions list is configured.",
            {"reason": "OPENENRICH_VERIFY_SANCTIONS_LIST is not set"},
        )
    birth_date = env.arguments.get("birth_date") or None
    try:
        listed, candidates = await asyncio.to_thread(_screen, path, value, birth_date)
    except FileNotFoundError:
        return ToolResult(
            "not_found",
            f"Sanctions screening could not run: the list {path.name} is missing.",
            {"reason": f"{path} does not exist"},
        )
    except ValueError as error:  # a birth date the list cannot compare
        return bad(f"Sanctions screening of {value} failed: {error}.")
    output = {
        "list": path.name,
        "entries": len(listed),
        "candidates": [_candidate(candidate) for candidate in candidates],
    }
    if not candidates:
        return ok(f"No entry of the sanctions list resembles {value}.", **output)
    best = candidates[0]
    born = f", born {best.birth_dates[0]}" if best.birth_dates else ""
    return ok(
        f"{value} resembles {len(candidates)} sanctions list "
        f"{'entry' if len(candidates) == 1 else 'entries'}: the closest is "
        f"{best.name} ({best.score:g}%{born}), to be reviewed.",
        **output,
    )


def _screen(
    path: Path, value: str, birth_date: str | None
) -> tuple[sanctions.SanctionsList, list[sanctions.Candidate]]:
    """The list (loaded on first use: seconds for a big one) and what it holds like `value`,
    in one trip to a worker thread."""
    listed = sanctions.load_list(path)
    return listed, listed.screen(value, birth_date=birth_date)


def _candidate(candidate: sanctions.Candidate) -> dict[str, Any]:
    return {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in dataclasses.asdict(candidate).items()
    }

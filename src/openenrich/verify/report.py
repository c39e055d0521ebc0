"""A finished run's report, verdict and answer, from its checks' results.

The report is JSON with a published schema (`REPORT_SCHEMA`, in `/openapi.json` and in
docs/verification.md); the answer is the report said in sentences, the reason for the
verdict first. The verdict, from strongest to weakest signal:

- `needs_review`: a sanctions candidate, or a name that does not match the subject's (a
  score under `NAME_MATCH_THRESHOLD`, or a PAN whose surname initial is not the subject's);
  a person must look, whatever else passed.
- `verified`: every identifier was checked and passed, and so did every cross-check.
- `partially_verified`: some checks passed, others failed or could not be made (a masked
  number, a source that is not configured).
- `not_verified`: nothing passed, or nothing could be checked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from anyascii import anyascii

from openenrich.verify.subject import Subject

NAME_MATCH_THRESHOLD = 85.0
# Identifiers never written whole in a report or an answer: the last four characters only.
MASKED_KINDS = frozenset({"aadhaar", "ssn"})
VERDICTS = ("verified", "partially_verified", "not_verified", "needs_review")


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """One finished call: an identifier check or a cross-check."""

    call_id: str
    tool: str
    kind: str
    value: str
    status: str  # success, failed, not_found
    summary: str
    output: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class NotCheckable:
    kind: str
    value: str
    reason: str


def masked(kind: str, value: str) -> str:
    if kind not in MASKED_KINDS:
        return value
    digits = [char for char in value if char.isalnum()]
    return "X" * max(len(digits) - 4, 0) + "".join(digits[-4:])


def _risk_flags(
    subject: Subject, checks: Sequence[CheckOutcome], unchecked: Sequence[NotCheckable]
) -> list[dict[str, str]]:
    flags: list[dict[str, str]] = [
        {"code": "name_mismatch", "detail": detail} for detail in _pan_surnames(subject, checks)
    ]
    for check in checks:
        if check.tool == "sanctions_screening" and check.output.get("candidates"):
            best = check.output["candidates"][0]
            flags.append(
                {
                    "code": "sanctions_candidate",
                    "detail": f"{check.value} resembles {best['name']} "
                    f"({best['score']:g}%) on a sanctions list.",
                }
            )
        elif check.tool == "name_match" and check.status == "success":
            score = float(check.output.get("score", 0))
            if score < NAME_MATCH_THRESHOLD:
                flags.append(
                    {
                        "code": "name_mismatch",
                        "detail": f"{check.output.get('against')} matches {check.value} "
                        f"only {score:g}%.",
                    }
                )
        elif check.status == "failed" and check.tool not in ("name_match",):
            flags.append({"code": "invalid_identifier", "detail": check.summary})
        if check.output.get("disposable"):
            flags.append({"code": "disposable_email", "detail": check.summary})
    for item in unchecked:
        flags.append({"code": "not_checkable", "detail": _unchecked_sentence(item)})
    return flags


def _pan_surnames(subject: Subject, checks: Sequence[CheckOutcome]) -> list[str]:
    """A person's PAN carries the initial of their surname (its fifth character): one that
    is not the subject's surname's initial is someone else's PAN, or a wrong name."""
    if not subject.name:
        return []
    surname = anyascii(subject.name.split()[-1]).strip()[:1].upper()
    mismatches = []
    for check in checks:
        initial = check.output.get("surname_initial")
        if check.tool != "pan_verification" or check.status != "success" or not initial:
            continue
        if surname and str(initial).upper() != surname:
            mismatches.append(
                f"PAN {check.value} belongs to a person whose surname starts with "
                f"'{initial}', not {subject.name.split()[-1]}."
            )
    return mismatches


def verdict_of(
    subject: Subject, checks: Sequence[CheckOutcome], unchecked: Sequence[NotCheckable]
) -> tuple[str, list[str]]:
    """The verdict and the sentences that justify it."""
    flags = _risk_flags(subject, checks, unchecked)
    review = [f["detail"] for f in flags if f["code"] in ("sanctions_candidate", "name_mismatch")]
    if review:
        return "needs_review", review
    identity = [check for check in checks if check.kind != "name"]
    passed = [check for check in identity if check.status == "success"]
    missing = [check for check in identity if check.status != "success"]
    if identity and not missing and not unchecked:
        return "verified", [f"All {len(identity)} checks passed."]
    reasons = [check.summary for check in missing] + [_unchecked_sentence(u) for u in unchecked]
    if passed:
        return "partially_verified", reasons
    if not identity and not unchecked:
        return "not_verified", ["No identifiers to verify were found in the request."]
    return "not_verified", reasons


_KIND_NAMES = {
    "phone": "phone number",
    "pan": "PAN",
    "ein": "EIN",
    "ssn": "SSN",
    "uan": "UAN",
    "epic": "EPIC",
    "gstin": "GSTIN",
    "iban": "IBAN",
    "bic": "BIC",
    "lei": "LEI",
    "vat": "VAT number",
    "emirates_id": "Emirates ID",
    "vehicle_rc": "vehicle registration",
    "email": "e-mail address",
    "url": "web address",
}


def _unchecked_sentence(item: NotCheckable) -> str:
    label = _KIND_NAMES.get(item.kind, item.kind.replace("_", " "))
    if not item.value:  # a required check with nothing to check
        return f"No {label} was given, and the workflow requires one."
    return f"The {label} {item.value} is {item.reason}, so it could not be checked."


def answer_sentences(
    subject: Subject,
    verdict: str,
    checks: Sequence[CheckOutcome],
    unchecked: Sequence[NotCheckable],
) -> list[str]:
    """The answer, a sentence at a time (each is one `answer.delta`): the verdict, what
    calls for review, then each check's own sentence and what could not be checked."""
    said = verdict.replace("_", " ")
    sentences = [f"{subject.name}: {said}." if subject.name else f"{said.capitalize()}."]
    summaries = [_masked_summary(check) for check in checks]
    if verdict == "needs_review":
        reasons = verdict_of(subject, checks, unchecked)[1]
        sentences += [reason for reason in reasons if reason not in summaries]
    sentences += summaries
    sentences += [_unchecked_sentence(item) for item in unchecked]
    if not checks and not unchecked:
        sentences.append("No identifiers to verify were found in the request.")
    return sentences


def _masked_summary(check: CheckOutcome) -> str:
    if check.kind in MASKED_KINDS:
        return check.summary.replace(check.value, masked(check.kind, check.value))
    return check.summary


def build_report(
    *,
    subject: Subject,
    workflow: str | None,
    thread_id: str,
    checks: Sequence[CheckOutcome],
    unchecked: Sequence[NotCheckable],
    earlier: Sequence[Mapping[str, Any]],
    emphasis: Sequence[str],
    generated_at: str,
) -> dict[str, Any]:
    verdict, reasons = verdict_of(subject, checks, unchecked)
    identity = [check for check in checks if check.kind != "name"]
    crossed = [check for check in checks if check.kind == "name"]
    return {
        "version": 1,
        "subject": {"name": subject.name, "birth_date": subject.birth_date},
        "workflow": workflow,
        "thread_id": thread_id,
        "verdict": verdict,
        "reasons": reasons,
        "checks": [_check(check) for check in identity],
        "cross_checks": [_check(check) for check in crossed],
        "not_checked": [
            {"kind": item.kind, "input": item.value, "reason": item.reason} for item in unchecked
        ],
        "risk_flags": _risk_flags(subject, checks, unchecked),
        "emphasis": list(emphasis),
        "steps": [
            {"type": "tool_call", "id": check.call_id, "name": check.tool, "status": check.status}
            for check in checks
        ],
        "earlier_runs": list(earlier),
        "generated_at": generated_at,
    }


def _check(check: CheckOutcome) -> dict[str, Any]:
    output = dict(check.output)
    if check.kind in MASKED_KINDS:
        output = {
            key: masked(check.kind, value) if value == check.value else value
            for key, value in output.items()
        }
    return {
        "call_id": check.call_id,
        "tool": check.tool,
        "kind": check.kind,
        "input": masked(check.kind, check.value),
        "status": check.status,
        "summary": _masked_summary(check),
        "result": output,
    }


_STRING = {"type": "string"}
_NULLABLE_STRING = {"type": ["string", "null"]}
_CHECK = {
    "type": "object",
    "required": ["call_id", "tool", "kind", "input", "status", "summary", "result"],
    "properties": {
        "call_id": _STRING,
        "tool": _STRING,
        "kind": _STRING,
        "input": {**_STRING, "description": "Aadhaar and SSN masked to their last four"},
        "status": {"enum": ["success", "failed", "not_found"]},
        "summary": _STRING,
        "result": {"type": "object"},
    },
}
REPORT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "VerificationReport",
    "type": "object",
    "required": [
        "version",
        "subject",
        "workflow",
        "thread_id",
        "verdict",
        "reasons",
        "checks",
        "cross_checks",
        "not_checked",
        "risk_flags",
        "emphasis",
        "steps",
        "earlier_runs",
        "generated_at",
    ],
    "properties": {
        "version": {"const": 1},
        "subject": {
            "type": "object",
            "required": ["name", "birth_date"],
            "properties": {"name": _NULLABLE_STRING, "birth_date": _NULLABLE_STRING},
        },
        "workflow": _NULLABLE_STRING,
        "thread_id": _STRING,
        "verdict": {"enum": list(VERDICTS)},
        "reasons": {"type": "array", "items": _STRING},
        "checks": {"type": "array", "items": _CHECK},
        "cross_checks": {"type": "array", "items": _CHECK},
        "not_checked": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["kind", "input", "reason"],
                "properties": {"kind": _STRING, "input": _STRING, "reason": _STRING},
            },
        },
        "risk_flags": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["code", "detail"],
                "properties": {
                    "code": {
                        "enum": [
                            "sanctions_candidate",
                            "name_mismatch",
                            "invalid_identifier",
                            "disposable_email",
                            "not_checkable",
                        ]
                    },
                    "detail": _STRING,
                },
            },
        },
        "emphasis": {"type": "array", "items": _STRING},
        "steps": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type", "id", "name", "status"],
                "properties": {
                    "type": {"const": "tool_call"},
                    "id": _STRING,
                    "name": _STRING,
                    "status": _STRING,
                },
            },
        },
        "earlier_runs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["run_id", "answer", "verdict"],
                "properties": {
                    "run_id": _STRING,
                    "answer": _NULLABLE_STRING,
                    "verdict": {"enum": [*VERDICTS, None]},
                },
            },
        },
        "generated_at": {**_STRING, "format": "date-time"},
        "agent": {
            "description": "When an LLM agent made the checks: its model and tokens",
            "type": "object",
            "required": ["model", "input_tokens", "output_tokens"],
            "properties": {
                "model": _STRING,
                "input_tokens": {"type": "integer"},
                "output_tokens": {"type": "integer"},
            },
        },
    },
}

"""Workflows: named procedures a run follows. The built-ins ship with OpenEnrich; an
organisation's own (Markdown, `verify.models.Workflow`) override a built-in of the same
slug.

What a workflow makes a run do, for now: the checks (tools) it names. A built-in lists
them; a custom workflow names them in its Markdown (any registered tool name that appears
in the text, e.g. "- `pan_verification`"). Each named check runs on every identifier of
its kind the message (or, in a thread, an earlier message) contains.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from openenrich.verify.tools import REGISTRY


@dataclass(frozen=True, slots=True)
class WorkflowSpec:
    slug: str
    name: str
    description: str
    checks: tuple[str, ...]
    scope: str = "built-in"
    is_active: bool = True
    content: str = ""
    emphasis: tuple[str, ...] = ()  # what the report must bring forward


def _builtin(slug: str, description: str, *checks: str) -> WorkflowSpec:
    name = slug.replace("-", " ").title()  # "Kyc Verification", as the reference lists it
    body = "\n".join(f"- `{check}`" for check in checks)
    content = f"# {name}\n\n{description}\n\nChecks:\n{body}\n"
    return WorkflowSpec(slug, name, description, checks, content=content)


BUILT_IN: dict[str, WorkflowSpec] = {
    spec.slug: spec
    for spec in [
        _builtin(
            "kyc-verification",
            "Identity verification for India: PAN, Aadhaar, mobile, email",
            "pan_verification",
            "aadhaar_verification",
            "mobile_verification",
            "email_verification",
        ),
        _builtin(
            "kyb-us",
            "US business verification: EIN, website, contact email",
            "ein_verification",
            "website_check",
            "email_verification",
        ),
        _builtin(
            "kyc-us",
            "US identity verification: phone and email",
            "mobile_verification",
            "email_verification",
        ),
        _builtin(
            "employment-verification",
            "Employment checks: UAN, PAN, work email",
            "uan_verification",
            "pan_verification",
            "email_verification",
        ),
        _builtin(
            "mobile-verification",
            "Mobile number intelligence: validity, line type, carrier",
            "mobile_verification",
        ),
        _builtin(
            "vehicle-rc-verification", "Indian vehicle registration", "vehicle_rc_verification"
        ),
        _builtin(
            "uae-verification",
            "UAE identity: Emirates ID and mobile",
            "emirates_id_verification",
            "mobile_verification",
        ),
        _builtin(
            "business-due-diligence",
            "Business due diligence: tax and bank identifiers, web presence",
            "gstin_verification",
            "pan_verification",
            "ein_verification",
            "vat_verification",
            "iban_verification",
            "website_check",
        ),
        _builtin(
            "social-profile-analysis",
            "Social and web profiles: reachability and titles",
            "website_check",
            "email_verification",
        ),
    ]
}


def checks_in(content: str) -> tuple[str, ...]:
    """The registered tools a custom workflow's Markdown names, in order of appearance."""
    names = [word for word in re.findall(r"[a-z][a-z0-9_]+", content) if word in REGISTRY]
    return tuple(dict.fromkeys(names))

"""Workflows: named procedures a run follows, written in Markdown.

A workflow is a Markdown document: a procedure for a person (and for an LLM agent), after
front matter that the engine reads:

    ---
    name: KYC Verification            # optional: else the slug, title-cased
    description: "Identity verification for India: PAN, Aadhaar, mobile, email"
    checks: [pan_verification, aadhaar_verification, mobile_verification]  # in order
    required: [pan_verification]      # without these, the identity is not verified
    emphasis: [whether the PAN belongs to a person of the subject's surname]
    plan: false                       # true: propose a plan and wait for approval first
    ---
    # KYC verification …

The built-ins ship as such files (`procedures/*.md`); an organisation's own use the same
format, are checked when saved (a 400 naming the unknown check or the bad field), and
override a built-in of the same slug. A custom workflow saved before front matter existed
names its checks in its text (any registered tool name, e.g. "- `pan_verification`"), and
still works.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

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
    required: tuple[str, ...] = ()  # checks without which the identity is not verified
    plan: bool = False  # propose a plan and wait for approval before any check


class InvalidWorkflow(ValueError):
    """The Markdown's front matter is not a workflow's: the message says which field."""


class FrontMatter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    description: str = Field(default="", max_length=1000)
    checks: list[str] = Field(min_length=1, max_length=50)
    required: list[str] = Field(default_factory=list)
    emphasis: list[str] = Field(default_factory=list, max_length=20)
    plan: bool = False


_FRONT = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*(?:\n|\Z)", re.S)


def front_matter(content: str) -> FrontMatter | None:
    """The front matter of a workflow's Markdown, checked; None when it has none."""
    found = _FRONT.match(content)
    if found is None:
        return None
    try:
        fields = yaml.safe_load(found.group(1))
    except yaml.YAMLError as error:
        raise InvalidWorkflow(f"front matter is not YAML: {error}".splitlines()[0]) from None
    if not isinstance(fields, dict):
        raise InvalidWorkflow("front matter must be a mapping of fields (name, checks, …)")
    try:
        matter = FrontMatter.model_validate(fields)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "front matter"
        raise InvalidWorkflow(f"{where}: {first['msg']}") from None
    for field, names in (("checks", matter.checks), ("required", matter.required)):
        for name in names:
            if name not in REGISTRY:
                raise InvalidWorkflow(f"{field}: '{name}' is not a check (GET /api/v1/workflows)")
    for name in matter.required:
        if name not in matter.checks:
            raise InvalidWorkflow(f"required: '{name}' is not one of the workflow's checks")
    return matter


def checks_in(content: str) -> tuple[str, ...]:
    """The registered tools a custom workflow's Markdown names, in order of appearance
    (workflows without front matter)."""
    names = [word for word in re.findall(r"[a-z][a-z0-9_]+", content) if word in REGISTRY]
    return tuple(dict.fromkeys(names))


def spec_from_markdown(
    slug: str,
    content: str,
    *,
    name: str | None = None,
    description: str | None = None,
    scope: str = "built-in",
    is_active: bool = True,
) -> WorkflowSpec:
    """A workflow from its Markdown; `name` and `description` given (a custom workflow's
    columns) win over the front matter's."""
    matter = front_matter(content)
    if matter is None:
        return WorkflowSpec(
            slug,
            name or slug.replace("-", " ").title(),
            description or "",
            checks_in(content),
            scope=scope,
            is_active=is_active,
            content=content,
        )
    return WorkflowSpec(
        slug,
        name or matter.name or slug.replace("-", " ").title(),
        description or matter.description,
        tuple(dict.fromkeys(matter.checks)),
        scope=scope,
        is_active=is_active,
        content=content,
        emphasis=tuple(matter.emphasis),
        required=tuple(matter.required),
        plan=matter.plan,
    )


# The reference's order, which GET /api/v1/workflows keeps.
_BUILT_IN_ORDER = (
    "kyc-verification",
    "kyb-us",
    "kyc-us",
    "employment-verification",
    "mobile-verification",
    "vehicle-rc-verification",
    "uae-verification",
    "business-due-diligence",
    "social-profile-analysis",
)


def _built_in() -> dict[str, WorkflowSpec]:
    folder = resources.files("openenrich.verify") / "procedures"
    return {
        slug: spec_from_markdown(slug, (folder / f"{slug}.md").read_text(encoding="utf-8"))
        for slug in _BUILT_IN_ORDER
    }


BUILT_IN: dict[str, WorkflowSpec] = _built_in()

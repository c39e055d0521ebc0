"""TEMPORARY stand-in (replaced by the enrichers branch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Template:
    id: str
    name: str
    description: str
    fields: list[tuple[str, str]]
    steps: list[tuple[str, dict[str, Any]]]


BUILTIN_TEMPLATES: dict[str, Template] = {}

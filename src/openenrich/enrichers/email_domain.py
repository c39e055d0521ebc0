"""The `email_domain` enricher: an address's domain and what the lists say of it (free
mail, disposable) and of its local part (role account). The lists are email/lists.py's,
the ones the email verification engine and the verification tools use.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from openenrich.email import lists
from openenrich.enrichers.columns import PerValueEnricher
from openenrich.enrichers.registry import (
    EnricherOptions,
    OutputColumn,
    register,
)


def classify(address: str) -> tuple[Any, ...]:
    """(domain, free, disposable, role) of one address; all null if it has no @domain."""
    local, at, domain = address.strip().rpartition("@")
    domain = domain.strip().rstrip(".").lower()
    if not at or not local or not domain or "." not in domain:
        return None, None, None, None
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_domain = domain
    return (
        domain,
        lists.is_free(ascii_domain),
        lists.is_disposable(ascii_domain),
        lists.is_role(local),
    )


@register
class EmailDomainEnricher(PerValueEnricher):
    name = "email_domain"
    version = 1
    description = "An email address's domain, and whether it is free mail, disposable or a role"

    class Options(EnricherOptions):
        field: str = Field(default="email", min_length=1)
        prefix: str | None = None  # default: the field's name and "_"

    options: Options

    def answer(self, value: Any) -> tuple[Any, ...]:
        return classify(value)

    def outputs(self) -> list[OutputColumn]:
        p = self.prefix
        return [
            OutputColumn(f"{p}domain", "string", "the domain, lower case"),
            OutputColumn(f"{p}free", "boolean", "a free mail provider (gmail.com, …)"),
            OutputColumn(f"{p}disposable", "boolean", "a disposable address service"),
            OutputColumn(f"{p}role", "boolean", "a role account (info@, sales@, no-reply@, …)"),
        ]

"""The built-in templates: named lists of enrichment steps for a kind of event, with the
fields such events carry. `GET /templates` lists them (with tenants' own); a stream with
`"template": "clickstream"` runs the template's steps on every batch.

`fields` are the inputs a client sends (the reference's list first, then the other ones
the steps read); `outputs` the columns the steps add, as each enricher documents them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from openenrich.config import Settings
from openenrich.enrichers import registry
from openenrich.enrichers.registry import EnricherEnv, OutputColumn


@dataclass(frozen=True)
class Template:
    id: str
    name: str
    description: str
    fields: list[tuple[str, str]]  # (name, type), type as in OutputColumn
    steps: list[tuple[str, dict[str, Any]]]  # (enricher name, options)
    outputs: list[OutputColumn] = field(default_factory=list)


def _outputs(steps: list[tuple[str, dict[str, Any]]]) -> list[OutputColumn]:
    """The columns the steps add, as the enrichers say (built with default settings: a
    step's outputs depend on its options only)."""
    env = EnricherEnv(Settings.model_construct())
    columns: list[OutputColumn] = []
    for name, options in steps:
        columns.extend(registry.build(name, options, env).outputs())
    return columns


def _template(
    id: str,
    description: str,
    fields: list[tuple[str, str]],
    steps: list[tuple[str, dict[str, Any]]],
) -> Template:
    return Template(id, id, description, fields, steps, _outputs(steps))


_CLICKSTREAM_STEPS: list[tuple[str, dict[str, Any]]] = [
    ("url", {"field": "url", "referrer_field": "referrer"}),
    ("user_agent", {"field": "user_agent"}),
    ("geo_ip", {"field": "ip"}),
    ("session", {"user_field": "user_id", "time_field": "timestamp"}),
]
_TRANSACTION_STEPS: list[tuple[str, dict[str, Any]]] = [
    ("currency", {"field": "txn_amount", "currency_field": "txn_currency"}),
    ("mask", {"kinds": ["card_number"], "method": "last4"}),
]


def _builtins() -> dict[str, Template]:
    return {
        "clickstream": _template(
            "clickstream",
            "Web and app analytics with session tracking, geo, and domain enrichment",
            [
                ("url", "string"),
                ("timestamp", "int64"),
                ("user_id", "string"),
                ("user_agent", "string"),
                ("ip", "string"),
                ("referrer", "string"),
            ],
            _CLICKSTREAM_STEPS,
        ),
        "transaction": _template(
            "transaction",
            "Payment and purchase event enrichment",
            [("txn_id", "string"), ("txn_amount", "string"), ("txn_currency", "string")],
            _TRANSACTION_STEPS,
        ),
    }


# Built at import: the enrichers' outputs are fixed by their options.
BUILTIN_TEMPLATES: dict[str, Template] = _builtins()

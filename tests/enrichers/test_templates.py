"""The built-in templates: the reference's fields, and steps that build and run."""

from __future__ import annotations

import pyarrow as pa

from openenrich.config import Settings
from openenrich.enrichers import registry
from openenrich.enrichers.registry import EnricherEnv
from openenrich.enrichers.templates import BUILTIN_TEMPLATES


def test_the_references_templates_and_fields() -> None:
    assert list(BUILTIN_TEMPLATES) == ["clickstream", "transaction"]
    clickstream = BUILTIN_TEMPLATES["clickstream"]
    assert clickstream.description == (
        "Web and app analytics with session tracking, geo, and domain enrichment"
    )
    assert clickstream.fields[:3] == [
        ("url", "string"),
        ("timestamp", "int64"),
        ("user_id", "string"),
    ]
    assert [name for name, _ in clickstream.steps] == ["url", "user_agent", "geo_ip", "session"]
    transaction = BUILTIN_TEMPLATES["transaction"]
    assert transaction.description == "Payment and purchase event enrichment"
    assert transaction.fields == [
        ("txn_id", "string"),
        ("txn_amount", "string"),
        ("txn_currency", "string"),
    ]


def test_the_clickstream_template_enriches_an_event() -> None:
    template = BUILTIN_TEMPLATES["clickstream"]
    env = EnricherEnv(Settings())
    table = pa.Table.from_pylist(
        [
            {
                "url": "https://example.com/?utm_source=ads",
                "timestamp": 1772366400000,
                "user_id": "u1",
                "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
                "ip": "8.8.8.8",
                "referrer": "https://www.google.com/",
            }
        ]
    )
    added: dict[str, pa.Array] = {}
    for name, options in template.steps:
        added.update(registry.build(name, options, env).apply(table))
    assert list(added) == [column.name for column in template.outputs]
    row = pa.table(added).to_pylist()[0]
    assert (row["url_utm_source"], row["url_referrer_class"]) == ("ads", "search")
    assert (row["ua_browser"], row["geo_country"], row["session_seq"]) == ("Chrome", "US", 1)

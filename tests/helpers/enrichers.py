"""Building and running one enricher over a small table, as the pipeline runner does."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from openenrich.config import Settings
from openenrich.enrichers import registry
from openenrich.enrichers.registry import EnricherEnv


def enrich(
    name: str, rows: list[dict[str, Any]], settings: Settings | None = None, **options: Any
) -> list[dict[str, Any]]:
    """The enricher's added columns, row by row."""
    enricher = registry.build(name, options, EnricherEnv(settings or Settings()))
    table = pa.Table.from_pylist(rows)
    added = enricher.apply(table)
    assert list(added) == [column.name for column in enricher.outputs()]
    for column, values in zip(enricher.outputs(), added.values(), strict=True):
        assert len(values) == table.num_rows
        assert values.type == column.arrow_type, column.name
    return pa.table(added).to_pylist()

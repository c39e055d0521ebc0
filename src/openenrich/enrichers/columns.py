"""Arrow helpers the enrichers share: read a column whatever its type (or absence), and
compute a function once per distinct value of a column, with a bounded cache across
batches, then spread the answers back over the rows with `take`.

Event data repeats itself (a few thousand URLs, a few hundred user agents per million
events), so per-distinct work in Python is what makes the enrichers fast.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc


def column(table: pa.Table, name: str) -> pa.Array:
    """One column as one array; a column the batch does not have is all null."""
    if name not in table.column_names:
        return pa.nulls(table.num_rows, pa.string())
    return table.column(name).combine_chunks()


def strings(table: pa.Table, name: str) -> pa.Array:
    """A column as strings: numbers as their text; what has no text form (lists,
    objects) is null rather than an error."""
    values = column(table, name)
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    if pa.types.is_string(values.type):
        return values
    if pa.types.is_large_string(values.type) or pa.types.is_string_view(values.type):
        return values.cast(pa.string())
    try:
        return pc.cast(values, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.nulls(len(values), pa.string())


class DistinctCache:
    """Answers per distinct value, kept across batches; cleared whole when it holds
    `limit` values (answers are pure, so forgetting only costs time)."""

    def __init__(self, compute: Callable[[Any], tuple[Any, ...]], limit: int = 200_000) -> None:
        self.compute = compute
        self.limit = limit
        self.answers: dict[Any, tuple[Any, ...]] = {}

    def answer(self, value: Any) -> tuple[Any, ...]:
        answers = self.answers
        found = answers.get(value)
        if found is None:
            if len(answers) >= self.limit:
                answers.clear()
            found = answers[value] = self.compute(value)
        return found

    def apply(self, values: pa.Array, types: Sequence[pa.DataType]) -> list[pa.Array]:
        """One output array per type: `compute(value)[i]` for each row (null rows and
        null answers are null)."""
        encoded = pc.dictionary_encode(values)
        distinct = encoded.dictionary.to_pylist()
        answers = [self.answer(value) for value in distinct]
        outputs = []
        for index, type_ in enumerate(types):
            per_value = pa.array([answer[index] for answer in answers], type=type_)
            outputs.append(per_value.take(encoded.indices))
        return outputs

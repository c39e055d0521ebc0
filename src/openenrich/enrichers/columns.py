"""Arrow helpers the enrichers share: read a column whatever its type (or absence), and
compute a function once per distinct value of a column, with a bounded cache across
batches, then spread the answers back over the rows with `take`.

Event data repeats itself (a few thousand URLs, a few hundred user agents per million
events), so per-distinct work in Python is what makes the enrichers fast.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, cast

import pyarrow as pa
import pyarrow.compute as pc

from openenrich.enrichers.registry import Enricher, EnricherEnv


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


# Values converted to Python at a time. Converting an Arrow array holds the GIL for the
# whole call, and the event loop cannot run meanwhile; 4,096 values take well under a
# millisecond, 100,000 (the distinct users or IPs of a large flush) about ten.
SLICE = 4_096


def in_slices(values: pa.Array) -> Iterator[list[Any]]:
    """The values as Python lists of at most SLICE each."""
    for start in range(0, len(values), SLICE):
        yield values.slice(start, SLICE).to_pylist()


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
        parts: list[list[pa.Array]] = [[pa.array([], type=type_)] for type_ in types]
        for distinct in in_slices(encoded.dictionary):
            answers = [self.answer(value) for value in distinct]
            for index, type_ in enumerate(types):
                parts[index].append(pa.array([answer[index] for answer in answers], type=type_))
        return [pa.concat_arrays(part).take(encoded.indices) for part in parts]


class FieldOptions(Protocol):
    """What a per-value enricher's options have (read-only: options are frozen)."""

    @property
    def field(self) -> str: ...

    @property
    def prefix(self) -> str | None: ...


class PerValueEnricher(Enricher):
    """An enricher of one column, `options.field`, whose outputs for a value depend on the
    value alone: `answer(value)` gives them in the order of `outputs()`, and is asked once
    per distinct value (cached across batches). Its columns are named `options.prefix`
    (default: the field's name and "_") and the output's name."""

    def __init__(self, options: Any, env: EnricherEnv) -> None:
        super().__init__(options, env)
        named = cast(FieldOptions, self.options)  # each subclass's Options has both
        field, prefix = named.field, named.prefix
        self.field: str = field
        self.prefix: str = prefix if prefix is not None else f"{field}_"
        self._answers = DistinctCache(self.answer)

    @abc.abstractmethod
    def answer(self, value: Any) -> tuple[Any, ...]:
        """The outputs for one (non-null) value of the field, in the order of `outputs()`."""

    def inputs(self) -> list[str]:
        return [self.field]

    def apply(self, table: pa.Table) -> dict[str, pa.Array]:
        columns = self.outputs()
        values = self._answers.apply(
            strings(table, self.field), [column.arrow_type for column in columns]
        )
        return dict(zip([column.name for column in columns], values, strict=True))

"""A stream's processing steps: checked when the stream is saved, run on each flushed batch.

    "pipeline": [
      {"type": "enrich", "template": "clickstream"},            a template's enrichers
      {"type": "enrich", "enricher": "url", "options": {…}},    one enricher
      {"type": "mask", "fields": ["email"], "kinds": ["card_number"], "method": "hash"},
      {"type": "filter", "where": "status <> 'debug'"},          keep matching rows
      {"type": "sample", "rate": 0.1, "by": "user_id"},          keep 10% of users
      {"type": "route", "rules": [{"when": "level = 'error'", "to": ["siem", "lake"]}]}
    ]

Steps run in order over the whole Arrow batch (the flush thread; never per event, never on
the request path). `route` comes last: a row goes to the destinations of every rule it
matches, and a row that matches none goes to the lake (`lake` in a rule's `to` keeps it
there too). Every step decides the same way for the same rows, so a batch processed again
after a crash gives the same files and destination batches.

Nothing is lost to a condition that cannot be evaluated on a batch (a column whose type
there does not fit the expression): a filter then keeps the whole batch, a route rule
matches nothing (its rows go to the lake), and the reason shows in /errors as `processing`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from openenrich.enrichers import mask as masking
from openenrich.enrichers.registry import Enricher, EnricherEnv, build
from openenrich.errors import BadRequest
from openenrich.lake.parquet import EventBatch
from openenrich.streams.conditions import Condition, Unevaluable

LAKE = "lake"
MAX_STEPS = 20
MAX_RULES = 50
MASK_KINDS = ("email", "phone", "card_number", "ip")
MASK_METHODS = ("redact", "hash", "truncate", "last4")
# Sampling splits the 64-bit hash space; a rate keeps this many parts in a million.
_SAMPLE_SCALE = 1_000_000


# -- the saved form ------------------------------------------------------------------------


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnrichStep(_Step):
    type: Literal["enrich"]
    template: str | None = None
    enricher: str | None = None
    options: dict[str, Any] | None = None


class MaskStep(_Step):
    type: Literal["mask"]
    fields: list[str] = Field(default_factory=list, max_length=200)
    kinds: list[Literal["email", "phone", "card_number", "ip"]] = Field(default_factory=list)
    method: Literal["redact", "hash", "truncate", "last4"] = "redact"
    keep: int = Field(default=4, ge=0, le=64, description="characters `truncate` keeps")


class FilterStep(_Step):
    type: Literal["filter"]
    where: str


class SampleStep(_Step):
    type: Literal["sample"]
    rate: float = Field(gt=0, le=1)
    by: str | None = None


class RouteRule(_Step):
    when: str
    to: list[str] = Field(min_length=1, max_length=20)


class RouteStep(_Step):
    type: Literal["route"]
    rules: list[RouteRule] = Field(min_length=1, max_length=MAX_RULES)


StepSpec = Annotated[
    EnrichStep | MaskStep | FilterStep | SampleStep | RouteStep, Field(discriminator="type")
]
_STEPS: TypeAdapter[list[StepSpec]] = TypeAdapter(list[StepSpec])


@dataclass(frozen=True, slots=True)
class EnricherUse:
    enricher: str
    options: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Resources:
    """What checking and building a pipeline looks up."""

    env: EnricherEnv
    # A template id -> its enrichers (built-in or the tenant's own); None: no such template.
    template: Callable[[str], Sequence[EnricherUse] | None]
    # The tenant's destination ids (`lake` is always there); None: not checked here.
    destinations: frozenset[str] | None = None
    mask_salt: bytes = b""


# -- running -------------------------------------------------------------------------------


@dataclass(slots=True)
class Outcome:
    """What a batch became: the lake's rows, each destination's rows, and what went wrong
    without stopping the batch (for /errors)."""

    lake: EventBatch
    routed: dict[str, pa.Table] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


class _Running:
    def __init__(self, batch: EventBatch) -> None:
        self.table = batch.table
        self.columns = dict(batch.columns)
        self.problems: list[str] = []
        self.routed: dict[str, pa.Table] = {}

    def set_column(self, name: str, values: pa.Array | pa.ChunkedArray, kind: str) -> None:
        if name in self.table.column_names:
            self.table = self.table.set_column(self.table.column_names.index(name), name, values)
        else:
            # New columns go before _event_id and _ingested_at, which stay last.
            position = max(0, self.table.num_columns - 2)
            self.table = self.table.add_column(position, name, values)
        self.columns[name] = kind


class _Enrich:
    def __init__(self, enrichers: list[Enricher]) -> None:
        self.enrichers = enrichers

    def run(self, state: _Running) -> None:
        for enricher in self.enrichers:
            types = {column.name: column.type for column in enricher.outputs()}
            for name, values in enricher.apply(state.table).items():
                state.set_column(name, values, types.get(name, "string"))


class _Mask:
    def __init__(self, spec: MaskStep, salt: bytes) -> None:
        self.spec = spec
        self.salt = salt

    def _masked(self, values: pa.Array) -> pa.Array:
        return masking.mask(values, self.spec.method, salt=self.salt, keep=self.spec.keep)

    def run(self, state: _Running) -> None:
        for name in self.spec.fields:
            if name in state.table.column_names:
                values = state.table.column(name).combine_chunks()
                if not pa.types.is_string(values.type):
                    values = values.cast(pa.string())
                state.set_column(name, self._masked(values), "string")
        if not self.spec.kinds:
            return
        for name, kind in list(state.columns.items()):
            if kind != "string" or name in self.spec.fields:
                continue
            values = state.table.column(name).combine_chunks()
            found = None
            for detected in self.spec.kinds:
                hit = masking.detect(values, detected)
                found = hit if found is None else pc.or_(found, hit)
            if found is not None and pc.any(found).as_py():
                masked = pc.if_else(found, self._masked(values), values)
                state.set_column(name, masked, "string")


class _Filter:
    def __init__(self, condition: Condition, where: str) -> None:
        self.condition = condition
        self.where = where

    def run(self, state: _Running) -> None:
        try:
            keep = self.condition.evaluate(state.table)
        except Unevaluable as error:
            state.problems.append(
                f"{self.where}: the condition could not be evaluated on this batch ({error}); "
                f"the batch was kept whole"
            )
            return
        state.table = state.table.filter(keep)


class _Sample:
    def __init__(self, spec: SampleStep) -> None:
        self.threshold = int(spec.rate * _SAMPLE_SCALE)
        self.by = spec.by

    def run(self, state: _Running) -> None:
        if self.threshold >= _SAMPLE_SCALE or state.table.num_rows == 0:
            return
        ids = state.table.column("_event_id").combine_chunks()
        if self.by is not None and self.by in state.table.column_names:
            keys = state.table.column(self.by).combine_chunks().cast(pa.string())
            # A row without a key is sampled by its own id.
            keys = pc.coalesce(keys, pc.binary_join_element_wise("#", ids, "#"))
        else:
            keys = ids
        encoded = pc.dictionary_encode(keys)
        kept_values = np.fromiter(
            (_bucket(value) < self.threshold for value in encoded.dictionary.to_pylist()),
            dtype=np.bool_,
            count=len(encoded.dictionary),
        )
        indices = encoded.indices.to_numpy(zero_copy_only=False)
        state.table = state.table.filter(pa.array(kept_values[indices]))


def _bucket(value: str | None) -> int:
    """A stable bucket in [0, 1e6) for a key, the same in every process and version."""
    digest = hashlib.blake2b((value or "").encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % _SAMPLE_SCALE


class _Route:
    def __init__(self, rules: list[tuple[Condition, list[str], str]]) -> None:
        self.rules = rules

    def run(self, state: _Running) -> None:
        rows = state.table.num_rows
        matched_any = pa.array(np.zeros(rows, dtype=np.bool_))
        to_lake = pa.array(np.zeros(rows, dtype=np.bool_))
        by_destination: dict[str, pa.BooleanArray] = {}
        for condition, destinations, where in self.rules:
            try:
                hit = condition.evaluate(state.table)
            except Unevaluable as error:
                state.problems.append(
                    f"{where}: the condition could not be evaluated on this batch ({error}); "
                    f"no row matched it"
                )
                continue
            matched_any = pc.or_(matched_any, hit)
            for destination in destinations:
                if destination == LAKE:
                    to_lake = pc.or_(to_lake, hit)
                else:
                    earlier = by_destination.get(destination)
                    by_destination[destination] = hit if earlier is None else pc.or_(earlier, hit)
        for destination, hit in by_destination.items():
            state.routed[destination] = state.table.filter(hit)
        state.table = state.table.filter(pc.or_(pc.invert(matched_any), to_lake))


_Runnable = _Enrich | _Mask | _Filter | _Sample | _Route


class Pipeline:
    """A stream's steps, built once per configuration and run on every batch."""

    def __init__(self, steps: list[_Runnable], enrichers: list[Enricher]) -> None:
        self._steps = steps
        self.enrichers = enrichers  # every enricher, in order (stateful ones need hooks)

    def run(self, batch: EventBatch) -> Outcome:
        state = _Running(batch)
        for step in self._steps:
            step.run(state)
        return Outcome(EventBatch(state.table, state.columns), state.routed, state.problems)

    @property
    def destinations(self) -> set[str]:
        return {
            destination
            for step in self._steps
            if isinstance(step, _Route)
            for _, destinations, _ in step.rules
            for destination in destinations
            if destination != LAKE
        }


def parse(raw: Any) -> list[StepSpec]:
    """The steps as sent, checked for shape (not yet for meaning: see `build_pipeline`)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BadRequest("pipeline must be an array of steps")
    if len(raw) > MAX_STEPS:
        raise BadRequest(f"pipeline may have at most {MAX_STEPS} steps")
    try:
        return _STEPS.validate_python(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = "pipeline" + "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}"
            for part in first["loc"]
            if part not in ("enrich", "mask", "filter", "sample", "route")
        )
        message = first["msg"]
        if first["type"] == "union_tag_invalid":
            message = "type must be one of enrich, mask, filter, sample, route"
        elif first["type"] == "union_tag_not_found":
            message = "each step needs a type (enrich, mask, filter, sample or route)"
        raise BadRequest(f"{where}: {message}") from None


def dump(steps: Sequence[StepSpec]) -> list[dict[str, Any]]:
    return [step.model_dump(exclude_none=True, exclude_defaults=False) for step in steps]


def build_pipeline(
    steps: Sequence[StepSpec],
    resources: Resources,
    *,
    template: str | None = None,
    declared: Mapping[str, str] | None = None,
) -> Pipeline:
    """Build the steps (a stream's `template` first), or BadRequest saying what is wrong.

    `declared`: a strict stream's columns; conditions are then checked against them (and
    the columns earlier steps add)."""
    columns = dict(declared) if declared is not None else None
    runnable: list[_Runnable] = []
    every_enricher: list[Enricher] = []

    def enrichers_of(uses: Sequence[EnricherUse], where: str) -> list[Enricher]:
        built = []
        for use in uses:
            enricher = build(use.enricher, use.options, resources.env)
            for output in enricher.outputs():
                if columns is not None:
                    columns[output.name] = output.type
            built.append(enricher)
        every_enricher.extend(built)
        return built

    if template is not None:
        uses = resources.template(template)
        if uses is None:
            raise BadRequest(f"Template '{template}' not found")
        runnable.append(_Enrich(enrichers_of(uses, "template")))
    for index, step in enumerate(steps):
        where = f"pipeline[{index}]"
        if isinstance(step, EnrichStep):
            if (step.template is None) == (step.enricher is None):
                raise BadRequest(f"{where}: an enrich step names a template or an enricher")
            if step.template is not None:
                if step.options is not None:
                    raise BadRequest(f"{where}: options go with an enricher, not a template")
                uses = resources.template(step.template)
                if uses is None:
                    raise BadRequest(f"{where}: Template '{step.template}' not found")
            else:
                assert step.enricher is not None
                uses = [EnricherUse(step.enricher, step.options)]
            try:
                runnable.append(_Enrich(enrichers_of(uses, where)))
            except BadRequest as error:
                raise BadRequest(f"{where}: {error.message}") from None
        elif isinstance(step, MaskStep):
            if not step.fields and not step.kinds:
                raise BadRequest(f"{where}: a mask step names fields, kinds or both")
            if step.method == "hash" and not resources.mask_salt:
                raise BadRequest(f"{where}: hashing needs the server setting mask_salt")
            runnable.append(_Mask(step, resources.mask_salt))
        elif isinstance(step, FilterStep):
            condition = Condition.parse(step.where, where=f"{where}.where", declared=columns)
            runnable.append(_Filter(condition, f"{where}.where"))
        elif isinstance(step, SampleStep):
            if step.by is not None and columns is not None and step.by not in columns:
                raise BadRequest(f"{where}.by: unknown column '{step.by}'")
            runnable.append(_Sample(step))
        else:
            if index != len(steps) - 1:
                raise BadRequest(f"{where}: route must be the last step")
            rules = []
            for number, rule in enumerate(step.rules):
                rule_where = f"{where}.rules[{number}]"
                unknown = [
                    d
                    for d in rule.to
                    if d != LAKE
                    and resources.destinations is not None
                    and d not in resources.destinations
                ]
                if unknown:
                    raise BadRequest(
                        f"{rule_where}.to: unknown destination "
                        f"{', '.join(repr(d) for d in unknown)}"
                    )
                condition = Condition.parse(rule.when, where=f"{rule_where}.when", declared=columns)
                rules.append((condition, list(dict.fromkeys(rule.to)), f"{rule_where}.when"))
            runnable.append(_Route(rules))
    return Pipeline(runnable, every_enricher)


__all__ = [
    "LAKE",
    "EnricherUse",
    "Outcome",
    "Pipeline",
    "Resources",
    "StepSpec",
    "build_pipeline",
    "dump",
    "parse",
]

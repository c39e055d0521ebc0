"""Enrichment jobs: fill a saved schema for each entity with each model, fuse the models'
answers, record every result.

- **Starting** checks everything a job could fail on at once before any work: the schema
  (404), each model and the arbiter (400 naming the allowed models, or the missing
  provider key), the batch's size. The job keeps the schema's version: a schema edited
  meanwhile does not change a running job.
- **Running.** Up to `entities_job_concurrency` entities are in flight; on each, every
  model runs in parallel (the gateway's provider and tenant limits apply on top).
  `single_pass` is one structured call with the whole schema; `multi_expertise` one call
  per expertise group with that group's sub-schema and instructions, the parts merged and
  validated against the whole schema. With two models or more that answered, their
  results are fused, the disputed fields sent to the arbitration model when one is given.
- **Classification.** Unless `skip_classification`, the first model is asked first
  whether the entity is of the schema's entity type. On a mismatch the job stops taking
  entities, lets those in flight finish, and pauses (`classification_mismatch`, then
  `paused`); `continue` enriches that entity without asking again, `cancel` ends the job.
- **Records and crash safety.** Each model's result is a record (`enrichment`), each
  fusion one (`fusion`), committed as it comes with its event and the job's running
  total, after the job-row hold (so a cancelled job writes nothing more). A job that
  resumes (after a pause, or a worker's death: the runtime queues it again) skips entities
  that are done and, within the others, models that already have a record: the unique
  (job_id, entity_index, type, model) is the check.
- **Cost.** A record's cost is what its calls cost (retries and re-asks included: the
  gateway's `Result.cost`); the classification call's cost is added to the first record
  of its entity. A call that fails in the end makes no record: its cost is in the
  gateway's call log, not in the job's total. So the job's total is exactly its records'.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from sqlalchemy import Connection, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.config import Settings
from openenrich.db import Database, table
from openenrich.entities import jobs, schema_store
from openenrich.entities.fusion import arbitrate
from openenrich.entities.fusion import fuse as fusion_of
from openenrich.entities.models import EntityJob, EntityJobItem, EntityRecord
from openenrich.entities.schema_store import SavedSchema
from openenrich.entities.schemas import EnrichmentOptions
from openenrich.errors import BadRequest, OpenEnrichError
from openenrich.ids import new_uuid, utcnow
from openenrich.jobs.notify import JobHub
from openenrich.jobs.worker import JobContext, JobSpec, Stopped
from openenrich.llm.gateway import Gateway, Result, Usage
from openenrich.tenancy.tenant import Tenant

logger = logging.getLogger("openenrich.entities")

KIND = "enrichment"


@dataclass(frozen=True, slots=True)
class ExpertiseGroup:
    """One call of `multi_expertise`: the group's properties (schema_store's groups)."""

    name: str
    properties: tuple[str, ...]
    instructions: str | None = None


# A batch's events go out together when they come within this long of each other; a
# model's result is committed at once (with what waited before it).
LINGER = 0.02
_ERROR_LIMIT = 1000
_NAME_LIMIT = 500

_entity_jobs = table(EntityJob)
_items = table(EntityJobItem)
_records = table(EntityRecord)

CLASSIFICATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "matches": {"type": "boolean"},
        "reason": {"type": "string"},
    },
    "required": ["matches", "reason"],
    "additionalProperties": False,
}


# -- starting ---------------------------------------------------------------------------------


def entity_name(entity: dict[str, Any]) -> str | None:
    """What text search matches: the entity's `name` (or its first text value), lower-cased."""
    value = entity.get("name")
    if not isinstance(value, str) or not value.strip():
        value = next((v for v in entity.values() if isinstance(v, str) and v.strip()), None)
    return value.strip().lower()[:_NAME_LIMIT] if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class Plan:
    """An enrichment request once checked: its schema's version and the models' keys."""

    options: EnrichmentOptions
    schema: SavedSchema
    models: list[str]
    arbiter: str | None


async def plan(
    database: Database,
    gateway: Gateway,
    tenant: Tenant,
    options: EnrichmentOptions,
    languages: Sequence[str],
) -> Plan:
    """Check what a job could fail on before any work: the language, the schema (404),
    each model and the arbiter (400: unknown, or no key for its provider)."""
    if options.language is not None and options.language not in languages:
        raise BadRequest(f"Unknown language '{options.language}': one of {', '.join(languages)}")
    async with database.session() as session:
        schema = await schema_store.load(session, tenant, options.schema_id)
    models = [(await gateway.ready(tenant, model)).key for model in dict.fromkeys(options.models)]
    arbiter = None
    if options.arbitration_model is not None:
        arbiter = (await gateway.ready(tenant, options.arbitration_model)).key
    return Plan(options, schema, models, arbiter)


async def start(
    database: Database,
    hub: JobHub,
    settings: Settings,
    tenant: Tenant,
    planned: Plan,
    entities: Sequence[dict[str, Any]],
) -> str:
    """A new enrichment job, committed; its id."""
    limit = settings.entities_batch_max
    if len(entities) > limit:
        raise BadRequest(f"A batch takes at most {limit} entities ({len(entities)} given)")
    if not entities:
        raise BadRequest("entities: at least one entity is required")
    for n, entity in enumerate(entities):
        if not isinstance(entity, dict) or not entity:
            raise BadRequest(f"entities[{n}]: an entity is a non-empty JSON object")
    options = planned.options
    job_id = new_uuid()
    async with database.session() as session:
        await jobs.create(
            session,
            hub,
            tenant,
            job_id=job_id,
            kind=KIND,
            entities=entities,
            schema_id=planned.schema.id,
            schema_version=planned.schema.version,
            models=planned.models,
            strategy=options.strategy,
            arbitration_model=planned.arbiter,
            options={
                "language": options.language,
                "instructions": options.instructions,
                "skip_classification": options.skip_classification,
                "batch": len(entities) > 1,
            },
        )
        await session.commit()
    return job_id


# -- the job's log: events and results, in order --------------------------------------------


Work = Callable[[AsyncSession], Awaitable[list[tuple[str, dict[str, Any]]]]]


class Log:
    """Commits a running job's writes with their events, in the order they were made,
    several at a time: whatever was asked while a transaction ran goes in the next one
    (a busy job commits a few times a second rather than once per result, which on
    SQLite's single writer is what kept a batch from its models' pace). Events with
    nothing to store (model_started, …) wait up to LINGER for company. Every transaction
    first holds the job row (`jobs.hold`): a cancelled job writes nothing more."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self.pending: list[tuple[str, dict[str, Any]]] = []
        self.lock = asyncio.Lock()
        self._queue: list[tuple[Work | None, asyncio.Future[None]]] = []
        self._committer: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.stopped = False

    def emit(self, type: str, data: dict[str, Any]) -> None:
        self.pending.append((type, data))
        if self._timer is None and not self._busy():
            self._timer = asyncio.get_running_loop().call_later(LINGER, self._flush)

    def _busy(self) -> bool:
        return self._committer is not None and not self._committer.done()

    def _flush(self) -> None:
        self._timer = None
        if self.pending and not self._busy():
            self._committer = asyncio.get_running_loop().create_task(self._commit_all())

    async def commit(self, work: Work | None = None) -> None:
        """`work(session)` writes and returns the events that go with it; what was emitted
        before goes first. Returns once committed."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((work, done))
        if not self._busy():
            self._committer = asyncio.get_running_loop().create_task(self._commit_all())
        await done

    async def _commit_all(self) -> None:
        while self._queue or self.pending:
            batch, self._queue = self._queue, []
            try:
                async with self.lock, self.ctx.transaction() as session:
                    await jobs.hold(session, self.ctx)
                    events, self.pending = self.pending, []
                    for work, _ in batch:
                        if work is not None:
                            events += await work(session)
                    if events:
                        await self.ctx.emit_all(events, session)
            except Exception as error:
                # The job is stopped (cancelled, taken over) or the database failed: every
                # write waiting, in this transaction or for the next, fails with it.
                self.stopped = self.stopped or isinstance(error, Stopped)
                waiting, self._queue = [*batch, *self._queue], []
                for _, done in waiting:
                    if not done.done():
                        done.set_exception(error)
                return
            for _, done in batch:
                if not done.done():
                    done.set_result(None)

    def take(self) -> list[tuple[str, dict[str, Any]]]:
        """The events not committed yet (for the last transaction, which writes its own)."""
        events, self.pending = self.pending, []
        return events

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._committer is not None:
            await asyncio.gather(self._committer, return_exceptions=True)


# -- running ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Spend:
    """What calls made before a record cost, carried into it."""

    cost: Decimal = Decimal(0)
    input_tokens: int = 0
    output_tokens: int = 0

    def add(self, result: Result) -> None:
        self.cost += result.cost
        self.input_tokens += result.usage.input_tokens
        self.output_tokens += result.usage.output_tokens

    def as_state(self) -> dict[str, Any]:
        return {
            "cost": str(self.cost),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
        }

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> Spend:
        return cls(
            Decimal(data.get("cost") or 0),
            int(data.get("input_tokens") or 0),
            int(data.get("output_tokens") or 0),
        )


@dataclass(slots=True)
class Item:
    entity_index: int
    entity: dict[str, Any]
    name: str | None
    # Results already recorded: model -> (record id, structured output).
    done: dict[str, tuple[str, dict[str, Any]]]
    fused: bool
    carry: Spend | None = None  # the classification's cost, for the first record


class Mismatch(Exception):
    def __init__(self, item: Item, reason: str, spend: Spend) -> None:
        super().__init__(reason)
        self.item = item
        self.reason = reason
        self.spend = spend


_JOB = select(
    _entity_jobs.c.schema_id,
    _entity_jobs.c.schema_version,
    _entity_jobs.c.models,
    _entity_jobs.c.strategy,
    _entity_jobs.c.arbitration_model,
    _entity_jobs.c.options,
).where(_entity_jobs.c.id == bindparam("job_id"))
_PENDING = (
    select(_items.c.entity_index, _items.c.entity_data)
    .where(_items.c.job_id == bindparam("job_id"), _items.c.status == "pending")
    .order_by(_items.c.entity_index)
)
_RECORDED = select(
    _records.c.id,
    _records.c.entity_index,
    _records.c.type,
    _records.c.model,
    _records.c.structured_output,
).where(_records.c.job_id == bindparam("job_id"))
_INSERT_RECORD = _records.insert()
_ADD_COST = (
    _entity_jobs.update()
    .where(_entity_jobs.c.id == bindparam("job_id"))
    .values(total_cost=_entity_jobs.c.total_cost + bindparam("cost"))
)
_FINISH_ITEM = (
    _items.update()
    .where(
        _items.c.job_id == bindparam("item_job_id"),
        _items.c.entity_index == bindparam("item_index"),
        _items.c.status == "pending",
    )
    .values(status=bindparam("status"), error=bindparam("error"), finished_at=bindparam("now"))
)
_COUNT = (
    _entity_jobs.update()
    .where(_entity_jobs.c.id == bindparam("job_id"))
    .values(
        completed_entities=_entity_jobs.c.completed_entities + bindparam("done"),
        failed_entities=_entity_jobs.c.failed_entities + bindparam("failed"),
    )
)


def _pending_and_recorded(connection: Connection, job_id: str) -> tuple[list[Any], list[Any]]:
    pending = list(connection.execute(_PENDING, {"job_id": job_id}))
    recorded = list(connection.execute(_RECORDED, {"job_id": job_id}))
    return pending, recorded


def _sub_schema(schema: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    sub: dict[str, Any] = {
        "type": "object",
        "properties": {name: properties[name] for name in names},
        "required": [name for name in names if name in required],
        "additionalProperties": False,
    }
    if "$defs" in schema:
        sub["$defs"] = schema["$defs"]
    return sub


def _error_text(error: BaseException) -> str:
    text = error.message if isinstance(error, OpenEnrichError) else "Internal error"
    return text[:_ERROR_LIMIT]


class Run:
    """One attempt at an enrichment job."""

    def __init__(self, ctx: JobContext, job: Any, schema: SavedSchema) -> None:
        assert ctx.parts is not None, "the worker gives jobs the process's parts"
        self.ctx = ctx
        self.gateway = ctx.parts.get(Gateway)
        self.schema = schema
        self.json_schema = schema.json_schema
        self.validator = Draft202012Validator(schema.json_schema)
        self.models: list[str] = list(job.models)
        self.strategy: str = job.strategy or "single_pass"
        self.arbiter: str | None = job.arbitration_model
        self.options: dict[str, Any] = dict(job.options or {})
        self.groups = (
            [ExpertiseGroup(name, tuple(names)) for name, names in schema.expertise_groups.items()]
            if self.strategy == "multi_expertise"
            else []
        )
        self.sub_schemas = {
            group.name: _sub_schema(schema.json_schema, group.properties) for group in self.groups
        }
        self.log = Log(ctx)
        self.window = int(ctx.settings.entities_job_concurrency)
        # Entities a `continue` let past their classification, with what it had cost.
        self.resumed = {
            int(entry["entity_index"]): Spend.from_state(entry.get("_spend") or {})
            for entry in ctx.state.get("resumed", [])
            if "entity_index" in entry
        }
        self.all_failed = True
        self.first_error: str | None = None

    # -- prompts --

    def _system(self) -> str:
        parts = [
            f"You research and fill in data about one {self.schema.entity_type}. Answer "
            "with JSON only, matching the schema given; use null for what you cannot find."
        ]
        if self.options.get("language"):
            parts.append(f"Write text values in the language '{self.options['language']}'.")
        if self.options.get("instructions"):
            parts.append(str(self.options["instructions"]))
        return "\n".join(parts)

    def _prompt(self, item: Item, group: ExpertiseGroup | None = None) -> str:
        lines = [
            f"Entity ({self.schema.entity_type}): {orjson.dumps(item.entity).decode()}",
            f"Schema: {self.schema.name}",
        ]
        if group is not None:
            lines.append(f"Expertise: {group.name}. Fill only: {', '.join(group.properties)}.")
            if group.instructions:
                lines.append(group.instructions)
        return "\n".join(lines)

    # -- the job --

    async def execute(self) -> None:
        pending, recorded = await self.ctx.database.read(
            functools.partial(_pending_and_recorded, job_id=self.ctx.job_id)
        )
        done: dict[int, dict[str, tuple[str, dict[str, Any]]]] = {}
        fused: set[int] = set()
        for row in recorded:
            if row.type == "fusion":
                fused.add(row.entity_index)
            else:
                done.setdefault(row.entity_index, {})[row.model] = (row.id, row.structured_output)
        items = [
            Item(
                row.entity_index,
                row.entity_data,
                entity_name(row.entity_data),
                done.get(row.entity_index, {}),
                row.entity_index in fused,
            )
            for row in pending
        ]
        if not pending:
            self.all_failed = False
        try:
            mismatch = await self._run(items)
            if mismatch is not None:
                await self._pause(mismatch)
            await self._finish()
        finally:
            await self.log.close()

    async def _run(self, items: list[Item]) -> Mismatch | None:
        slots = asyncio.Semaphore(self.window)
        mismatches: list[Mismatch] = []

        async def one(item: Item) -> None:
            try:
                await self._entity(item)
            except Mismatch as mismatch:
                mismatches.append(mismatch)
            finally:
                slots.release()

        try:
            async with asyncio.TaskGroup() as group:
                for item in items:
                    await slots.acquire()
                    if mismatches or self.log.stopped:
                        slots.release()
                        break
                    group.create_task(one(item))
        except ExceptionGroup as failed:
            raise failed.exceptions[0] from None
        if self.log.stopped:
            raise Stopped()
        return min(mismatches, key=lambda m: m.item.entity_index) if mismatches else None

    async def _pause(self, mismatch: Mismatch) -> None:
        item = mismatch.item
        paused = {
            "reason": "classification_mismatch",
            "entity_index": item.entity_index,
            "entity_type": self.schema.entity_type,
            "detail": mismatch.reason,
            "_spend": mismatch.spend.as_state(),  # the check's cost, for the entity's record
        }
        shown = {key: value for key, value in paused.items() if key != "_spend"}
        ctx = self.ctx
        async with self.log.lock, ctx.database.session() as session:
            await jobs.hold(session, ctx)
            events = [*self.log.take(), ("classification_mismatch", shown), ("paused", shown)]
            await ctx.emit_all(events, session)
            await ctx.save_state(session, paused=paused)
            await ctx.park(session, until=None)  # commits; ends this attempt

    async def _finish(self) -> None:
        error = None
        if self.all_failed:
            error = f"Every entity failed: {self.first_error or 'no model answered'}"
        async with self.log.lock, self.ctx.transaction() as session:
            await jobs.hold(session, self.ctx)
            events = self.log.take()
            if events:
                await self.ctx.emit_all(events, session)
            await jobs.finish(self.ctx, session, error=error)

    # -- one entity --

    async def _entity(self, item: Item) -> None:
        index = item.entity_index
        self.log.emit("entity_started", {"entity_index": index, "entity_name": item.name})
        if not item.done:
            if index in self.resumed:
                item.carry = self.resumed[index]
            elif not self.options.get("skip_classification"):
                item.carry = await self._classify(item)
        outputs = await asyncio.gather(*(self._model(item, model) for model in self.models))
        results = {
            model: output
            for model, output in zip(self.models, outputs, strict=True)
            if output is not None
        }
        failures = [m for m, output in zip(self.models, outputs, strict=True) if output is None]
        if not results:
            error = f"No model answered ({', '.join(failures)})"
            await self._end_entity(item, "failed", error, [])
            return
        self.all_failed = False
        fusion_events: list[tuple[str, dict[str, Any]]] = []
        fusion_row: dict[str, Any] | None = None
        if len(results) >= 2 and not item.fused:
            fusion_row, fusion_events = await self._fuse(item, results)
        await self._end_entity(
            item,
            "done",
            None,
            [record_id for record_id, _ in results.values()],
            fusion_row,
            fusion_events,
        )

    async def _classify(self, item: Item) -> Spend:
        spend = Spend()
        prompt = (
            f"Entity type check: is this entity a {self.schema.entity_type}?\n"
            f"Entity: {orjson.dumps(item.entity).decode()}\n"
            "Answer matches=true when it is, false when it clearly is something else."
        )
        try:
            result = await self.gateway.complete(
                self.ctx.tenant,
                self.models[0],
                prompt,
                output_schema=CLASSIFICATION_SCHEMA,
                job_id=self.ctx.job_id,
            )
        except OpenEnrichError as error:
            # A check that cannot be made does not hold the entity back.
            logger.warning("classification of entity %s failed: %s", item.entity_index, error)
            return spend
        spend.add(result)
        if not result.value.get("matches", True):
            raise Mismatch(item, str(result.value.get("reason") or ""), spend)
        return spend

    async def _call(self, item: Item, model: str) -> tuple[dict[str, Any], Usage, Decimal]:
        tenant, job_id, system = self.ctx.tenant, self.ctx.job_id, self._system()
        if self.strategy != "multi_expertise" or not self.groups:
            result = await self.gateway.complete(
                tenant,
                model,
                self._prompt(item),
                output_schema=self.json_schema,
                system=system,
                job_id=job_id,
            )
            return dict(result.value), result.usage, result.cost

        async def part(group: ExpertiseGroup) -> Result:
            result = await self.gateway.complete(
                tenant,
                model,
                self._prompt(item, group),
                output_schema=self.sub_schemas[group.name],
                system=system,
                job_id=job_id,
            )
            self.log.emit(
                "expertise_completed",
                {
                    "entity_index": item.entity_index,
                    "model": model,
                    "expertise": group.name,
                    "result": result.value,
                },
            )
            return result

        parts = await asyncio.gather(*(part(group) for group in self.groups))
        merged: dict[str, Any] = {}
        usage, cost = Usage(), Decimal(0)
        for result in parts:
            merged.update(result.value)
            usage += result.usage
            cost += result.cost
        problems = [error.message for error in self.validator.iter_errors(merged)]
        if problems:
            raise BadRequest(f"The merged answer does not match the schema: {problems[0]}")
        return merged, usage, cost

    async def _model(self, item: Item, model: str) -> tuple[str, dict[str, Any]] | None:
        """The model's (record id, output) for the entity: recorded before, or made now;
        None when it failed."""
        if model in item.done:
            return item.done[model]
        index = item.entity_index
        self.log.emit("model_started", {"entity_index": index, "model": model})
        started = utcnow()
        clock = time.perf_counter()
        try:
            output, usage, cost = await self._call(item, model)
        except OpenEnrichError as error:
            message = _error_text(error)
            self.first_error = self.first_error or message
            await self.log.commit(
                _events(
                    [("model_failed", {"entity_index": index, "model": model, "error": message})]
                )
            )
            return None
        duration = int((time.perf_counter() - clock) * 1000)
        record_id = new_uuid()

        async def store(session: AsyncSession) -> list[tuple[str, dict[str, Any]]]:
            spend = Spend(cost, usage.input_tokens, usage.output_tokens)
            if item.carry is not None:  # the classification's cost, once per entity
                spend.cost += item.carry.cost
                spend.input_tokens += item.carry.input_tokens
                spend.output_tokens += item.carry.output_tokens
            await self._insert(
                session,
                record_id,
                item,
                "enrichment",
                model,
                [model],
                None,
                output,
                None,
                spend,
                started,
                duration,
            )
            item.carry = None
            return [
                (
                    "model_completed",
                    {
                        "entity_index": index,
                        "model": model,
                        "record_id": record_id,
                        "result": output,
                        "cost": float(spend.cost),
                    },
                )
            ]

        await self.log.commit(store)
        item.done[model] = (record_id, output)
        return record_id, output

    async def _fuse(
        self, item: Item, results: dict[str, tuple[str, dict[str, Any]]]
    ) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
        index = item.entity_index
        models = list(results)
        self.log.emit("fusion_started", {"entity_index": index, "models": models})
        started = utcnow()
        clock = time.perf_counter()
        fusion = fusion_of({m: output for m, (_, output) in results.items()}, self.json_schema)
        disputed = list(fusion.disputed)
        spend = Spend()
        arbiter = None
        chosen: dict[str, Any] | None = None
        failure: str | None = None
        if disputed and self.arbiter is not None:
            arbiter = self.arbiter
            try:
                chosen, result = await arbitrate(
                    self.gateway,
                    self.ctx.tenant,
                    self.arbiter,
                    item.entity,
                    fusion.disputed,
                    self.json_schema,
                    self.ctx.job_id,
                )
            except OpenEnrichError as error:
                failure = _error_text(error)  # plurality decides those fields
            else:
                spend.add(result)
        fused = fusion.settle(chosen)
        if failure is not None:
            for name in disputed:
                fused.account[name]["arbitration_error"] = failure
        record_id = new_uuid()
        row = {
            "record_id": record_id,
            "models": models,
            "arbiter": arbiter,
            "value": fused.value,
            "fields": fused.account,
            "spend": spend,
            "started": started,
            "duration": int((time.perf_counter() - clock) * 1000),
        }
        events = [
            (
                "fusion_completed",
                {
                    "entity_index": index,
                    "record_id": record_id,
                    "result": fused.value,
                    "disputed": disputed,
                    "valid": fused.valid,
                    "arbitration_model": arbiter,
                    "cost": float(spend.cost),
                },
            )
        ]
        return row, events

    async def _end_entity(
        self,
        item: Item,
        status: str,
        error: str | None,
        record_ids: list[str],
        fusion: dict[str, Any] | None = None,
        fusion_events: Sequence[tuple[str, dict[str, Any]]] = (),
    ) -> None:
        index = item.entity_index

        async def store(session: AsyncSession) -> list[tuple[str, dict[str, Any]]]:
            if fusion is not None:
                await self._insert(
                    session,
                    fusion["record_id"],
                    item,
                    "fusion",
                    "fusion",
                    fusion["models"],
                    fusion["arbiter"],
                    fusion["value"],
                    fusion["fields"],
                    fusion["spend"],
                    fusion["started"],
                    fusion["duration"],
                )
            await session.execute(
                _FINISH_ITEM,
                {
                    "item_job_id": self.ctx.job_id,
                    "item_index": index,
                    "status": status,
                    "error": error,
                    "now": utcnow(),
                },
            )
            await session.execute(
                _COUNT,
                {
                    "job_id": self.ctx.job_id,
                    "done": int(status == "done"),
                    "failed": int(status == "failed"),
                },
            )
            data: dict[str, Any] = {
                "entity_index": index,
                "status": "completed" if status == "done" else "failed",
                "record_ids": record_ids,
            }
            if fusion is not None:
                data["fusion_record_id"] = fusion["record_id"]
            if error is not None:
                data["error"] = error
            return [*fusion_events, ("entity_completed", data)]

        await self.log.commit(store)

    async def _insert(
        self,
        session: AsyncSession,
        record_id: str,
        item: Item,
        type: str,
        model: str,
        models: list[str],
        arbiter: str | None,
        output: dict[str, Any],
        fusion: dict[str, Any] | None,
        spend: Spend,
        started: datetime,
        duration: int,
    ) -> None:
        now = utcnow()
        await session.execute(
            _INSERT_RECORD,
            {
                "id": record_id,
                "org_id": self.ctx.tenant.org_id,
                "environment": self.ctx.tenant.environment.value,
                "type": type,
                "job_id": self.ctx.job_id,
                "entity_index": item.entity_index,
                "entity_data": item.entity,
                "entity_name": item.name,
                "schema_id": self.schema.id,
                "schema_version": self.schema.version,
                "model": model,
                "models": models,
                "arbitration_model": arbiter,
                "strategy": self.strategy,
                "structured_output": output,
                "fusion": fusion,
                "input_tokens": spend.input_tokens,
                "output_tokens": spend.output_tokens,
                "cost": spend.cost,
                "started_at": started,
                "completed_at": now,
                "duration_ms": duration,
                "created_at": now,
            },
        )
        if spend.cost:
            await session.execute(_ADD_COST, {"job_id": self.ctx.job_id, "cost": spend.cost})


def _events(
    events: list[tuple[str, dict[str, Any]]],
) -> Callable[[AsyncSession], Awaitable[list[tuple[str, dict[str, Any]]]]]:
    async def work(_session: AsyncSession) -> list[tuple[str, dict[str, Any]]]:
        return events

    return work


async def execute(ctx: JobContext) -> None:
    """The handler of `entities.enrichment`."""
    async with ctx.transaction() as session:
        await jobs.hold(session, ctx)
        job = (await session.execute(_JOB, {"job_id": ctx.job_id})).one()
        schema = await schema_store.load(session, ctx.tenant, job.schema_id, job.schema_version)
    await Run(ctx, job, schema).execute()


def spec() -> JobSpec:
    return jobs.spec(KIND, execute)

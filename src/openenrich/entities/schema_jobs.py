"""The schema jobs, followed on /api/llm/stream/{job_id}: a schema generated from sample
entities (`schema_generation`), and a saved schema edited after an instruction
(`schema_edit`).

`start_generation` and `start_edit` check all they can before a job exists (the samples
or the instruction, the schema, the model and its provider's key: the 400s and 404s), and
add the job in the caller's transaction. The handlers make the model call and save, in
the transaction that ends the job.

Events, besides `error` and the final `completed` (see `entities.jobs`):

- generation: `schema_inferred` {json_schema, samples}; without a model
  `refinement_skipped` {message}; with one `model_started` {model}, then
  `schema_refined` {model, json_schema, notes, cost, input_tokens, output_tokens}, or
  `refinement_discarded` (the same with `message`, without `json_schema`) when the
  model's additions could not be kept and the inferred schema is the result; with `save`,
  `schema_saved` {schema_id, version, name, entity_type}. `completed` carries the final
  `json_schema`, `refined`, `model`, and when saved `schema_id` and `schema_version`.
- edit: `model_started` {model, schema_id, schema_version}; then `schema_updated`
  {schema_id, version, json_schema, expertise_groups, cost, …}, or `schema_unchanged`
  when the model gave back the schema as it was (no version added). An edited schema
  that breaks the rules ends the job with `error` naming the problems, and nothing saved.

Cost: each model call's cost is added to the job's `total_cost` in the transaction that
ends the job, so `completed.total_cost` is what the job's calls cost. A call that failed
outright (the provider kept failing) reports no cost and adds none.

A job whose worker died runs again from the top: the inference is not announced twice
(`state.inferred`), and the model is asked again, since nothing of its answer was saved.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.ext.asyncio import AsyncSession

from openenrich.config import Settings
from openenrich.db import table
from openenrich.entities import generation, jobs, schema_store
from openenrich.entities.generation import InvalidEditedSchema
from openenrich.entities.models import EntityJob
from openenrich.entities.schema_bodies import GenerateBody, PromptBody, SchemaBody, SchemaChanges
from openenrich.errors import BadRequest, Conflict, NotFound, OpenEnrichError
from openenrich.ids import new_uuid
from openenrich.jobs.notify import JobHub
from openenrich.jobs.worker import JobContext, JobSpec
from openenrich.llm.gateway import Gateway, Result
from openenrich.tenancy.tenant import Tenant

GENERATION = "schema_generation"
EDIT = "schema_edit"

NO_MODEL = (
    "No model was given and OPENENRICH_ENTITIES_DEFAULT_MODEL is not set: the inferred "
    "schema is the result"
)

_entity_jobs = table(EntityJob)
_ADD_COST = (
    _entity_jobs.update()
    .where(_entity_jobs.c.id == bindparam("job_id"))
    .values(total_cost=_entity_jobs.c.total_cost + bindparam("cost"))
)


def _model(settings: Settings, given: str | None) -> str | None:
    return given if given is not None else settings.entities_default_model


# -- starting ------------------------------------------------------------------------------


async def start_generation(
    session: AsyncSession,
    hub: JobHub,
    gateway: Gateway,
    tenant: Tenant,
    body: GenerateBody,
) -> str:
    """A generation job, added in `session`'s transaction; its id."""
    samples = generation.check_samples(body.samples)
    generation.infer(samples)  # samples whose schema could not be saved: a 400 now
    saved: dict[str, Any] = {"save": body.save}
    if body.save:
        if body.name is None or body.entity_type is None:
            raise BadRequest("name and entity_type are required to save the schema (save: true)")
        name, kind, description = schema_store.identity(
            body.name, body.entity_type, body.description
        )
        saved |= {"name": name, "entity_type": kind, "description": description}
    model = _model(gateway.settings, body.model)
    key = None if model is None else (await gateway.ready(tenant, model)).key
    job_id = new_uuid()
    await jobs.create(
        session,
        hub,
        tenant,
        job_id=job_id,
        kind=GENERATION,
        models=[key] if key is not None else [],
        options={"samples": samples, **saved},
    )
    return job_id


async def start_edit(
    session: AsyncSession,
    hub: JobHub,
    gateway: Gateway,
    tenant: Tenant,
    schema_id: str,
    body: PromptBody,
) -> str:
    """An AI-edit job of the schema's current version, added in `session`'s transaction;
    its id."""
    instruction = generation.check_instruction(body.instruction)
    current = await schema_store.load(session, tenant, schema_id)
    model = _model(gateway.settings, body.model)
    if model is None:
        raise BadRequest(
            "model is required (a provider::model key): no OPENENRICH_ENTITIES_DEFAULT_MODEL is set"
        )
    key = (await gateway.ready(tenant, model)).key
    job_id = new_uuid()
    await jobs.create(
        session,
        hub,
        tenant,
        job_id=job_id,
        kind=EDIT,
        schema_id=current.id,
        schema_version=current.version,
        models=[key],
        options={"instruction": instruction},
    )
    return job_id


# -- running -------------------------------------------------------------------------------


async def _job(session: AsyncSession, ctx: JobContext) -> EntityJob:
    row = await session.get(EntityJob, ctx.job_id)
    assert row is not None  # it goes with the job row, which the worker holds
    return row


async def _add_cost(session: AsyncSession, job_id: str, cost: Decimal) -> None:
    if cost:
        await session.execute(_ADD_COST, {"job_id": job_id, "cost": cost})


def _call(result: Result) -> dict[str, Any]:
    """What a model call's event says of it."""
    return {
        "model": result.model,
        "cost": float(result.cost),
        "input_tokens": result.usage.input_tokens,
        "output_tokens": result.usage.output_tokens,
    }


async def _fail(ctx: JobContext, message: str, cost: Decimal = Decimal(0)) -> None:
    """End the job failed (`error`, then `completed`), the calls' cost counted."""
    async with ctx.transaction() as session:
        await jobs.hold(session, ctx)
        await _add_cost(session, ctx.job_id, cost)
        await jobs.finish(ctx, session, error=message)


def _gateway(ctx: JobContext) -> Gateway:
    assert ctx.parts is not None
    return ctx.parts.get(Gateway)


async def generate(ctx: JobContext) -> None:
    async with ctx.transaction() as session:
        await jobs.hold(session, ctx)
        job = await _job(session, ctx)
        options = dict(job.options)
        samples: list[dict[str, Any]] = options["samples"]
        model = job.models[0] if job.models else None
        inferred = generation.infer(samples)
        events: list[tuple[str, dict[str, Any]]] = []
        if not ctx.state.get("inferred"):
            events.append(("schema_inferred", {"json_schema": inferred, "samples": len(samples)}))
            await ctx.save_state(session, inferred=True)
        if model is None:
            events.append(("refinement_skipped", {"message": NO_MODEL}))
            await ctx.emit_all(events, session)
            await _end_generation(ctx, session, options, inferred, refined=False, model=None)
            return
        events.append(("model_started", {"model": model}))
        await ctx.emit_all(events, session)
    try:
        refinement = await generation.refine(
            _gateway(ctx), ctx.tenant, model, inferred, samples, job_id=ctx.job_id
        )
    except OpenEnrichError as error:
        await _fail(ctx, f"{model}: {error.message}")
        return
    call = _call(refinement.result)
    cost = refinement.result.cost
    try:
        async with ctx.transaction() as session:
            await jobs.hold(session, ctx)
            await _add_cost(session, ctx.job_id, cost)
            if refinement.refined:
                await ctx.emit(
                    "schema_refined",
                    {**call, "json_schema": refinement.json_schema, "notes": refinement.notes},
                    session,
                )
            else:
                message = "The model's additions were not kept: the inferred schema is the result"
                await ctx.emit(
                    "refinement_discarded",
                    {**call, "message": message, "notes": refinement.notes},
                    session,
                )
            await _end_generation(
                ctx,
                session,
                options,
                refinement.json_schema,
                refined=refinement.refined,
                model=model,
            )
    except OpenEnrichError as error:  # the schema could not be saved
        await _fail(ctx, error.message, cost)


async def _end_generation(
    ctx: JobContext,
    session: AsyncSession,
    options: dict[str, Any],
    json_schema: dict[str, Any],
    *,
    refined: bool,
    model: str | None,
) -> None:
    """Save the schema when asked, then `completed` with it."""
    extra: dict[str, Any] = {"json_schema": json_schema, "refined": refined, "model": model}
    if options.get("save"):
        body = SchemaBody(
            name=options["name"],
            entity_type=options["entity_type"],
            description=options.get("description"),
            json_schema=json_schema,
        )
        saved = await schema_store.create(session, ctx.tenant, body)
        await ctx.emit(
            "schema_saved",
            {
                "schema_id": saved.id,
                "version": saved.version,
                "name": saved.name,
                "entity_type": saved.entity_type,
            },
            session,
        )
        extra |= {"schema_id": saved.id, "schema_version": saved.version}
    await jobs.finish(ctx, session, extra=extra)


async def edit(ctx: JobContext) -> None:
    async with ctx.transaction() as session:
        await jobs.hold(session, ctx)
        job = await _job(session, ctx)
        model = job.models[0]
        instruction: str = job.options["instruction"]
        assert job.schema_id is not None
        assert job.schema_version is not None
        try:
            current = await schema_store.load(
                session, ctx.tenant, job.schema_id, job.schema_version
            )
        except NotFound as error:  # deleted since the job was asked for
            await jobs.finish(ctx, session, error=error.message)
            return
        await ctx.emit(
            "model_started",
            {"model": model, "schema_id": current.id, "schema_version": current.version},
            session,
        )
    try:
        edited, result = await generation.edit(
            _gateway(ctx), ctx.tenant, model, current.json_schema, instruction, ctx.job_id
        )
    except InvalidEditedSchema as error:
        await _fail(ctx, error.message, error.result.cost)
        return
    except OpenEnrichError as error:
        await _fail(ctx, f"{model}: {error.message}")
        return
    try:
        async with ctx.transaction() as session:
            await jobs.hold(session, ctx)
            await _add_cost(session, ctx.job_id, result.cost)
            saved = await schema_store.update_schema(
                session,
                ctx.tenant,
                current.id,
                SchemaChanges(json_schema=edited),
                change="ai_edit",
                note=instruction,
                expected_version=current.version,
            )
            event = {
                **_call(result),
                "schema_id": saved.id,
                "version": saved.version,
                "json_schema": saved.json_schema,
                "expertise_groups": saved.expertise_groups,
            }
            if saved.version == current.version:
                message = "The model gave back the schema as it was: no version was added"
                await ctx.emit("schema_unchanged", {**event, "message": message}, session)
            else:
                await ctx.emit("schema_updated", event, session)
            extra = {
                "schema_id": saved.id,
                "schema_version": saved.version,
                "json_schema": saved.json_schema,
            }
            await jobs.finish(ctx, session, extra=extra)
    except (Conflict, NotFound) as error:  # the schema moved, or went, meanwhile
        await _fail(ctx, error.message, result.cost)


def generation_spec() -> JobSpec:
    return jobs.spec(GENERATION, generate)


def edit_spec() -> JobSpec:
    return jobs.spec(EDIT, edit)

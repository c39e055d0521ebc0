"""A process's long-lived parts and its jobs runtime, started from the components' list for
both places that run them: `openenrich serve` (the HTTP API, with workers inside by
default) and `openenrich worker` (workers alone, for scale-out)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from openenrich.components import COMPONENTS
from openenrich.db import Database
from openenrich.enrichers import registry
from openenrich.enrichers.registry import EnricherEnv
from openenrich.http.state import AppState
from openenrich.jobs.runtime import JobsRuntime


def jobs_runtime(state: AppState) -> JobsRuntime:
    """The runtime with every component's job kinds, housekeeping and services; its job
    handlers reach the process's parts through `ctx.parts` (this `state`)."""
    return JobsRuntime(
        state.settings,
        state.database,
        [spec for component in COMPONENTS for spec in component.jobs],
        housekeeping=[chore for component in COMPONENTS for chore in component.housekeeping],
        services=[factory for component in COMPONENTS for factory in component.services],
        parts=state,
    )


@asynccontextmanager
async def started(state: AppState, *, api: bool, run_workers: bool) -> AsyncIterator[JobsRuntime]:
    """The database, every component's lifespan (and, with `api`, its API lifespan), then
    the jobs runtime; all taken down in reverse on the way out."""
    database = state.add(Database.from_settings(state.settings))
    async with AsyncExitStack() as stack:
        stack.push_async_callback(database.dispose)
        for component in COMPONENTS:
            for lifespan in (component.lifespan, component.api_lifespan if api else None):
                if lifespan is not None:
                    await stack.enter_async_context(lifespan(state))
        jobs = state.add(jobs_runtime(state))
        await jobs.start(run_workers=run_workers, beside_api=api)
        stack.push_async_callback(jobs.stop)
        yield jobs


async def warm_up(state: AppState) -> None:
    """Build now what the first stream flush would build lazily (see `freeze_startup_objects`
    and `enrichers.registry.warm_up`)."""
    await asyncio.to_thread(registry.warm_up, state.get(EnricherEnv))


# Container allocations (net of frees) between young-generation collections; Python's
# default is 700.
YOUNG_COLLECTION_THRESHOLD = 10_000


def freeze_startup_objects() -> None:
    """What exists after startup (modules, routes, models, engines) lives as long as the
    process: take it out of the collector's reach, so a full collection scans only what
    requests and jobs create. Measured: a full collection over the ~144k objects of a
    started server stalled the event loop for 77 ms.

    Young collections are made rarer too. A busy server keeps thousands of objects in
    flight (a coroutine, its frames, futures and buffers per request or LLM call), and
    every young collection scans all of them and promotes them, only for them to die
    moments later. With the default threshold, 2,000 LLM calls at concurrency 64 ran
    ~120 young and ~11 middle collections: 60-80 ms of stalled loop, 2% of the run
    (bench/llm_gateway.py); with this one, two collections and 3 ms. Garbage that only
    the collector can free (reference cycles) waits a little longer, bounded by the
    threshold."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, old)

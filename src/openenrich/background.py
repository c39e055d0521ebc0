"""The jobs runtime with every surface's job kinds, housekeeping and services (such as the
webhook dispatcher), assembled once for both places that run them: `openenrich serve`
(workers inside the API process, the default) and `openenrich worker` (workers alone, for
scale-out)."""

from __future__ import annotations

import gc

from openenrich.config import Settings
from openenrich.db import Database
from openenrich.jobs.runtime import JobsRuntime
from openenrich.surfaces import SURFACES


def jobs_runtime(settings: Settings, database: Database) -> JobsRuntime:
    return JobsRuntime(
        settings,
        database,
        [spec for surface in SURFACES for spec in surface.jobs],
        housekeeping=[chore for surface in SURFACES for chore in surface.housekeeping],
        services=[factory for surface in SURFACES for factory in surface.services],
    )


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

"""What one package adds to the server, declared in one place: its `Component`.

Each package that serves HTTP, keeps tables, runs jobs or holds a long-lived part declares
a `Component` in its `component.py` (or, below this module's layer, in `components.py`),
and `components.COMPONENTS` lists them. From that one list the app includes the routers
and enters the lifespans (`app.py`), the jobs runtime learns the job kinds, housekeeping
and services (`background.py`, for `serve` and `worker` alike), and Alembic sees every
table (`components.metadata`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import ModuleType

from fastapi import APIRouter

from openenrich.http.state import AppState
from openenrich.jobs.runtime import Housekeeping, ServiceFactory
from openenrich.jobs.worker import JobSpec

# Builds long-lived parts, adds them to the process's state (`state.add(part)`), and takes
# them down after its yield. Routes find them with `app_state(request).get(T)`, job
# handlers with `ctx.parts.get(T)`.
Lifespan = Callable[[AppState], AbstractAsyncContextManager[None]]


@dataclass(frozen=True, kw_only=True)
class Component:
    name: str
    routers: Sequence[APIRouter] = ()
    # The module that defines its tables: importing it registers them on Base.metadata.
    # Its migrations are in db/migrations like everyone's (one history, one head).
    models: ModuleType | None = None
    # Lifespans are entered in the list's order and left in reverse. `lifespan` runs in
    # every process (`serve` and `worker`): what both its routes and its job handlers use;
    # `api_lifespan` only where the HTTP API is served.
    lifespan: Lifespan | None = None
    api_lifespan: Lifespan | None = None
    # In every process that runs workers (`serve` by default, and `worker`):
    jobs: Sequence[JobSpec] = ()
    housekeeping: Sequence[Housekeeping] = ()
    services: Sequence[ServiceFactory] = ()

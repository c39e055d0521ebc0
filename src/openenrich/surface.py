"""What one package adds to the server, declared in one place: the `Surface`.

Each package that serves HTTP, keeps tables or runs jobs declares a `Surface` in its
`surface.py`, and `surfaces.py` lists them. From that list the app includes the routers
and enters the lifespans (`app.py`), the jobs runtime learns the job kinds, housekeeping
and services (`background.py`, for `serve` and `worker` alike), and Alembic sees every
table (`surfaces.metadata`).
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

# Runs in the API process around its life: builds what the package's routes need, adds it
# to the app's state, and takes it down after the yield.
Lifespan = Callable[[AppState], AbstractAsyncContextManager[None]]


@dataclass(frozen=True, kw_only=True)
class Surface:
    name: str
    routers: Sequence[APIRouter] = ()
    # The module that defines its tables: importing it registers them on Base.metadata.
    # Its migrations are in db/migrations like everyone's (one history, one head).
    models: ModuleType | None = None
    # In the API process only, entered in the list's order and left in reverse.
    lifespan: Lifespan | None = None
    # In every process that runs workers (`serve` by default, and `worker`):
    jobs: Sequence[JobSpec] = ()
    housekeeping: Sequence[Housekeeping] = ()
    services: Sequence[ServiceFactory] = ()

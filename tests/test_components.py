"""The list in components.py is the one place a package is added to the server: every
package's tables, routes and job kinds are reached from it, and the app and the workers
are assembled from it alone."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute

import openenrich
from openenrich import background
from openenrich.app import create_app
from openenrich.background import jobs_runtime
from openenrich.components import COMPONENTS
from openenrich.config import Settings
from openenrich.db import Database
from openenrich.email.pool import SmtpPool
from openenrich.http.state import AppState
from openenrich.llm.gateway import Gateway
from openenrich.streams.runtime import Streams
from openenrich.tenancy.ratelimit import RateLimiter
from openenrich.web.fetch import Fetcher

SOURCE = Path(openenrich.__file__).parent


def modules_named(name: str) -> list[str]:
    """Modules called `name`, or `…_name` (`leads/pipeline_routes.py` is a routes module)."""
    return sorted(
        module.name
        for module in pkgutil.walk_packages([str(SOURCE)], prefix="openenrich.")
        if (last := module.name.rsplit(".", 1)[-1]) == name or last.endswith(f"_{name}")
    )


def test_every_models_module_belongs_to_a_component() -> None:
    declared = sorted(c.models.__name__ for c in COMPONENTS if c.models is not None)
    assert declared == modules_named("models")


def test_every_router_belongs_to_a_component() -> None:
    declared = {id(router) for c in COMPONENTS for router in c.routers}
    found = [
        (name, router)
        for name in [*modules_named("routes"), "openenrich.http.system"]
        if isinstance(router := getattr(importlib.import_module(name), "router", None), APIRouter)
    ]
    assert len(found) >= 6, "the walk found the routers"
    assert [name for name, router in found if id(router) not in declared] == []


def test_the_app_serves_exactly_the_components_routes(settings: Settings) -> None:
    declared = {
        (route.path, method.lower())
        for c in COMPONENTS
        for router in c.routers
        for route in router.routes
        if isinstance(route, APIRoute) and route.include_in_schema
        for method in route.methods
    }
    served = {
        (path, method)
        for path, operations in create_app(settings).openapi()["paths"].items()
        for method in operations
    }
    assert len(served) > 40, "the walk found the routes"
    assert served == declared


def test_the_workers_run_every_components_job_kinds(settings: Settings) -> None:
    kinds = [spec.kind for c in COMPONENTS for spec in c.jobs]
    assert len(kinds) == len(set(kinds)), "a job kind is declared twice"
    state = AppState(settings)
    state.add(Database.from_settings(settings))
    runtime = jobs_runtime(state)
    assert sorted(runtime.specs) == sorted(kinds)
    assert len(runtime.service_factories) == sum(len(c.services) for c in COMPONENTS)
    assert len(runtime.housekeeping) == sum(len(c.housekeeping) for c in COMPONENTS)


@pytest.mark.anyio
async def test_a_worker_process_holds_the_shared_parts_but_not_the_apis(
    settings: Settings,
) -> None:
    """`openenrich worker` enters every component's lifespan but no API lifespan: its job
    handlers find the gateway, the fetcher and the SMTP pool through `ctx.parts`,
    and it starts no lake engine of its own."""
    state = AppState(settings)
    async with background.started(state, api=False, run_workers=True) as runtime:
        assert runtime.parts is state
        assert isinstance(state.get(Gateway), Gateway)
        assert isinstance(state.get(Fetcher), Fetcher)
        assert isinstance(state.get(SmtpPool), SmtpPool)
        for api_only in (Streams, RateLimiter):
            with pytest.raises(LookupError):
                state.get(api_only)

"""The list in surfaces.py is the one place a package is added to the server: every
package's tables, routes and job kinds are reached from it, and the app and the workers
are assembled from it alone."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from fastapi import APIRouter
from fastapi.routing import APIRoute

import openenrich
from openenrich.app import create_app
from openenrich.background import jobs_runtime
from openenrich.config import Settings
from openenrich.db import Database
from openenrich.surfaces import SURFACES

SOURCE = Path(openenrich.__file__).parent


def modules_named(name: str) -> list[str]:
    return sorted(
        module.name
        for module in pkgutil.walk_packages([str(SOURCE)], prefix="openenrich.")
        if module.name.rsplit(".", 1)[-1] == name
    )


def test_every_models_module_belongs_to_a_surface() -> None:
    declared = sorted(s.models.__name__ for s in SURFACES if s.models is not None)
    assert declared == modules_named("models")


def test_every_router_belongs_to_a_surface() -> None:
    declared = {id(router) for s in SURFACES for router in s.routers}
    found = [
        (name, router)
        for name in [*modules_named("routes"), "openenrich.http.system"]
        if isinstance(router := getattr(importlib.import_module(name), "router", None), APIRouter)
    ]
    assert len(found) >= 6, "the walk found the routers"
    assert [name for name, router in found if id(router) not in declared] == []


def test_the_app_serves_exactly_the_surfaces_routes(settings: Settings) -> None:
    declared = {
        (route.path, method.lower())
        for s in SURFACES
        for router in s.routers
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


def test_the_workers_run_every_surfaces_job_kinds(settings: Settings) -> None:
    kinds = [spec.kind for s in SURFACES for spec in s.jobs]
    assert len(kinds) == len(set(kinds)), "a job kind is declared twice"
    runtime = jobs_runtime(settings, Database.from_settings(settings))
    assert sorted(runtime.specs) == sorted(kinds)
    assert len(runtime.service_factories) == sum(len(s.services) for s in SURFACES)
    assert len(runtime.housekeeping) == sum(len(s.housekeeping) for s in SURFACES)

"""Fixtures shared by the whole suite.

Every test that asks for `database_url` (directly or through `settings`, `server`, …) runs
once on SQLite and, when OPENENRICH_TEST_DATABASE_URL names a PostgreSQL server, once more
on PostgreSQL, each time on a freshly migrated database of its own.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from helpers.server import LiveServer
from helpers.tenants import Tenants
from openenrich.app import create_app
from openenrich.config import Settings
from openenrich.db import migrate

POSTGRES_URL = os.environ.get("OPENENRICH_TEST_DATABASE_URL")
BACKENDS = ["sqlite", *(["postgresql"] if POSTGRES_URL else [])]


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("CI") and not POSTGRES_URL:
        raise pytest.UsageError(
            "CI must run the suite on PostgreSQL too: set OPENENRICH_TEST_DATABASE_URL"
        )


def pytest_report_header() -> str:
    return f"openenrich database backends: {', '.join(BACKENDS)}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "openenrich.db"
    migrate.upgrade(make_url(f"sqlite:///{path}"))
    return path


def _postgres_admin() -> psycopg.Connection[tuple[object, ...]]:
    assert POSTGRES_URL is not None
    url = make_url(POSTGRES_URL).set(drivername="postgresql")
    return psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)


@contextlib.contextmanager
def _postgres_database(template: str | None) -> Iterator[str]:
    """A new PostgreSQL database (a clone of `template`, or empty), dropped afterwards."""
    name = f"oe_test_{uuid.uuid4().hex[:16]}"
    with _postgres_admin() as admin:
        admin.execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
    assert POSTGRES_URL is not None
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with _postgres_admin() as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A migrated database that each PostgreSQL test clones (CREATE DATABASE … TEMPLATE)."""
    name = f"oe_template_{os.getpid()}"
    with _postgres_admin() as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {name}")
    assert POSTGRES_URL is not None
    migrate.upgrade(make_url(POSTGRES_URL).set(drivername="postgresql+psycopg", database=name))
    yield name
    with _postgres_admin() as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "data" / "openenrich.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    with _postgres_database(template=request.getfixturevalue("postgres_template")) as url:
        yield url


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with nothing in it, not even the schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty' / 'openenrich.db'}"
        return
    with _postgres_database(template=None) as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url)


@pytest.fixture
def tenants(settings: Settings) -> Tenants:
    return Tenants(settings)


@pytest.fixture
def server(settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(create_app(settings)) as live:
        yield live


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http

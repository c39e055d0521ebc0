"""Bring a database to the newest schema (Alembic `upgrade head`)."""

from __future__ import annotations

import fcntl
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, Connection

from openenrich.db.engine import install_sqlite_pragmas

MIGRATIONS = Path(__file__).parent / "migrations"
# Any fixed number: every process that migrates the same PostgreSQL database takes it.
_PG_MIGRATION_LOCK = 7_221_990_417


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(url: URL, revision: str = "head") -> None:
    """Migrate `url` to `revision`; safe when several processes start at once (PostgreSQL
    serialises them with an advisory lock, SQLite with a lock file next to the database)."""
    if url.get_backend_name() == "sqlite" and url.database:
        path = Path(url.database)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_name(path.name + ".migrate-lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            _upgrade(url, revision)
        return
    _upgrade(url, revision)


def _upgrade(url: URL, revision: str) -> None:
    engine = create_engine(url)
    if url.get_backend_name() == "sqlite":
        install_sqlite_pragmas(engine, "FULL")
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
                connection.commit()
            try:
                command.upgrade(alembic_config(connection), revision)
                connection.commit()
            finally:
                if connection.dialect.name == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK}
                    )
                    connection.commit()
    finally:
        engine.dispose()


def current_revision(url: URL) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()

"""Migrations and models agree, on SQLite and on PostgreSQL."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from openenrich.components import metadata
from openenrich.config import Settings
from openenrich.db import migrate


def test_migrated_schema_matches_the_models(settings: Settings) -> None:
    engine = create_engine(settings.sync_database)
    try:
        with engine.connect() as connection:
            differences = compare_metadata(
                MigrationContext.configure(connection, opts={"compare_type": True}), metadata()
            )
    finally:
        engine.dispose()
    assert differences == [], "a model changed without a migration: alembic revision --autogenerate"


def test_downgrade_to_base_and_upgrade_again(settings: Settings) -> None:
    url = settings.sync_database
    assert migrate.current_revision(url) == migrate.head_revision()
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            command.downgrade(migrate.alembic_config(connection), "base")
            connection.commit()
            assert set(inspect(connection).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    migrate.upgrade(url)
    migrate.upgrade(url)  # a second upgrade is a no-op
    assert migrate.current_revision(url) == migrate.head_revision()

"""Alembic environment: migrates the connection `openenrich.db.migrate` hands over, or, when
run from the `alembic` command line, the database the settings name."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

from openenrich.components import metadata
from openenrich.config import Settings


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata(),
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


given = context.config.attributes.get("connection")
if given is not None:
    run(given)
else:
    engine = create_engine(Settings().sync_database)
    with engine.connect() as connection:
        run(connection)
        connection.commit()
    engine.dispose()

"""jobs.events_purged, and an index of the finished jobs whose events are still kept (the
job-events retention purge reads only those)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_EVENTS_KEPT = sa.text("finished_at IS NOT NULL AND NOT events_purged")


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column("events_purged", sa.Boolean(), server_default="0", nullable=False)
        )
    op.create_index(
        "ix_jobs_events_kept",
        "jobs",
        ["finished_at"],
        sqlite_where=_EVENTS_KEPT,
        postgresql_where=_EVENTS_KEPT,
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_events_kept", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("events_purged")

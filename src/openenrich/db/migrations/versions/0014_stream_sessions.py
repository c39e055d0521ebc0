"""stream sessions: the session enricher's state per stream and user

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 08:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stream_sessions",
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("environment", sa.String(length=4), nullable=False),
        sa.Column("stream_id", sa.String(length=128), nullable=False),
        sa.Column("user_key", sa.String(length=200), nullable=False),
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("last_seen_us", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_stream_sessions_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "org_id", "environment", "stream_id", "user_key", name=op.f("pk_stream_sessions")
        ),
    )
    op.create_index("ix_stream_sessions_updated_at", "stream_sessions", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_stream_sessions_updated_at", table_name="stream_sessions")
    op.drop_table("stream_sessions")

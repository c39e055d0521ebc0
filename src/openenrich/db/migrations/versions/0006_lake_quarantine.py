"""lake quarantine: write-ahead log records the flusher could not turn into Parquet

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lake_quarantine",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("stream_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=4), nullable=False),
        sa.Column("wal_node", sa.String(length=40), nullable=False),
        sa.Column("wal_lsn", sa.BigInteger(), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("environment", sa.String(length=4), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_lake_quarantine_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lake_quarantine")),
        sa.UniqueConstraint(
            "wal_node", "wal_lsn", name=op.f("uq_lake_quarantine_wal_node_wal_lsn")
        ),
    )
    with op.batch_alter_table("lake_quarantine", schema=None) as batch_op:
        batch_op.create_index(
            "ix_lake_quarantine_stream",
            ["org_id", "environment", "stream_id", "created_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("lake_quarantine", schema=None) as batch_op:
        batch_op.drop_index("ix_lake_quarantine_stream")
    op.drop_table("lake_quarantine")

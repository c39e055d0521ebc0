"""streams: stream configs, the lake manifest, schema history, stats, usage, errors

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 18:30:22.921301
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lake_files",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("stream_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=4), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("min_event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("max_event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("wal_node", sa.String(length=40), nullable=False),
        sa.Column("wal_first_lsn", sa.BigInteger(), nullable=False),
        sa.Column("wal_last_lsn", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("environment", sa.String(length=4), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_lake_files_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lake_files")),
        sa.UniqueConstraint("path", name=op.f("uq_lake_files_path")),
    )
    with op.batch_alter_table("lake_files", schema=None) as batch_op:
        batch_op.create_index(
            "ix_lake_files_stream_day",
            ["org_id", "environment", "stream_id", "kind", "day"],
            unique=False,
        )
        batch_op.create_index(
            "ix_lake_files_wal_position",
            ["wal_node", "org_id", "environment", "stream_id", "kind", "wal_last_lsn"],
            unique=False,
        )

    op.create_table(
        "stream_errors",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("stream_id", sa.String(length=128), nullable=True),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("message", sa.String(length=500), nullable=False),
        sa.Column("endpoint", sa.String(length=64), nullable=False),
        sa.Column("request_body", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("environment", sa.String(length=4), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_stream_errors_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stream_errors")),
    )
    with op.batch_alter_table("stream_errors", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_stream_errors_org_id_environment_created_at"),
            ["org_id", "environment", "created_at"],
            unique=False,
        )

    op.create_table(
        "stream_schema_events",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("stream_id", sa.String(length=128), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("field", sa.String(length=256), nullable=False),
        sa.Column("detected_type", sa.String(length=16), nullable=False),
        sa.Column("previous_type", sa.String(length=16), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_count", sa.BigInteger(), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("environment", sa.String(length=4), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_stream_schema_events_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stream_schema_events")),
        sa.UniqueConstraint(
            "org_id",
            "environment",
            "stream_id",
            "type",
            "field",
            "detected_type",
            "previous_type",
            name="uq_stream_schema_events_key",
        ),
    )
    op.create_table(
        "stream_schema_fields",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("stream_id", sa.String(length=128), nullable=False),
        sa.Column("field", sa.String(length=256), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("environment", sa.String(length=4), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_stream_schema_fields_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stream_schema_fields")),
        sa.UniqueConstraint(
            "org_id", "environment", "stream_id", "field", name="uq_stream_schema_fields_key"
        ),
    )
    op.create_table(
        "stream_stats",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.BigInteger(), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("environment", sa.String(length=4), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_stream_stats_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stream_stats")),
        sa.UniqueConstraint(
            "org_id",
            "environment",
            "minute",
            name=op.f("uq_stream_stats_org_id_environment_minute"),
        ),
    )
    op.create_table(
        "stream_usage_months",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("environment", sa.String(length=4), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_stream_usage_months_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stream_usage_months")),
        sa.UniqueConstraint(
            "org_id",
            "environment",
            "month",
            name=op.f("uq_stream_usage_months_org_id_environment_month"),
        ),
    )
    op.create_table(
        "streams",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("stream_id", sa.String(length=128), nullable=False),
        sa.Column("schema_mode", sa.String(length=8), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=True),
        sa.Column("template", sa.String(length=100), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("environment", sa.String(length=4), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_streams_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_streams")),
        sa.UniqueConstraint(
            "org_id",
            "environment",
            "stream_id",
            name=op.f("uq_streams_org_id_environment_stream_id"),
        ),
    )


def downgrade() -> None:
    op.drop_table("streams")
    op.drop_table("stream_usage_months")
    op.drop_table("stream_stats")
    op.drop_table("stream_schema_fields")
    op.drop_table("stream_schema_events")
    with op.batch_alter_table("stream_errors", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stream_errors_org_id_environment_created_at"))

    op.drop_table("stream_errors")
    with op.batch_alter_table("lake_files", schema=None) as batch_op:
        batch_op.drop_index("ix_lake_files_wal_position")
        batch_op.drop_index("ix_lake_files_stream_day")

    op.drop_table("lake_files")

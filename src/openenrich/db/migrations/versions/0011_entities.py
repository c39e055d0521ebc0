"""entity enrichment: saved schemas and versions, jobs and their entities, records

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 06:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "entity_records",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("job_id", sa.String(length=40), nullable=True),
        sa.Column("entity_index", sa.Integer(), nullable=True),
        sa.Column("entity_data", sa.JSON(), nullable=False),
        sa.Column("entity_name", sa.String(length=500), nullable=True),
        sa.Column("schema_id", sa.String(length=36), nullable=True),
        sa.Column("schema_version", sa.Integer(), nullable=True),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("arbitration_model", sa.String(length=200), nullable=True),
        sa.Column("strategy", sa.String(length=32), nullable=True),
        sa.Column("structured_output", sa.JSON(), nullable=False),
        sa.Column("fusion", sa.JSON(), nullable=True),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("cost", sa.Numeric(precision=18, scale=8), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("environment", sa.String(length=4), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_entity_records_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entity_records")),
        sa.UniqueConstraint(
            "job_id",
            "entity_index",
            "type",
            "model",
            name=op.f("uq_entity_records_job_id_entity_index_type_model"),
        ),
    )
    with op.batch_alter_table("entity_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_entity_records_org_id_environment_created_at"),
            ["org_id", "environment", "created_at"],
            unique=False,
        )

    op.create_table(
        "entity_schemas",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("entity_type", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("json_schema", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("environment", sa.String(length=4), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_entity_schemas_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entity_schemas")),
    )
    with op.batch_alter_table("entity_schemas", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_entity_schemas_org_id_environment_updated_at"),
            ["org_id", "environment", "updated_at"],
            unique=False,
        )

    op.create_table(
        "entity_jobs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("schema_id", sa.String(length=36), nullable=True),
        sa.Column("schema_version", sa.Integer(), nullable=True),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("strategy", sa.String(length=32), nullable=True),
        sa.Column("arbitration_model", sa.String(length=200), nullable=True),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("total_entities", sa.Integer(), nullable=False),
        sa.Column("completed_entities", sa.Integer(), nullable=False),
        sa.Column("failed_entities", sa.Integer(), nullable=False),
        sa.Column("total_cost", sa.Numeric(precision=18, scale=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("environment", sa.String(length=4), nullable=False),
        sa.ForeignKeyConstraint(
            ["id"], ["jobs.id"], name=op.f("fk_entity_jobs_id_jobs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_entity_jobs_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entity_jobs")),
    )
    with op.batch_alter_table("entity_jobs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_entity_jobs_org_id_environment_created_at"),
            ["org_id", "environment", "created_at"],
            unique=False,
        )

    op.create_table(
        "entity_schema_versions",
        sa.Column("schema_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("entity_type", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("json_schema", sa.JSON(), nullable=False),
        sa.Column("change", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["schema_id"],
            ["entity_schemas.id"],
            name=op.f("fk_entity_schema_versions_schema_id_entity_schemas"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("schema_id", "version", name=op.f("pk_entity_schema_versions")),
    )
    op.create_table(
        "entity_job_items",
        sa.Column("job_id", sa.String(length=40), nullable=False),
        sa.Column("entity_index", sa.Integer(), nullable=False),
        sa.Column("entity_data", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["entity_jobs.id"],
            name=op.f("fk_entity_job_items_job_id_entity_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "entity_index", name=op.f("pk_entity_job_items")),
    )


def downgrade() -> None:
    op.drop_table("entity_job_items")
    op.drop_table("entity_schema_versions")
    with op.batch_alter_table("entity_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_entity_jobs_org_id_environment_created_at"))

    op.drop_table("entity_jobs")
    with op.batch_alter_table("entity_schemas", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_entity_schemas_org_id_environment_updated_at"))

    op.drop_table("entity_schemas")
    with op.batch_alter_table("entity_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_entity_records_org_id_environment_created_at"))

    op.drop_table("entity_records")

"""lead pipelines: pipelines, leads (one per address per tenant), the junction rows,
templates and columns, the tenant lead count, and the per-lead ledger of lead jobs

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 02:21:45
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "lead_accounts",
        sa.Column("lead_count", sa.BigInteger(), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("environment", sa.String(length=4), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_lead_accounts_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "environment", name=op.f("pk_lead_accounts")),
    )
    op.create_table(
        "lead_ai_templates",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("prompt_template", sa.Text(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("endpoint_url", sa.Text(), nullable=True),
        sa.Column("max_tokens", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("environment", sa.String(length=4), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_lead_ai_templates_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead_ai_templates")),
    )
    with op.batch_alter_table("lead_ai_templates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lead_ai_templates_org_id_environment_created_at"),
            ["org_id", "environment", "created_at"],
            unique=False,
        )

    op.create_table(
        "lead_firecrawl_templates",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("url_column", sa.String(length=200), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("output_fields", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("environment", sa.String(length=4), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_lead_firecrawl_templates_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead_firecrawl_templates")),
    )
    with op.batch_alter_table("lead_firecrawl_templates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lead_firecrawl_templates_org_id_environment_created_at"),
            ["org_id", "environment", "created_at"],
            unique=False,
        )

    op.create_table(
        "lead_multi_ai_templates",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("output_fields", sa.JSON(), nullable=False),
        sa.Column("prompt_template", sa.Text(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("endpoint_url", sa.Text(), nullable=True),
        sa.Column("max_tokens", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("environment", sa.String(length=4), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_lead_multi_ai_templates_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead_multi_ai_templates")),
    )
    with op.batch_alter_table("lead_multi_ai_templates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lead_multi_ai_templates_org_id_environment_created_at"),
            ["org_id", "environment", "created_at"],
            unique=False,
        )

    op.create_table(
        "lead_pipelines",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("color", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("total_leads", sa.BigInteger(), nullable=False),
        sa.Column("imported_leads", sa.BigInteger(), nullable=False),
        sa.Column("validated_leads", sa.BigInteger(), nullable=False),
        sa.Column("enriched_leads", sa.BigInteger(), nullable=False),
        sa.Column("valid_emails", sa.BigInteger(), nullable=False),
        sa.Column("invalid_emails", sa.BigInteger(), nullable=False),
        sa.Column("risky_emails", sa.BigInteger(), nullable=False),
        sa.Column("unknown_emails", sa.BigInteger(), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("environment", sa.String(length=4), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_lead_pipelines_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead_pipelines")),
    )
    with op.batch_alter_table("lead_pipelines", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lead_pipelines_org_id_environment_created_at"),
            ["org_id", "environment", "created_at"],
            unique=False,
        )

    op.create_table(
        "leads",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("email_key", sa.String(length=320), nullable=False),
        sa.Column("first_name", sa.Text(), nullable=True),
        sa.Column("last_name", sa.Text(), nullable=True),
        sa.Column("company", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("linkedin_url", sa.Text(), nullable=True),
        sa.Column("company_website", sa.Text(), nullable=True),
        sa.Column("company_description", sa.Text(), nullable=True),
        sa.Column("company_size", sa.Text(), nullable=True),
        sa.Column("industry", sa.Text(), nullable=True),
        sa.Column("location", sa.Text(), nullable=True),
        sa.Column(
            "custom_fields",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column("enrichment_status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("environment", sa.String(length=4), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_leads_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leads")),
        sa.UniqueConstraint(
            "org_id", "environment", "email_key", name=op.f("uq_leads_org_id_environment_email_key")
        ),
    )
    op.create_table(
        "lead_job_items",
        sa.Column("job_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.String(length=36), nullable=False),
        sa.Column("pipeline_lead_id", sa.String(length=36), nullable=True),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_lead_job_items_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", "position", name=op.f("pk_lead_job_items")),
    )
    with op.batch_alter_table("lead_job_items", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lead_job_items_job_id_status_position"),
            ["job_id", "status", "position"],
            unique=False,
        )

    op.create_table(
        "lead_jobs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("pipeline_id", sa.String(length=36), nullable=True),
        sa.Column("family", sa.String(length=16), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("total_leads", sa.Integer(), nullable=False),
        sa.Column("processed_leads", sa.Integer(), nullable=False),
        sa.Column("failed_leads", sa.Integer(), nullable=False),
        sa.Column("skipped_leads", sa.Integer(), nullable=False),
        sa.Column("valid_leads", sa.Integer(), nullable=False),
        sa.Column("invalid_leads", sa.Integer(), nullable=False),
        sa.Column("risky_leads", sa.Integer(), nullable=False),
        sa.Column("unknown_leads", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("environment", sa.String(length=4), nullable=False),
        sa.ForeignKeyConstraint(
            ["id"], ["jobs.id"], name=op.f("fk_lead_jobs_id_jobs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_lead_jobs_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead_jobs")),
    )
    with op.batch_alter_table("lead_jobs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lead_jobs_org_id_environment_created_at"),
            ["org_id", "environment", "created_at"],
            unique=False,
        )

    op.create_table(
        "pipeline_columns",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("pipeline_id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=True),
        sa.Column("template_id", sa.String(length=36), nullable=True),
        sa.Column("field", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("environment", sa.String(length=4), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_pipeline_columns_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["lead_pipelines.id"],
            name=op.f("fk_pipeline_columns_pipeline_id_lead_pipelines"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_columns")),
    )
    with op.batch_alter_table("pipeline_columns", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pipeline_columns_pipeline_id_created_at"),
            ["pipeline_id", "created_at"],
            unique=False,
        )

    op.create_table(
        "pipeline_leads",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("pipeline_id", sa.String(length=36), nullable=False),
        sa.Column("lead_id", sa.String(length=36), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("email_validation_status", sa.String(length=8), nullable=True),
        sa.Column("email_validation", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("environment", sa.String(length=4), nullable=False),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["leads.id"],
            name=op.f("fk_pipeline_leads_lead_id_leads"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_pipeline_leads_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["lead_pipelines.id"],
            name=op.f("fk_pipeline_leads_pipeline_id_lead_pipelines"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_leads")),
        sa.UniqueConstraint(
            "pipeline_id", "lead_id", name=op.f("uq_pipeline_leads_pipeline_id_lead_id")
        ),
    )
    with op.batch_alter_table("pipeline_leads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pipeline_leads_lead_id"), ["lead_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_pipeline_leads_pipeline_id_created_at_id"),
            ["pipeline_id", "created_at", "id"],
            unique=False,
        )


def downgrade() -> None:

    with op.batch_alter_table("pipeline_leads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pipeline_leads_pipeline_id_created_at_id"))
        batch_op.drop_index(batch_op.f("ix_pipeline_leads_lead_id"))

    op.drop_table("pipeline_leads")
    with op.batch_alter_table("pipeline_columns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pipeline_columns_pipeline_id_created_at"))

    op.drop_table("pipeline_columns")
    with op.batch_alter_table("lead_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lead_jobs_org_id_environment_created_at"))

    op.drop_table("lead_jobs")
    with op.batch_alter_table("lead_job_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lead_job_items_job_id_status_position"))

    op.drop_table("lead_job_items")
    op.drop_table("leads")
    with op.batch_alter_table("lead_pipelines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lead_pipelines_org_id_environment_created_at"))

    op.drop_table("lead_pipelines")
    with op.batch_alter_table("lead_multi_ai_templates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lead_multi_ai_templates_org_id_environment_created_at"))

    op.drop_table("lead_multi_ai_templates")
    with op.batch_alter_table("lead_firecrawl_templates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lead_firecrawl_templates_org_id_environment_created_at"))

    op.drop_table("lead_firecrawl_templates")
    with op.batch_alter_table("lead_ai_templates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lead_ai_templates_org_id_environment_created_at"))

    op.drop_table("lead_ai_templates")
    op.drop_table("lead_accounts")

"""pipeline_leads: only the pipeline's foreign key (each costs a lookup per uploaded row),
one unique index (lead_id, pipeline_id) instead of two

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 05:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("pipeline_leads") as batch:
        batch.drop_constraint("fk_pipeline_leads_org_id_organizations", type_="foreignkey")
        batch.drop_constraint("fk_pipeline_leads_lead_id_leads", type_="foreignkey")
        batch.drop_constraint("uq_pipeline_leads_pipeline_id_lead_id", type_="unique")
        batch.drop_index("ix_pipeline_leads_lead_id")
        batch.create_unique_constraint(
            "uq_pipeline_leads_lead_id_pipeline_id", ["lead_id", "pipeline_id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("pipeline_leads") as batch:
        batch.drop_constraint("uq_pipeline_leads_lead_id_pipeline_id", type_="unique")
        batch.create_index("ix_pipeline_leads_lead_id", ["lead_id"])
        batch.create_unique_constraint(
            "uq_pipeline_leads_pipeline_id_lead_id", ["pipeline_id", "lead_id"]
        )
        batch.create_foreign_key(
            "fk_pipeline_leads_org_id_organizations",
            "organizations",
            ["org_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_foreign_key(
            "fk_pipeline_leads_lead_id_leads", "leads", ["lead_id"], ["id"], ondelete="CASCADE"
        )

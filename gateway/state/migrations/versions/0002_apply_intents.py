"""Crash-safe applies: write-ahead intents, and one live instance per zone, host, template and instanceId.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("template_instances") as table:
        table.add_column(sa.Column("instance_key", sa.String(255), nullable=False, server_default=""))
    # Rows from before: the instanceId is the key.
    op.execute("UPDATE template_instances SET instance_key = instance_id WHERE instance_id IS NOT NULL")
    # Older gateways could leave duplicates behind; the newest one of each is kept.
    op.execute("""DELETE FROM template_instances WHERE id NOT IN (
        SELECT MAX(id) FROM template_instances GROUP BY domain, host, provider_id, service_id, instance_key)""")
    with op.batch_alter_table("template_instances") as table:
        table.create_unique_constraint("uq_template_instances_live",
                                       ["domain", "host", "provider_id", "service_id", "instance_key"])
    op.create_table(
        "apply_intents",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("backend", sa.String(255), nullable=False),
        sa.Column("zone", sa.String(255), nullable=False),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("instance", sa.JSON(), nullable=True),
        sa.Column("replaces", sa.JSON(), nullable=False),
        sa.Column("audit", sa.JSON(), nullable=True),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
    )
    op.create_index("ix_apply_intents_zone", "apply_intents", ["backend", "zone"])


def downgrade() -> None:
    op.drop_index("ix_apply_intents_zone", "apply_intents")
    op.drop_table("apply_intents")
    with op.batch_alter_table("template_instances") as table:
        table.drop_constraint("uq_template_instances_live", type_="unique")
        table.drop_column("instance_key")

"""Web redirects: the names the HTTP listener answers with 301 or 302, owned by template instances.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_redirects",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("instance_pk", sa.Integer(), sa.ForeignKey("template_instances.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("name", sa.String(255), nullable=False, index=True),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("code", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("web_redirects")

"""State that replicas share: sign-in sessions, open consent pages, attempt counters.

Revision ID: 0016
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0004"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sign_in_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("username", sa.String(255), nullable=False, index=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("expires_at", WHEN, nullable=False, index=True),
    )
    op.create_table(
        "open_pages",
        sa.Column("nonce_hash", sa.String(64), primary_key=True),
        sa.Column("session_hash", sa.String(64), nullable=False, index=True),
        sa.Column("username", sa.String(255), nullable=False, index=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("shown", sa.JSON(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("expires_at", WHEN, nullable=False, index=True),
    )
    op.create_table(
        "attempt_counters",
        sa.Column("key_hash", sa.String(64), primary_key=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("resets_at", WHEN, nullable=False, index=True),
    )


def downgrade() -> None:
    for table in ("attempt_counters", "open_pages", "sign_in_sessions"):
        op.drop_table(table)

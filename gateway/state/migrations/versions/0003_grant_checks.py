"""What a grant must check later: PKCE challenges on codes, the changes the consent page showed;
room for argon2 hashes of client secrets an operator chose.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("oauth_clients") as clients:
        clients.alter_column("secret_hash", type_=sa.String(255), existing_type=sa.String(64),
                             existing_nullable=False)
    with op.batch_alter_table("oauth_codes") as codes:
        codes.add_column(sa.Column("code_challenge", sa.String(128), nullable=True))
        codes.add_column(sa.Column("code_challenge_method", sa.String(16), nullable=True))
    with op.batch_alter_table("oauth_grants") as grants:
        grants.add_column(sa.Column("approved", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("oauth_clients") as clients:
        clients.alter_column("secret_hash", type_=sa.String(64), existing_type=sa.String(255),
                             existing_nullable=False)
    with op.batch_alter_table("oauth_grants") as grants:
        grants.drop_column("approved")
    with op.batch_alter_table("oauth_codes") as codes:
        codes.drop_column("code_challenge_method")
        codes.drop_column("code_challenge")

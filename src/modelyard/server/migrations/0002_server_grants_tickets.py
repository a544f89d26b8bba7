"""server: the right to create projects, when a token was last used, one-time launch tickets

Revision ID: server_0002
Revises: server_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "server_0002"
down_revision = "server_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing users keep what they had: superusers create projects by being superusers,
    # everyone else now needs the grant.
    op.add_column("users", sa.Column("can_create_projects", sa.Boolean, nullable=False,
                                     server_default=sa.false()))
    op.add_column("api_tokens", sa.Column("last_used_at", sa.DateTime, nullable=True))
    op.create_table(
        "launch_tickets",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("ticket_hash", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("user_id", sa.String(40),
                  sa.ForeignKey("users.id", ondelete="CASCADE",
                                name="fk_launch_tickets_user_id_users"),
                  nullable=False),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("role", sa.Integer, nullable=False),
        sa.Column("token_ttl_s", sa.Integer, nullable=False),
        sa.Column("uses_left", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
        sa.Column("token_ids", sa.JSON, nullable=False),
        sa.UniqueConstraint("ticket_hash", name="uq_launch_tickets_ticket_hash"),
    )
    op.create_index("ix_launch_tickets_subject", "launch_tickets", ["subject"])


def downgrade() -> None:
    op.drop_table("launch_tickets")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("last_used_at")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("can_create_projects")

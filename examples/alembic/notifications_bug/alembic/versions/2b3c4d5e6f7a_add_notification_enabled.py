"""add notification_enabled

Adds a non-nullable column with a server default so existing rows get a value, then drops
the default so that new rows must say what they want. Replaces the plain email index with a
case-insensitive one.

Revision ID: 2b3c4d5e6f7a
Revises: 1a2b3c4d5e6f
"""
import sqlalchemy as sa
from alembic import op

revision = "2b3c4d5e6f7a"
down_revision = "1a2b3c4d5e6f"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column(
        "users",
        sa.Column("notification_enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    )
    op.alter_column("users", "notification_enabled", server_default=None)
    op.drop_index("ix_users_email", table_name="users")
    op.create_index("ix_users_lower_email", "users", [sa.text("lower(email)")])


def downgrade():
    # BUG: forgets to re-create ix_users_email, which the upgrade dropped.
    op.drop_index("ix_users_lower_email", table_name="users")
    op.drop_column("users", "notification_enabled")

"""agents.role (issue 19): "agent" or "supervisor"; NULL, as accounts made before it
have, reads as "agent". Nullable without a default: a plain ADD COLUMN on SQLite and
PostgreSQL. Skipped when the web app already added it (it does so on start,
web/agents.py), so such a database is adopted too.

Revision ID: console_0002
Revises: console_0001
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = "console_0002"
down_revision = "console_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("agents")}
    if "role" not in columns:
        op.add_column("agents", sa.Column("role", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("role")

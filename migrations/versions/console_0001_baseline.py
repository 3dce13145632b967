"""Console baseline: accounts, sessions, audit, devices as web/agents.py created them
before migrations (the earlier sqlite3 version's column types: TEXT, REAL, INTEGER
AUTOINCREMENT).

Creates what is missing and leaves what exists, so a database made by the web app's
`create_all` (or the older sqlite3 code, without `devices` or the audit index) is
adopted as it is.

Revision ID: console_0001
Revises:
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = "console_0001"
down_revision = None
branch_labels = ("console",)
depends_on = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    tables = set(inspector.get_table_names())
    if "agents" not in tables:
        op.create_table(
            "agents",
            sa.Column("username", sa.Text, primary_key=True),
            sa.Column("password_hash", sa.Text, nullable=False),
            sa.Column("created_at", sa.Float, nullable=False),
        )
    if "sessions" not in tables:
        op.create_table(
            "sessions",
            sa.Column("token_hash", sa.Text, primary_key=True),
            sa.Column("username", sa.Text, nullable=False),
            sa.Column("csrf_token", sa.Text, nullable=False),
            sa.Column("created_at", sa.Float, nullable=False),
            sa.Column("last_seen", sa.Float, nullable=False),
        )
    if "audit" not in tables:
        op.create_table(
            "audit",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("at", sa.Float, nullable=False),
            sa.Column("username", sa.Text, nullable=False),
            sa.Column("kind", sa.Text, nullable=False),
            sa.Column("subject", sa.Text, nullable=False),
            sa.Column("outcome", sa.Text, nullable=False),
            sqlite_autoincrement=True,
        )
    if "audit" not in tables or "audit_username_at" not in {
            index["name"] for index in inspector.get_indexes("audit")}:
        op.create_index("audit_username_at", "audit", ["username", "at"])
    if "devices" not in tables:
        op.create_table(
            "devices",
            sa.Column("token_hash", sa.Text, primary_key=True),
            sa.Column("username", sa.Text, nullable=False),
            sa.Column("created_at", sa.Float, nullable=False),
        )


def downgrade() -> None:
    for table in ("devices", "audit", "sessions", "agents"):
        op.drop_table(table)

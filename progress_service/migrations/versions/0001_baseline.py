"""Baseline: the progress service's tables as `create_all` made them before migrations.

Creates what is missing and leaves what exists: a database made by an older version
(the service's `create_all` at start) is adopted as it is, a fresh one gets everything.

Revision ID: progress_0001
Revises:
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = "progress_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    tables = set(inspector.get_table_names())
    if "progress_applications" not in tables:
        op.create_table(
            "progress_applications",
            sa.Column("application_no", sa.String(64), primary_key=True),
            sa.Column("id_hash", sa.String(64), nullable=False),
            sa.Column("applicant_name", sa.String(100), nullable=False),
            sa.Column("disease", sa.String(200), nullable=False),
            sa.Column("channel", sa.String(50), nullable=False),
            sa.Column("submitted_at", sa.DateTime, nullable=True),
            sa.Column("status", sa.String(20), nullable=False),
            sa.Column("status_updated_at", sa.DateTime, nullable=False),
            sa.Column("note", sa.Text, nullable=False),
            sa.Column("valid_from", sa.Date, nullable=True),
            sa.Column("valid_until", sa.Date, nullable=True),
        )
    if "progress_status_history" not in tables:
        op.create_table(
            "progress_status_history",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("application_no", sa.String(64),
                      sa.ForeignKey("progress_applications.application_no", ondelete="CASCADE"),
                      nullable=False),
            sa.Column("status", sa.String(20), nullable=False),
            sa.Column("changed_at", sa.DateTime, nullable=False),
            sa.Column("note", sa.Text, nullable=False),
            sa.Column("source", sa.String(20), nullable=False),
        )
    _index(inspector, tables, "progress_status_history", "ix_progress_status_history_application_no",
           ["application_no"])
    if "progress_lockout_counters" not in tables:
        op.create_table(
            "progress_lockout_counters",
            sa.Column("scope", sa.String(10), primary_key=True),
            sa.Column("key", sa.String(64), primary_key=True),
            sa.Column("window_start", sa.Float, nullable=False),
            sa.Column("failures", sa.Integer, nullable=False),
        )
    if "progress_trusted_identities" not in tables:
        op.create_table(
            "progress_trusted_identities",
            sa.Column("number_key", sa.String(64), primary_key=True),
            sa.Column("identity_key", sa.String(64), primary_key=True),
            sa.Column("at", sa.Float, nullable=False),
        )
    _index(inspector, tables, "progress_trusted_identities", "ix_progress_trusted_identities_at", ["at"])
    if "progress_agent_audit" not in tables:
        op.create_table(
            "progress_agent_audit",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("agent", sa.String(100), nullable=False),
            sa.Column("at", sa.DateTime, nullable=False),
            sa.Column("application_no_masked", sa.String(64), nullable=False),
            sa.Column("application_no_hash", sa.String(64), nullable=False),
            sa.Column("outcome", sa.String(20), nullable=False),
        )
    _index(inspector, tables, "progress_agent_audit", "ix_progress_agent_audit_application_no_hash",
           ["application_no_hash"])


def _index(inspector, tables, table: str, name: str, columns) -> None:
    """Create the index unless the table existed already with it."""
    if table in tables and name in {index["name"] for index in inspector.get_indexes(table)}:
        return
    op.create_index(name, table, columns)


def downgrade() -> None:
    for table in ("progress_agent_audit", "progress_trusted_identities", "progress_lockout_counters",
                  "progress_status_history", "progress_applications"):
        op.drop_table(table)

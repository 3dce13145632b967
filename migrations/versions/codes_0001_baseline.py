"""Conversation codes baseline: the table as core/conversation_codes.py created it
before migrations. Creates what is missing, so a database made by `create_all` is
adopted as it is.

Revision ID: codes_0001
Revises:
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = "codes_0001"
down_revision = None
branch_labels = ("codes",)
depends_on = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if "conversation_codes" not in inspector.get_table_names():
        op.create_table(
            "conversation_codes",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("code_hash", sa.String(64), nullable=False, unique=True),
            sa.Column("sender_id", sa.String(255), nullable=False),
            sa.Column("nonce", sa.String(64), nullable=False),
            sa.Column("issued_at", sa.Float, nullable=False),
            sa.Column("expires_at", sa.Float, nullable=False),
        )
        existing = set()
    else:
        existing = {index["name"] for index in inspector.get_indexes("conversation_codes")}
    for name, column in (("ix_conversation_codes_sender_id", "sender_id"),
                         ("ix_conversation_codes_expires_at", "expires_at")):
        if name not in existing:
            op.create_index(name, "conversation_codes", [column])


def downgrade() -> None:
    op.drop_table("conversation_codes")

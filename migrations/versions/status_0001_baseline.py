"""Status-change notifications baseline: the tables core/status_subscriptions.py created
with `create_all` before it had migrations (WeChat offers, subscriptions, sent
notifications, the widget's watches). Creates what is missing, so a database made by
`create_all` is adopted as it is.

Revision ID: status_0001
Revises:
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = "status_0001"
down_revision = None
branch_labels = ("status",)
depends_on = None

TABLES = {
    "status_offers": lambda: [
        sa.Column("openid", sa.String(128), primary_key=True),
        sa.Column("application_no", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("offered_at", sa.Float, nullable=False),
    ],
    "status_subscriptions": lambda: [
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("openid", sa.String(128), nullable=False),
        sa.Column("application_no", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.UniqueConstraint("openid", "application_no", name="uq_status_subscription_pair"),
    ],
    "status_notifications": lambda: [
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("openid", sa.String(128), nullable=False),
        sa.Column("application_no", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.String(64), nullable=False),
        sa.Column("claimed_at", sa.Float, nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.UniqueConstraint("openid", "application_no", "status", "updated_at", name="uq_status_notification"),
    ],
    "status_watches": lambda: [
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("application_no", sa.String(64), nullable=False),
        sa.Column("seen_status", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    ],
}
# (index name as SQLAlchemy names `index=True` columns, table, column)
INDEXES = [
    ("ix_status_offers_offered_at", "status_offers", "offered_at"),
    ("ix_status_subscriptions_openid", "status_subscriptions", "openid"),
    ("ix_status_subscriptions_application_no", "status_subscriptions", "application_no"),
    ("ix_status_subscriptions_expires_at", "status_subscriptions", "expires_at"),
    ("ix_status_notifications_claimed_at", "status_notifications", "claimed_at"),
    ("ix_status_watches_application_no", "status_watches", "application_no"),
    ("ix_status_watches_expires_at", "status_watches", "expires_at"),
]


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    present = set(inspector.get_table_names())
    for name, columns in TABLES.items():
        if name not in present:
            op.create_table(name, *columns())
    for index, table, column in INDEXES:
        if index not in {found["name"] for found in sa.inspect(op.get_bind()).get_indexes(table)}:
            op.create_index(index, table, [column])


def downgrade() -> None:
    for name in reversed(list(TABLES)):
        op.drop_table(name)

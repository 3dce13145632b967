"""Tables and engine. SQLAlchemy 1.4 Core (the version Rasa pins).

SQLite by default, PostgreSQL by URL (PROGRESS_DATABASE_URL). For PostgreSQL a schema
other than `public` can be chosen in the URL:
postgresql://user@host/db?options=-csearch_path%3Dmyschema

The schema is Alembic's (progress_service/migrations/, docs/deploy.md "Migrations"):
`make_engine` brings it to the current version (PROGRESS_SCHEMA_AT_START=migrate, the
default) or only checks that it is current (`check`, production: `make migrate` runs as a
step before the processes start, so replicas never race to change it).
"""
import pathlib

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from core.private_files import private_database_file
from progress_service import settings

MIGRATIONS = pathlib.Path(__file__).with_name("migrations")
# Alembic's version table, named for this service: the database may be shared
VERSION_TABLE = "progress_alembic_version"
SCHEMA_MODES = ("migrate", "check")


class SchemaNotCurrent(RuntimeError):
    """The database is not at the migrations' head (PROGRESS_SCHEMA_AT_START=check)."""

metadata = sa.MetaData()

applications = sa.Table(
    "progress_applications", metadata,
    sa.Column("application_no", sa.String(64), primary_key=True),
    # HMAC of (application_no, ID-card last 4); the suffix itself is never stored.
    sa.Column("id_hash", sa.String(64), nullable=False),
    sa.Column("applicant_name", sa.String(100), nullable=False),
    sa.Column("disease", sa.String(200), nullable=False, default=""),
    sa.Column("channel", sa.String(50), nullable=False, default=""),
    sa.Column("submitted_at", sa.DateTime, nullable=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("status_updated_at", sa.DateTime, nullable=False),
    sa.Column("note", sa.Text, nullable=False, default=""),
    sa.Column("valid_from", sa.Date, nullable=True),
    sa.Column("valid_until", sa.Date, nullable=True),
)

status_history = sa.Table(
    "progress_status_history", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("application_no", sa.String(64),
              sa.ForeignKey("progress_applications.application_no", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("changed_at", sa.DateTime, nullable=False),
    sa.Column("note", sa.Text, nullable=False, default=""),
    sa.Column("source", sa.String(20), nullable=False),  # import | push
)

# Failed verifications per key and window (docs/progress.md, "Lockout"): one row per
# (scope, key), counted up by one conditional upsert, so concurrent requests can never
# pass the limit. Scopes: pair (number + identity), identity, number. Keys are keyed
# hashes; numbers and identities themselves are never stored.
lockout_counters = sa.Table(
    "progress_lockout_counters", metadata,
    sa.Column("scope", sa.String(10), primary_key=True),
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("window_start", sa.Float, nullable=False),  # unix time of the window's first failure
    sa.Column("failures", sa.Integer, nullable=False),
)
# Identities that proved a number (the right suffix): they keep their own limit when the
# number is under attack and new identities are refused (step-up). Keyed hashes only.
trusted_identities = sa.Table(
    "progress_trusted_identities", metadata,
    sa.Column("number_key", sa.String(64), primary_key=True),
    sa.Column("identity_key", sa.String(64), primary_key=True),
    sa.Column("at", sa.Float, nullable=False, index=True),  # last successful lookup, unix time
)
# Every agent-mode lookup. The number is kept masked plus as a keyed hash, so an
# investigator holding PROGRESS_ID_HASH_KEY can check whether a given number was seen.
agent_audit = sa.Table(
    "progress_agent_audit", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("agent", sa.String(100), nullable=False),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("application_no_masked", sa.String(64), nullable=False),
    sa.Column("application_no_hash", sa.String(64), nullable=False, index=True),
    sa.Column("outcome", sa.String(20), nullable=False),  # found | not_found
)


def make_engine(url: str, schema: str = "") -> sa.engine.Engine:
    """An engine on `url` whose schema is current. `schema`: `migrate` or `check`
    (default: PROGRESS_SCHEMA_AT_START)."""
    schema = schema or settings.SCHEMA_AT_START
    if schema not in SCHEMA_MODES:
        raise ValueError(f"PROGRESS_SCHEMA_AT_START={schema!r}: one of {', '.join(SCHEMA_MODES)}")
    kwargs = {"future": True, "pool_pre_ping": True}
    private_database_file(url)
    if url.startswith("sqlite"):
        # the service runs queries in worker threads
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 10}
    engine = sa.create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        _begin_immediate(engine)
    if schema == "migrate":
        migrate(engine)
    else:
        current, head = schema_versions(engine)
        if current != head:
            engine.dispose()
            raise SchemaNotCurrent(
                f"the progress database is at schema version {current or 'none'}, the code needs "
                f"{head}: run `make migrate` (docs/deploy.md) before starting the service")
    return engine


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    return config


def migrate(engine: sa.engine.Engine) -> None:
    """Upgrade the database to the migrations' head (a no-op when it is there). A database
    made by `create_all` before migrations existed is adopted by the baseline revision."""
    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def schema_versions(engine: sa.engine.Engine):
    """(the database's revision or None, the code's head revision)."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    with engine.connect() as connection:
        current = MigrationContext.configure(
            connection, opts={"version_table": VERSION_TABLE}).get_current_revision()
    return current, head


def _begin_immediate(engine: sa.engine.Engine) -> None:
    """SQLite: every transaction takes the write lock at BEGIN (SQLAlchemy's documented
    recipe). A deferred transaction that reads first and writes later can fail with
    "database is locked" under concurrent lookups instead of waiting its turn."""
    @sa.event.listens_for(engine, "connect")
    def no_implicit_begin(dbapi_connection, _record):
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def begin_immediate(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")

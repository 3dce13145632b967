"""Alembic environment of the progress service's database (docs/deploy.md "Migrations").

Run by `make migrate` (tools/migrate.py, which finds this folder by path: nothing outside
progress_service/ imports it) and by the service itself at start when
PROGRESS_SCHEMA_AT_START=migrate (the default: `make run`, tests); production runs the
step and starts the service with `check`. The caller passes an open connection in
`config.attributes["connection"]`; `alembic -c progress_service/migrations/alembic.ini
-x url=…` works too (writing a new revision). The version table has its own name, so the
progress tables can share a database with the console's or the tracker store.

On PostgreSQL the run holds a transaction-level advisory lock: two processes migrating
the same database one after the other, never side by side.
"""
import sqlalchemy as sa
from alembic import context
from alembic.autogenerate import compare_metadata

from progress_service.db import VERSION_TABLE, metadata

ADVISORY_LOCK = 0x6D7A6D01  # "mzm" + 1: the progress database's migrations

config = context.config


def include_object(obj, name, type_, reflected, compare_to):
    """Compare only this service's tables: a shared database's other tables are not ours."""
    if type_ == "table" and reflected and compare_to is None:
        return name in metadata.tables
    return True


def run(connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE,
                      include_object=include_object, compare_type=True)
    if config.attributes.get("compare"):  # tools/migrate.py --check: report, change nothing
        config.attributes["diffs"] = compare_metadata(context.get_context(), metadata)
        return
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("select pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK})
        context.run_migrations()


def main() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    engine = sa.create_engine(url, future=True)
    try:
        with engine.begin() as connection:
            run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) mode is not supported: run against a database")
main()

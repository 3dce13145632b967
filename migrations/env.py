"""Alembic environment of the web app's and action server's database: the console's
accounts, sessions, devices and audit (web/agents.py), the hotline's conversation
codes (core/conversation_codes.py) and the status-change subscriptions
(core/status_subscriptions.py). docs/deploy.md "Migrations".

Three branches, one per component, each with its own version table: on this machine they
are two SQLite files (.state/agents.db, .state/conversation-codes.db), in the cluster one
PostgreSQL database (shared with the tracker store), and either may move on its own.
The progress service's database has its own environment (progress_service/migrations/).

`make migrate` (tools/migrate.py) passes the component and an open connection in
`config.attributes`; by hand: `alembic -c migrations/alembic.ini -x component=console
-x url=sqlite:///.state/agents.db revision --head console@head -m "…"`.
On PostgreSQL the run holds a transaction-level advisory lock (one migrator at a time).
"""
import sqlalchemy as sa
from alembic import context
from alembic.autogenerate import compare_metadata

from core.conversation_codes import metadata as codes_metadata
from core.status_subscriptions import metadata as status_metadata
from web.agents import metadata as console_metadata

COMPONENTS = {
    # component: (models' metadata, version table, advisory lock key)
    "console": (console_metadata, "alembic_version_console", 0x6D7A6D02),
    "codes": (codes_metadata, "alembic_version_codes", 0x6D7A6D03),
    "status": (status_metadata, "alembic_version_status", 0x6D7A6D04),
}

config = context.config
arguments = context.get_x_argument(as_dictionary=True)
component = config.attributes.get("component") or arguments.get("component")
if component not in COMPONENTS:
    raise SystemExit(f"component must be one of {', '.join(COMPONENTS)} (-x component=…)")
metadata, version_table, lock_key = COMPONENTS[component]


def include_object(obj, name, type_, reflected, compare_to):
    """Compare only this component's tables: the database may hold others (the other
    component, Rasa's tracker store)."""
    if type_ == "table" and reflected and compare_to is None:
        return name in metadata.tables
    return True


def _affinity(type_, dialect) -> str:
    """SQLite's type affinity of a declared type (https://sqlite.org/datatype3.html 3.1)."""
    name = type_.compile(dialect=dialect).upper()
    for marker, affinity in (("INT", "INTEGER"), ("CHAR", "TEXT"), ("CLOB", "TEXT"), ("TEXT", "TEXT"),
                             ("BLOB", "BLOB"), ("REAL", "REAL"), ("FLOA", "REAL"), ("DOUB", "REAL")):
        if marker in name:
            return affinity
    return "NUMERIC"


def compare_type(context_, inspected_column, metadata_column, inspected_type, metadata_type):
    """On SQLite a column's type is its affinity: the sqlite3 version's REAL is the models'
    Float. Elsewhere Alembic's own comparison (None)."""
    if context_.dialect.name == "sqlite":
        return _affinity(inspected_type, context_.dialect) != _affinity(metadata_type, context_.dialect)
    return None


def _real_difference(diff, dialect_name: str) -> bool:
    """SQLite reads a TEXT primary key declared without NOT NULL as nullable (it is a
    primary key all the same): not a difference worth a migration."""
    return not (dialect_name == "sqlite" and diff[0] == "modify_nullable"
                and metadata.tables[diff[2]].c[diff[3]].primary_key)


def run(connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, version_table=version_table,
                      include_object=include_object, compare_type=compare_type)
    if config.attributes.get("compare"):  # tools/migrate.py --check: report, change nothing
        diffs = []
        for diff in compare_metadata(context.get_context(), metadata):
            if isinstance(diff, list):  # column changes come as a list of (op, …) per column
                diff = [change for change in diff if _real_difference(change, connection.dialect.name)]
                if not diff:
                    continue
            diffs.append(diff)
        config.attributes["diffs"] = diffs
        return
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("select pg_advisory_xact_lock(:key)"), {"key": lock_key})
        context.run_migrations()


def main() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    url = arguments.get("url") or config.get_main_option("sqlalchemy.url")
    engine = sa.create_engine(url, future=True)
    try:
        with engine.begin() as connection:
            run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) mode is not supported: run against a database")
main()

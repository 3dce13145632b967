"""Schema migrations (Alembic, tools/migrate.py, docs/deploy.md "Migrations") on SQLite and
on PostgreSQL (database `test`, a schema of its own per test, dropped afterwards;
unreachable: skipped locally, a failure under CI=true).

- a fresh database of each component (progress, console, codes) migrates to its head, and
  then its schema is exactly the code's tables (Alembic's compare_metadata: no diff);
- a second run changes nothing;
- a database made by the code before migrations (`create_all`; the console's without the
  `role` column) is adopted: brought to the head, its rows kept, no diff afterwards;
- `--check` fails on a schema that differs from the code;
- the progress service started with PROGRESS_SCHEMA_AT_START=check refuses a database
  that was not migrated and starts on one that was (the cluster's way); the default
  (`migrate`, make run) migrates a fresh database itself.
"""
import contextlib
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from core.conversation_codes import metadata as codes_metadata
from core.status_subscriptions import metadata as status_metadata
from tests.progress.progress_helpers import ServiceProcess, new_secrets
from tests.support import postgres_schema
from tools import migrate
from web.agents import AgentStore
from web.agents import metadata as console_metadata

ROOT = migrate.ROOT
PYTHON = str(ROOT / ".venv" / "bin" / "python")
COMPONENTS = ["progress", "console", "codes", "status"]


@contextlib.contextmanager
def database(kind: str, tmp_path, name: str):
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / (name + '.db')}"
    else:
        with postgres_schema(f"migrate_{name}") as url:
            yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def kind(request):
    return request.param


def tables(url: str):
    engine = sa.create_engine(url, future=True)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def execute(url: str, statement: str, **params):
    engine = sa.create_engine(url, future=True)
    try:
        with engine.begin() as connection:
            result = connection.execute(sa.text(statement), params)
            return result.fetchall() if result.returns_rows else None
    finally:
        engine.dispose()


def old_create_all(component: str, url: str) -> None:
    """The schema as the code made it before migrations existed."""
    if component == "progress":
        # the stand-in's own metadata, in a process of its own (nothing here imports it)
        done = subprocess.run(
            [PYTHON, "-c", "import sys, sqlalchemy as sa; from progress_service.db import metadata; "
                           "metadata.create_all(sa.create_engine(sys.argv[1], future=True))", url],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return
    engine = sa.create_engine(url, future=True)
    try:
        if component == "codes":
            codes_metadata.create_all(engine)
        elif component == "status":
            status_metadata.create_all(engine)
        else:  # the console's tables before the `role` column (issue 19)
            old = sa.MetaData()
            for table in console_metadata.sorted_tables:
                sa.Table(table.name, old, *[column._copy() for column in table.columns if column.name != "role"],
                         sqlite_autoincrement=table.kwargs.get("sqlite_autoincrement", False))
            sa.Index("audit_username_at", old.tables["audit"].c.username, old.tables["audit"].c.at)
            old.create_all(engine)
            assert "role" not in {c["name"] for c in sa.inspect(engine).get_columns("agents")}
    finally:
        engine.dispose()


@pytest.mark.parametrize("component", COMPONENTS)
def test_a_fresh_database_migrates_to_head_and_matches_the_code(kind, component, tmp_path):
    with database(kind, tmp_path, component) as url:
        assert migrate.current(component, url) is None
        before, after = migrate.upgrade(component, url)
        assert (before, after) == (None, migrate.head(component))
        assert migrate.check(component, url) == []
        assert migrate.upgrade(component, url) == (after, after)  # idempotent
        assert migrate.check(component, url) == []


def test_console_and_codes_share_one_database(kind, tmp_path):
    """The cluster's layout: both components (and their version tables) in one database."""
    with database(kind, tmp_path, "shared") as url:
        for component in ("console", "codes", "progress"):
            migrate.upgrade(component, url)
        for component in ("console", "codes", "progress"):
            assert migrate.check(component, url) == [], component
            assert migrate.current(component, url) == migrate.head(component)
        assert {"alembic_version_console", "alembic_version_codes", "progress_alembic_version"} <= tables(url)


@pytest.mark.parametrize("component", COMPONENTS)
def test_a_database_made_by_create_all_is_adopted(kind, component, tmp_path):
    with database(kind, tmp_path, component) as url:
        old_create_all(component, url)
        row = {
            "progress": ("insert into progress_lockout_counters (scope, key, window_start, failures) "
                         "values ('pair', 'k1', 1.5, 2)", "select failures from progress_lockout_counters"),
            "console": ("insert into agents (username, password_hash, created_at) values ('li', 'h', 1.0)",
                        "select username from agents"),
            "codes": ("insert into conversation_codes (code_hash, sender_id, nonce, issued_at, expires_at) "
                      "values ('h', 's', 'n', 1.0, 2.0)", "select sender_id from conversation_codes"),
            "status": ("insert into status_watches (token_hash, application_no, seen_status, status, "
                       "created_at, expires_at) values ('t', 'NC1', 'accepted', 'accepted', 1.0, 2.0)",
                       "select application_no from status_watches"),
        }[component]
        execute(url, row[0])
        kept = execute(url, row[1])
        assert len(kept) == 1
        assert migrate.current(component, url) is None
        assert migrate.check(component, url)  # not at head: --check says so
        assert migrate.upgrade(component, url)[1] == migrate.head(component)
        assert migrate.check(component, url) == []
        assert execute(url, row[1]) == kept


def test_an_older_console_database_gets_what_it_lacks(tmp_path):
    """The sqlite3 version's file: no `devices` table, no audit index, no `role`."""
    url = f"sqlite:///{tmp_path / 'agents.db'}"
    execute(url, "create table agents (username text primary key, password_hash text not null, "
                 "created_at real not null)")
    execute(url, "create table sessions (token_hash text primary key, username text not null, "
                 "csrf_token text not null, created_at real not null, last_seen real not null)")
    execute(url, "create table audit (id integer primary key autoincrement, at real not null, "
                 "username text not null, kind text not null, subject text not null, outcome text not null)")
    execute(url, "insert into agents values ('wang', 'x', 1.0)")
    migrate.upgrade("console", url)
    assert {"devices", "agents", "sessions", "audit"} <= tables(url)
    assert migrate.check("console", url) == []
    assert execute(url, "select username, role from agents") == [("wang", None)]


def test_check_reports_a_schema_that_differs_from_the_code(kind, tmp_path):
    with database(kind, tmp_path, "codes") as url:
        migrate.upgrade("codes", url)
        execute(url, "drop index ix_conversation_codes_sender_id")
        problems = migrate.check("codes", url)
        assert problems and "ix_conversation_codes_sender_id" in problems[0]


def test_the_command_migrates_every_database_and_checks_them(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT),
           "PROGRESS_DATABASE_URL": f"sqlite:///{tmp_path / 'state' / 'progress.db'}",
           "AGENT_DB": str(tmp_path / "state" / "agents.db"),
           "CONVERSATION_CODES_DATABASE_URL": f"sqlite:///{tmp_path / 'state' / 'codes.db'}",
           "STATUS_SUBSCRIPTIONS_DATABASE_URL": f"sqlite:///{tmp_path / 'state' / 'status.db'}"}
    env.pop("AGENT_DATABASE_URL", None)

    def run(*args):
        return subprocess.run([PYTHON, "-m", "tools.migrate", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=180)

    assert run("--check").returncode == 1
    assert not (tmp_path / "state").exists()  # checking creates nothing
    done = run()
    assert done.returncode == 0, done.stderr
    for component in COMPONENTS:
        assert f"{component} (" in done.stdout and f"none -> {migrate.head(component)}" in done.stdout
    again = run()
    assert again.returncode == 0 and again.stdout.count("already at") == len(COMPONENTS)
    checked = run("--check")
    assert checked.returncode == 0 and checked.stdout.count("current (") == len(COMPONENTS)
    for name in ("progress.db", "agents.db", "codes.db", "status.db"):  # private, as every SQLite file
        assert oct((tmp_path / "state" / name).stat().st_mode & 0o777) == "0o600"
    # the console's store opens the migrated file as it is (sign-in data are its tables)
    store = AgentStore(tmp_path / "state" / "agents.db")
    try:
        assert store.add_agent("zhou", "long-enough-password") is True
    finally:
        store.close()
    assert run("--only", "nonsense").returncode == 2


def test_the_progress_service_checks_its_schema_in_production_mode(kind, tmp_path):
    secrets_env = new_secrets()
    with database(kind, tmp_path, "progress") as url:
        refused = subprocess.run(
            [PYTHON, "-m", "progress_service.app"], cwd=ROOT, capture_output=True, text=True, timeout=120,
            env={**os.environ, **secrets_env, "PYTHONPATH": str(ROOT), "PROGRESS_DATABASE_URL": url,
                 "PROGRESS_SCHEMA_AT_START": "check", "PROGRESS_PORT": "1", "PROGRESS_METRICS_PORT": ""})
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "make migrate" in refused.stderr and "Traceback" not in refused.stderr
        assert "progress_applications" not in tables(url)  # it created nothing
        migrate.upgrade("progress", url)
        service = ServiceProcess(url, secrets_env, tmp_path / "started.log", PROGRESS_SCHEMA_AT_START="check")
        try:
            status, body, _ = service.request("GET", "/api/v1/applications/NC2026000001",
                                              {"X-API-Key": secrets_env["PROGRESS_API_KEY"], "X-Id-Last4": "1234"})
            assert status == 404, body
        finally:
            service.stop()


def test_the_progress_service_migrates_a_fresh_database_by_default(tmp_path):
    url = f"sqlite:///{tmp_path / 'progress.db'}"
    service = ServiceProcess(url, new_secrets(), tmp_path / "service.log")
    service.stop()
    assert migrate.current("progress", url) == migrate.head("progress")
    assert migrate.check("progress", url) == []



def test_make_migrate_runs_the_command():
    """The Makefile target is this command (dry run: nothing is executed)."""
    for args, expected in (([], "-m tools.migrate"), (["CHECK=1"], "-m tools.migrate --check")):
        done = subprocess.run(["make", "--no-print-directory", "-n", "migrate", *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stdout.strip().splitlines()[-1].endswith(expected), done.stdout

if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))

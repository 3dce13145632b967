"""`make migrate`: bring every database of the project to its current schema (Alembic).

Four components, each a branch with its own version table (docs/deploy.md "Migrations"):

    progress   the progress stand-in's tables     PROGRESS_DATABASE_URL          progress_service/migrations/
    console    the console's accounts, sessions,  AGENT_DATABASE_URL, else       migrations/ (branch console)
               devices, audit                     AGENT_DB (.state/agents.db)
    codes      the hotline's conversation codes   CONVERSATION_CODES_DATABASE_URL migrations/ (branch codes)
    status     status-change subscriptions,       STATUS_SUBSCRIPTIONS_DATABASE_URL migrations/ (branch status)
               notifications, widget watches

Every URL is read as the process that uses it reads it (SQLite under .state/ by default,
PostgreSQL by URL). Idempotent: a database at its head is left alone; one made by
`create_all` before migrations existed is adopted by the baseline revisions, which
create only what is missing. `--check` changes nothing: exit status 1 when a database is
not at its head or differs from the code's tables (Alembic's autogenerate comparison).

    python -m tools.migrate [--only progress,console,codes,status] [--check]

The progress stand-in is found by path (progress_service/migrations/), never imported:
without the folder (the agency's real system) the component is skipped.
"""
import argparse
import dataclasses
import os
import sys
from typing import Callable, Dict, List, Mapping, Optional, Tuple

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from core import conversation_codes, defaults, status_subscriptions
from core.private_files import private_database_file, sqlite_path
from web.agents import database_url as agent_database_url
from web.config import WebConfig

ROOT = defaults.ROOT
PROGRESS_MIGRATIONS = ROOT / "progress_service" / "migrations"
SHARED_MIGRATIONS = ROOT / "migrations"


def _progress_url(environ: Mapping[str, str]) -> str:
    return environ.get("PROGRESS_DATABASE_URL") or defaults.PROGRESS_DATABASE_URL


def _console_url(environ: Mapping[str, str]) -> str:
    return agent_database_url(WebConfig.from_env(environ).agent_store_location)


def _codes_url(environ: Mapping[str, str]) -> str:
    return conversation_codes.database_url(environ)


def _status_url(environ: Mapping[str, str]) -> str:
    return status_subscriptions.database_url(environ)


@dataclasses.dataclass(frozen=True)
class Component:
    name: str
    script_location: str
    version_table: str
    target: str                      # what "head" means for it (a branch's head)
    url: Callable[[Mapping[str, str]], str]


COMPONENTS: Dict[str, Component] = {
    "progress": Component("progress", str(PROGRESS_MIGRATIONS), "progress_alembic_version", "head",
                          _progress_url),
    "console": Component("console", str(SHARED_MIGRATIONS), "alembic_version_console", "console@head",
                         _console_url),
    "codes": Component("codes", str(SHARED_MIGRATIONS), "alembic_version_codes", "codes@head", _codes_url),
    "status": Component("status", str(SHARED_MIGRATIONS), "alembic_version_status", "status@head", _status_url),
}


def available() -> List[str]:
    """The components this checkout has (progress only with the stand-in's folder)."""
    return [name for name, component in COMPONENTS.items()
            if os.path.isdir(component.script_location)]


def _config(component: Component) -> Config:
    config = Config()
    config.set_main_option("script_location", component.script_location)
    config.set_main_option("path_separator", "os")
    if component.script_location == str(SHARED_MIGRATIONS):
        config.set_main_option("version_locations", str(SHARED_MIGRATIONS / "versions"))
    config.attributes["component"] = component.name
    return config


def _engine(url: str) -> sa.engine.Engine:
    private_database_file(url)
    return sa.create_engine(url, future=True)


def head(name: str) -> str:
    component = COMPONENTS[name]
    script = ScriptDirectory.from_config(_config(component))
    if component.target == "head":
        return script.get_current_head()
    return script.get_revision(component.target).revision


def current(name: str, url: str) -> Optional[str]:
    """The database's revision of this component, None when it has none (new, or made by
    `create_all` before migrations, or an SQLite file that does not exist: not created)."""
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return None
    engine = _engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(
                connection, opts={"version_table": COMPONENTS[name].version_table}).get_current_revision()
    finally:
        engine.dispose()


def upgrade(name: str, url: str) -> Tuple[Optional[str], str]:
    """Upgrade to the component's head; (revision before, revision after)."""
    component = COMPONENTS[name]
    before = current(name, url)
    engine = _engine(url)
    try:
        with engine.begin() as connection:
            config = _config(component)
            config.attributes["connection"] = connection
            command.upgrade(config, component.target)
    finally:
        engine.dispose()
    return before, current(name, url)


def check(name: str, url: str) -> List[str]:
    """What is wrong with the database's schema for this component (empty: nothing):
    not at its head, or tables/columns/indexes that differ from the code's."""
    component = COMPONENTS[name]
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return [f"{path} does not exist: run `make migrate`"]
    at, wanted = current(name, url), head(name)
    if at != wanted:
        return [f"at revision {at or 'none'}, the code needs {wanted}: run `make migrate`"]
    engine = _engine(url)
    try:
        with engine.connect() as connection:
            config = _config(component)
            config.attributes.update(connection=connection, compare=True)
            script = ScriptDirectory.from_config(config)
            with EnvironmentContext(config, script, fn=lambda _revision, _context: []):
                script.run_env()
    finally:
        engine.dispose()
    return [f"differs from the code: {diff}" for diff in config.attributes.get("diffs", [])]


def describe(url: str) -> str:
    """The URL without its password, for the operator."""
    return repr(sa.engine.make_url(url))


def main(argv: Optional[List[str]] = None, environ: Mapping[str, str] = os.environ) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated: progress,console,codes,status (default: all)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a schema is not current")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.only.split(",") if name.strip()] or available()
    unknown = [name for name in names if name not in COMPONENTS]
    if unknown:
        print(f"unknown component(s) {unknown}: {', '.join(COMPONENTS)}", file=sys.stderr)
        return 2
    failed = False
    for name in names:
        if name not in available():
            print(f"{name}: no migrations in this checkout ({COMPONENTS[name].script_location}); skipped")
            continue
        url = COMPONENTS[name].url(environ)
        try:
            if args.check:
                problems = check(name, url)
                failed = failed or bool(problems)
                print(f"{name} ({describe(url)}): " + ("; ".join(problems) if problems else f"current ({head(name)})"))
            else:
                before, after = upgrade(name, url)
                change = f"{before or 'none'} -> {after}" if before != after else f"already at {after}"
                print(f"{name} ({describe(url)}): {change}")
        except sa.exc.SQLAlchemyError as error:
            print(f"{name} ({describe(url)}): database error: {type(error).__name__}: "
                  f"{str(error).splitlines()[0][:300]}", file=sys.stderr)
            return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

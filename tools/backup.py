"""`make backup DIR=…` / `make restore DIR=…`: every database of the project, SQLite or
PostgreSQL, into a folder and back (docs/deploy.md "Backup and restore").

    python -m tools.backup backup DIR  [--endpoints endpoints.yml] [--only tracker,progress,console,codes]
    python -m tools.backup restore DIR [--endpoints endpoints.yml] [--force]

What: the conversations (the tracker store the endpoints file names), the progress
stand-in's applications, the console's accounts, sessions and audit, the hotline codes:
each at the URL the process that uses it reads (tools/migrate.py's components), SQLite
under .state/ by default.

How:
- SQLite: a consistent copy through SQLite's online backup API (safe while the services
  run), checked with `PRAGMA integrity_check`; restored the same way into the file.
- PostgreSQL: `pg_dump --format=custom` once per database (and schema, when the URL's
  search_path names one) that holds any of them, restored with `pg_restore --clean
  --if-exists --single-transaction` (a database that does not exist is created first).
  The password goes to pg_dump in PGPASSWORD, never on its command line.
- The folder is made 0700 and every file in it 0600 (the backup holds what the databases
  hold: masked names, hashes, conversations). It must be new or empty.
- manifest.json says what is where, the schema revisions, and the fingerprint of
  PROGRESS_ID_HASH_KEY (an HMAC of a fixed text under the key: it identifies the key and
  reveals nothing of it). Restored progress records are usable only with the key that
  hashed their ID suffixes; restore refuses another key (or none) unless --force.

Restore overwrites what is there: stop the services first. It then brings the progress,
console and codes schemas to the code's head (tools/migrate.py), so a backup made by an
older version is upgraded. Conversations older than the retention period are deleted
again by the next purge.
"""
import argparse
import contextlib
import datetime
import hashlib
import hmac
import json
import os
import pathlib
import shutil
import sqlite3
import stat
import subprocess
import sys
import urllib.parse
from typing import Dict, List, Mapping, Optional, Tuple

import sqlalchemy as sa
from rasa.shared.exceptions import RasaException
from rasa.shared.utils.common import class_from_module_path
from rasa.utils.endpoints import read_endpoint_config

from channels.tracker_store import NotOurStore, PrivateSQLTrackerStore
from core import defaults
from core.private_files import private_sqlite_file, sqlite_path
from tools import migrate

FORMAT = 1
MANIFEST = "manifest.json"
COMPONENTS = ("tracker", "progress", "console", "codes")
ID_HASH_KEY_ENV = "PROGRESS_ID_HASH_KEY"
FINGERPRINT_TEXT = b"mzmtb backup: PROGRESS_ID_HASH_KEY fingerprint v1"
EXIT_KEY_MISMATCH = 3


class BackupError(RuntimeError):
    """Something the operator must fix; the message says what."""


# --- where things are ------------------------------------------------------------------
def tracker_url(endpoints: pathlib.Path) -> str:
    """The conversation store's URL, as the endpoints file configures it (with its ${VAR}s
    filled in), without connecting: on restore the database may not exist yet."""
    config = read_endpoint_config(str(endpoints), endpoint_type="tracker_store")
    store_class = class_from_module_path(config.type) if config and config.type and "." in config.type else None
    if store_class is None or not issubclass(store_class, PrivateSQLTrackerStore):
        raise NotOurStore(f"{endpoints}: tracker_store is not channels.tracker_store.PrivateSQLTrackerStore "
                          f"(found {config.type if config else None!r})")
    options = config.kwargs
    url = PrivateSQLTrackerStore.get_db_url(
        options.get("dialect", "sqlite"), config.url, options.get("port"), options.get("db", "rasa.db"),
        options.get("username"), options.get("password"), None, options.get("query"))
    return url if isinstance(url, str) else url.render_as_string(hide_password=False)


def component_urls(names, endpoints: pathlib.Path, environ: Mapping[str, str]) -> Dict[str, str]:
    urls = {}
    for name in names:
        if name == "tracker":
            urls[name] = tracker_url(endpoints)
        elif name in migrate.available():
            urls[name] = migrate.COMPONENTS[name].url(environ)
    return urls


def key_fingerprint(key: str) -> str:
    return hmac.new(key.encode("utf-8"), FINGERPRINT_TEXT, hashlib.sha256).hexdigest()[:24]


def id_hash_key(environ: Mapping[str, str]) -> Optional[str]:
    """PROGRESS_ID_HASH_KEY as the progress service gets it: the environment, else the
    development secrets file `make run` wrote (read only: a backup never makes a key)."""
    if environ.get(ID_HASH_KEY_ENV):
        return environ[ID_HASH_KEY_ENV]
    path = pathlib.Path(environ.get("PROGRESS_DEV_SECRETS_FILE") or defaults.DEV_SECRETS_FILE)
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            name, _, value = line.strip().partition("=")
            if name.strip() == ID_HASH_KEY_ENV and value.strip():
                return value.strip()
    return None


# --- PostgreSQL ------------------------------------------------------------------------
def _pg_target(url: str) -> Tuple[Dict[str, str], Optional[str]]:
    """(libpq connection settings, schema or None) of a PostgreSQL SQLAlchemy URL."""
    parsed = sa.engine.make_url(url)
    schema = None
    options = parsed.query.get("options")
    if isinstance(options, (tuple, list)):
        options = " ".join(options)
    if options:
        for part in urllib.parse.unquote(options).split():
            part = part.removeprefix("-c")
            if part.startswith("search_path="):
                schema = part.split("=", 1)[1].split(",")[0].strip() or None
    settings = {"PGHOST": parsed.host or "127.0.0.1", "PGPORT": str(parsed.port or 5432),
                "PGUSER": parsed.username or "postgres", "PGDATABASE": parsed.database or "postgres"}
    if parsed.password:
        settings["PGPASSWORD"] = str(parsed.password)
    return settings, schema


def _pg_env(settings: Dict[str, str]) -> Dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("PG")}
    env.update(settings)
    return env


def _run(command: List[str], env: Dict[str, str], what: str) -> None:
    tool = shutil.which(command[0])
    if tool is None:
        raise BackupError(f"{command[0]} not found: install PostgreSQL's client tools "
                          f"(Debian: postgresql-client, the server's major version or newer)")
    done = subprocess.run([tool, *command[1:]], env=env, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise BackupError(f"{what} failed: {done.stderr.strip()[-2000:]}")


def _ensure_database(settings: Dict[str, str], environ: Mapping[str, str]) -> None:
    """Create the database (empty) if the server does not have it yet."""
    login = {**settings, "PGDATABASE": environ.get("DB_LOGIN_DB") or "postgres"}
    url = sa.engine.URL.create("postgresql", username=login["PGUSER"], password=login.get("PGPASSWORD"),
                               host=login["PGHOST"], port=int(login["PGPORT"]), database=login["PGDATABASE"])
    engine = sa.create_engine(url, future=True, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            exists = connection.execute(sa.text("select 1 from pg_database where datname = :name"),
                                        {"name": settings["PGDATABASE"]}).first()
            if not exists:
                quoted = settings["PGDATABASE"].replace('"', '""')
                connection.execute(sa.text(f'create database "{quoted}"'))
    finally:
        engine.dispose()


# --- files -----------------------------------------------------------------------------
def _private_folder(directory: pathlib.Path) -> None:
    if directory.exists():
        if any(directory.iterdir()):
            raise BackupError(f"{directory} is not empty: give a new folder for each backup")
    else:
        directory.mkdir(parents=True, mode=0o700)
    os.chmod(directory, 0o700)


def _sqlite_copy(source: pathlib.Path, target: pathlib.Path) -> None:
    """Copy a SQLite database (live or not) with the online backup API; the copy is 0600."""
    if target.exists():
        target.unlink()
    _private_new(target)
    with contextlib.closing(sqlite3.connect(str(source))) as src, \
            contextlib.closing(sqlite3.connect(str(target))) as dst:
        src.backup(dst)
        result = dst.execute("PRAGMA integrity_check").fetchone()[0]
    if result != "ok":
        raise BackupError(f"{target}: integrity check failed: {result}")


def _private_new(path: pathlib.Path) -> None:
    descriptor = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(descriptor)
    os.chmod(path, 0o600)


def _mask(url: str) -> str:
    return repr(sa.engine.make_url(url))


# --- backup ----------------------------------------------------------------------------
def backup(directory: pathlib.Path, endpoints: pathlib.Path, environ: Mapping[str, str] = os.environ,
           only=COMPONENTS, log=print) -> dict:
    directory = pathlib.Path(directory)
    urls = component_urls(only, endpoints, environ)
    _private_folder(directory)
    manifest = {"format": FORMAT, "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                "components": {}, "postgresql_dumps": []}
    dumps: Dict[Tuple[str, str, str, Optional[str]], dict] = {}
    for name, url in urls.items():
        entry = {"source": _mask(url)}
        path = sqlite_path(url)
        present = not url.startswith("sqlite") or (path is not None and path.exists() and path.stat().st_size > 0)
        if name in migrate.COMPONENTS and present:  # (never creates a file that is not there)
            try:
                entry["revision"] = migrate.current(name, url)
            except sa.exc.SQLAlchemyError:
                entry["revision"] = None
        if url.startswith("sqlite"):
            if not present:
                entry["kind"] = "absent"
                log(f"{name}: {_mask(url)} does not exist; nothing to back up")
            else:
                entry.update(kind="sqlite", file=f"{name}.sqlite")
                _sqlite_copy(path, directory / entry["file"])
                log(f"{name}: {path} -> {directory / entry['file']}")
        elif url.startswith("postgresql"):
            settings, schema = _pg_target(url)
            where = (settings["PGHOST"], settings["PGPORT"], settings["PGDATABASE"], schema)
            if where not in dumps:
                dump = {"file": f"postgresql-{len(dumps) + 1}.dump", "database": settings["PGDATABASE"],
                        "schema": schema, "components": []}
                target = directory / dump["file"]
                _private_new(target)
                command = ["pg_dump", "--format=custom", "--no-owner", "--no-privileges", "--file", str(target)]
                if schema:
                    command += ["--schema", schema]
                _run(command, _pg_env(settings), f"pg_dump of {_mask(url)}")
                dumps[where] = dump
                log(f"{name}: {_mask(url)} -> {target}")
            else:
                log(f"{name}: {_mask(url)} is in {dumps[where]['file']} already")
            dumps[where]["components"].append(name)
            entry.update(kind="postgresql", file=dumps[where]["file"])
        else:
            raise BackupError(f"{name}: {_mask(url)}: only SQLite and PostgreSQL are supported")
        manifest["components"][name] = entry
    manifest["postgresql_dumps"] = list(dumps.values())
    if "progress" in urls:
        key = id_hash_key(environ)
        manifest["id_hash_key_fingerprint"] = key_fingerprint(key) if key else None
        if not key:
            log("WARNING: no PROGRESS_ID_HASH_KEY found: keep the key that hashed these records with the backup's "
                "custody record; without it the restored progress records cannot be looked up")
    path = directory / MANIFEST
    _private_new(path)
    path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    for item in directory.iterdir():  # whatever a tool made: owner only
        os.chmod(item, stat.S_IRUSR | stat.S_IWUSR)
    return manifest


# --- restore ---------------------------------------------------------------------------
def restore(directory: pathlib.Path, endpoints: pathlib.Path, environ: Mapping[str, str] = os.environ,
            force: bool = False, log=print) -> dict:
    directory = pathlib.Path(directory)
    manifest_path = directory / MANIFEST
    if not manifest_path.exists():
        raise BackupError(f"{manifest_path} not found: not a backup made by `make backup`")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise BackupError(f"backup format {manifest.get('format')!r}, this version reads {FORMAT}")
    components = manifest["components"]
    if "progress" in components and components["progress"].get("kind") != "absent":
        recorded = manifest.get("id_hash_key_fingerprint")
        key = id_hash_key(environ)
        current = key_fingerprint(key) if key else None
        if recorded and recorded != current and not force:
            raise KeyMismatch(
                "the backup's progress records were hashed with another PROGRESS_ID_HASH_KEY than this "
                f"environment's ({'none set' if not key else 'fingerprint ' + current}, the backup's "
                f"{recorded}): set the key that made them, or pass --force (FORCE=1) to restore records "
                "that no ID suffix will match")
    urls = component_urls([name for name in components if components[name].get("kind") != "absent"],
                          endpoints, environ)
    restored_dumps = set()
    for name, entry in components.items():
        if entry.get("kind") == "absent" or name not in urls:
            continue
        url = urls[name]
        if entry["kind"] == "sqlite":
            path = sqlite_path(url)
            if path is None:
                raise BackupError(f"{name}: backed up from SQLite, now configured as {_mask(url)}: "
                                  "restore into the same kind of database")
            private_sqlite_file(path)  # 0600 in a 0700 folder, as every process makes it
            with contextlib.closing(sqlite3.connect(str(directory / entry["file"]))) as src, \
                    contextlib.closing(sqlite3.connect(str(path))) as dst:
                src.backup(dst)
            log(f"{name}: {directory / entry['file']} -> {path}")
        elif entry["kind"] == "postgresql":
            if not url.startswith("postgresql"):
                raise BackupError(f"{name}: backed up from PostgreSQL, now configured as {_mask(url)}")
            if entry["file"] in restored_dumps:
                continue
            settings, _schema = _pg_target(url)
            _ensure_database(settings, environ)
            _run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction",
                  "--dbname", settings["PGDATABASE"], str(directory / entry["file"])],
                 _pg_env(settings), f"pg_restore into {_mask(url)}")
            restored_dumps.add(entry["file"])
            log(f"{name}: {directory / entry['file']} -> {_mask(url)}")
    for name in components:
        if name in migrate.COMPONENTS and name in urls:
            before, after = migrate.upgrade(name, urls[name])
            if before != after:
                log(f"{name}: schema {before or 'none'} -> {after}")
    return manifest


class KeyMismatch(BackupError):
    """The backup's progress records need another PROGRESS_ID_HASH_KEY."""


def main(argv: Optional[List[str]] = None, environ: Mapping[str, str] = os.environ) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("backup", "restore"))
    parser.add_argument("directory", type=pathlib.Path)
    parser.add_argument("--endpoints", type=pathlib.Path, default=defaults.ROOT / "endpoints.yml",
                        help="the endpoints file naming the conversation store (production: "
                             "deploy/endpoints.production.yml with DB_*)")
    parser.add_argument("--only", default="", help=f"comma-separated, of {','.join(COMPONENTS)} (backup)")
    parser.add_argument("--force", action="store_true",
                        help="restore progress records although PROGRESS_ID_HASH_KEY differs from the backup's")
    args = parser.parse_args(argv)
    os.umask(0o077)
    only = [name.strip() for name in args.only.split(",") if name.strip()] or list(COMPONENTS)
    unknown = [name for name in only if name not in COMPONENTS]
    if unknown:
        print(f"unknown component(s) {unknown}: {', '.join(COMPONENTS)}", file=sys.stderr)
        return 2
    try:
        if args.action == "backup":
            backup(args.directory, args.endpoints, environ, only)
            print(f"backup written to {args.directory} (0700; keep PROGRESS_ID_HASH_KEY apart from it)")
        else:
            restore(args.directory, args.endpoints, environ, args.force)
            print(f"restored from {args.directory}")
    except KeyMismatch as error:
        print(f"refused: {error}", file=sys.stderr)
        return EXIT_KEY_MISMATCH
    except (BackupError, NotOurStore, RasaException, sa.exc.SQLAlchemyError, sqlite3.Error, OSError) as error:
        print(f"{args.action} failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

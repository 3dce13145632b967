"""Backup → wipe → restore (tools/backup.py, `make backup` / `make restore`, docs/deploy.md
"Backup and restore"), on the SQLite default and on PostgreSQL (databases of their own on
127.0.0.1:5432, dropped afterwards; unreachable: skipped locally, a failure under CI=true).

Brings back, each checked through the part that uses it:
- conversations: the tracker store (the endpoints file's) has the conversation's events again;
- progress records: the progress service, started on the restored database in production
  mode (PROGRESS_SCHEMA_AT_START=check), answers a lookup with the right ID suffix;
- console accounts: the web app signs the agent in (HTTP, with its CSRF token);
- the hotline codes: the code issued before the backup is found again.
And: the folder is 0700 and its files 0600; the manifest holds the ID-hash key's
fingerprint, never the key; restore refuses another key (nothing touched) unless forced;
a backup folder that is not empty is refused.
"""
import asyncio
import json
import os
import pathlib
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import time
import uuid

import pytest
import requests
import sqlalchemy as sa
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered

from channels.tracker_store import open_from_endpoints
from core.conversation_codes import CodeStore
from tests.progress.progress_helpers import EXAMPLE_CSV, ServiceProcess, new_secrets, run_import
from tests.support import PG_BASE, skip_or_fail
from tools import backup as backup_tool
from web.agents import AgentStore

ROOT = pathlib.Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
PASSWORD = "correct-horse-42"
SENDER = "web-backup-0001"
QUESTION = "门诊慢特病怎么申请"
APPLICATION, SUFFIX = "NC2025000101", "1234"  # progress_service/example_export.csv, first row


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Databases:
    """Where one test keeps everything: SQLite files in a state folder, or PostgreSQL
    databases of its own (the cluster's layout: conversations, console and codes in one
    database, the progress records in another)."""

    def __init__(self, kind: str, tmp_path: pathlib.Path):
        self.kind = kind
        self.state = tmp_path / "state"
        self.endpoints = tmp_path / "endpoints.yml"
        self.names = []
        if kind == "sqlite":
            self.main = None
            tracker = f"  dialect: sqlite\n  db: {self.state / 'rasa-tracker.db'}\n"
            self.progress_url = f"sqlite:///{self.state / 'progress.db'}"
            self.agent_env = {"AGENT_DB": str(self.state / "agents.db")}
            self.codes_url = f"sqlite:///{self.state / 'conversation-codes.db'}"
        else:
            self.admin = sa.create_engine(PG_BASE, future=True, isolation_level="AUTOCOMMIT")
            try:
                with self.admin.connect() as connection:
                    connection.execute(sa.text("select 1"))
            except Exception as error:  # noqa: BLE001 - any failure means: no PostgreSQL here
                self.admin.dispose()
                skip_or_fail(f"PostgreSQL not reachable at {PG_BASE}: {type(error).__name__}")
            base = sa.engine.make_url(PG_BASE)
            suffix = uuid.uuid4().hex[:10]
            self.names = [f"backup_test_{suffix}", f"backup_test_{suffix}_progress"]
            urls = [base.set(database=name).render_as_string(hide_password=False) for name in self.names]
            self.create()
            tracker = f"  dialect: postgresql\n  url: \"{urls[0]}\"\n"
            self.progress_url = urls[1]
            self.agent_env = {"AGENT_DATABASE_URL": urls[0]}
            self.codes_url = urls[0]
        self.endpoints.write_text("tracker_store:\n  type: channels.tracker_store.PrivateSQLTrackerStore\n" + tracker,
                                  encoding="utf-8")

    def env(self, secrets_env: dict) -> dict:
        env = {name: value for name, value in os.environ.items()
               if name not in ("AGENT_DB", "AGENT_DATABASE_URL", "PROGRESS_DEV_SECRETS_FILE")}
        env.update(secrets_env, PYTHONPATH=str(ROOT), PROGRESS_DATABASE_URL=self.progress_url,
                   CONVERSATION_CODES_DATABASE_URL=self.codes_url,
                   PROGRESS_DEV_SECRETS_FILE=str(self.state.parent / "no-secrets.env"), **self.agent_env)
        return env

    @property
    def agent_location(self) -> str:
        return self.agent_env.get("AGENT_DATABASE_URL") or self.agent_env["AGENT_DB"]

    def create(self):
        with self.admin.connect() as connection:
            for name in self.names:
                connection.execute(sa.text(f'create database "{name}"'))

    def wipe(self):
        if self.kind == "sqlite":
            shutil.rmtree(self.state)
            return
        with self.admin.connect() as connection:
            for name in self.names:
                connection.execute(sa.text(f'drop database if exists "{name}" with (force)'))

    def tables(self, url: str) -> set:
        if self.kind == "sqlite" and not pathlib.Path(sa.engine.make_url(url).database).exists():
            return set()
        engine = sa.create_engine(url, future=True)
        try:
            return set(sa.inspect(engine).get_table_names())
        except sa.exc.OperationalError:  # the database does not exist (wiped)
            return set()
        finally:
            engine.dispose()

    def close(self):
        if self.kind != "sqlite":
            self.wipe()
            self.admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def databases(request, tmp_path):
    if request.param == "postgresql" and not shutil.which("pg_dump"):
        skip_or_fail("pg_dump/pg_restore not installed (Debian: postgresql-client)")
    found = Databases(request.param, tmp_path)
    yield found
    found.close()


def converse(endpoints: pathlib.Path) -> None:
    """One turn saved the way Rasa saves it."""
    store = open_from_endpoints(str(endpoints))

    async def go():
        tracker = await store.retrieve(SENDER) or store.init_tracker(SENDER)
        now = time.time()
        tracker.update_with_events([
            UserUttered(QUESTION, {"name": "ask_how_to_apply", "confidence": 0.99}, timestamp=now),
            BotUttered("可以在「四川医保」App 里申请。", timestamp=now),
            ActionExecuted("action_listen", timestamp=now)], Domain.empty(), override_timestamp=False)
        await store.save(tracker)
    try:
        asyncio.run(go())
    finally:
        store.close()


def stored_texts(endpoints: pathlib.Path) -> list:
    store = open_from_endpoints(str(endpoints))
    try:
        return [event.get("text") for event in store.conversation_events(SENDER)]
    finally:
        store.close()


def run_tool(env: dict, *args) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "tools.backup", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


def sign_in(env: dict) -> int:
    """Start the web app on the restored console database and sign in: the status code."""
    port = free_port()
    web_env = {**env, "WEB_PORT": str(port), "RASA_URL": "http://127.0.0.1:9", "RASA_AUTH_TOKEN": "t0ken",
               "PROGRESS_SERVICE_URL": "http://127.0.0.1:9"}
    process = subprocess.Popen([PYTHON, "-m", "web"], cwd=ROOT, env=web_env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "the web app did not start"
            time.sleep(0.3)
        http = requests.Session()
        http.get(f"{url}/agent", timeout=10)
        reply = http.post(f"{url}/agent/api/login", json={"username": "li", "password": PASSWORD},
                          headers={"X-CSRF-Token": http.cookies.get("agent_csrf")}, timeout=20)
        return reply.status_code
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def test_backup_wipe_restore_brings_everything_back(databases, tmp_path):
    secrets_env = new_secrets()
    env = databases.env(secrets_env)
    # --- what there is before -------------------------------------------------------------
    converse(databases.endpoints)
    imported = run_import(EXAMPLE_CSV, databases.progress_url, secrets_env)
    assert imported.returncode == 0, imported.stderr
    store = AgentStore(databases.agent_location)
    store.add_agent("li", PASSWORD)
    store.close()
    codes = CodeStore(databases.codes_url, key="code-key-for-the-test")
    code = codes.issue(SENDER).code
    codes.close()
    assert QUESTION in stored_texts(databases.endpoints)

    # --- backup ---------------------------------------------------------------------------
    folder = tmp_path / "backups" / "2026-12-03"
    done = run_tool(env, "backup", str(folder), "--endpoints", str(databases.endpoints))
    assert done.returncode == 0, done.stdout + done.stderr
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = sorted(path.name for path in folder.iterdir())
    assert all(stat.S_IMODE((folder / name).stat().st_mode) == 0o600 for name in files), files
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert set(manifest["components"]) == {"tracker", "progress", "console", "codes"}
    assert manifest["id_hash_key_fingerprint"] == backup_tool.key_fingerprint(secrets_env["PROGRESS_ID_HASH_KEY"])
    everything = b"".join((folder / name).read_bytes() for name in files)
    assert secrets_env["PROGRESS_ID_HASH_KEY"].encode() not in everything
    assert PASSWORD.encode() not in everything
    if databases.kind == "postgresql":  # one dump per database: the cluster's layout
        assert [sorted(dump["components"]) for dump in manifest["postgresql_dumps"]] == [
            ["codes", "console", "tracker"], ["progress"]]
    # a second backup into the same (not empty) folder is refused
    assert run_tool(env, "backup", str(folder), "--endpoints", str(databases.endpoints)).returncode == 1

    # --- wipe -----------------------------------------------------------------------------
    databases.wipe()
    assert "progress_applications" not in databases.tables(databases.progress_url)

    # --- restore with another ID-hash key: refused, nothing touched ---------------------------
    other = run_tool({**env, "PROGRESS_ID_HASH_KEY": secrets.token_urlsafe(16)}, "restore", str(folder),
                     "--endpoints", str(databases.endpoints))
    assert other.returncode == 3, other.stdout + other.stderr
    assert "PROGRESS_ID_HASH_KEY" in other.stderr and secrets_env["PROGRESS_ID_HASH_KEY"] not in other.stderr
    assert "progress_applications" not in databases.tables(databases.progress_url)

    # --- restore --------------------------------------------------------------------------
    done = run_tool(env, "restore", str(folder), "--endpoints", str(databases.endpoints))
    assert done.returncode == 0, done.stdout + done.stderr
    if databases.kind == "sqlite":
        assert stat.S_IMODE(databases.state.stat().st_mode) == 0o700
        assert all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in databases.state.glob("*.db"))

    # conversations
    assert QUESTION in stored_texts(databases.endpoints)
    # progress records: a lookup through the service's HTTP API, on the schema as restored
    service = ServiceProcess(databases.progress_url, secrets_env, tmp_path / "progress.log",
                             PROGRESS_SCHEMA_AT_START="check")
    try:
        status, body, _ = service.request("GET", f"/api/v1/applications/{APPLICATION}",
                                          {"X-API-Key": secrets_env["PROGRESS_API_KEY"], "X-Id-Last4": SUFFIX})
        assert status == 200, body
        assert body["application_no"] == APPLICATION
    finally:
        service.stop()
    # console accounts: sign-in through the web app
    assert sign_in(env) == 200
    # the hotline code
    codes = CodeStore(databases.codes_url)
    try:
        found = codes.find(code)
        assert found is not None and found.sender_id == SENDER
    finally:
        codes.close()


def test_restore_with_force_accepts_another_key_and_missing_backups_are_refused(tmp_path):
    """SQLite only (quick): --force restores records the current key cannot match."""
    databases = Databases("sqlite", tmp_path)
    secrets_env = new_secrets()
    env = databases.env(secrets_env)
    assert run_import(EXAMPLE_CSV, databases.progress_url, secrets_env).returncode == 0
    folder = tmp_path / "backup"
    assert run_tool(env, "backup", str(folder), "--endpoints", str(databases.endpoints),
                    "--only", "progress").returncode == 0
    databases.wipe()
    other = {**env, "PROGRESS_ID_HASH_KEY": secrets.token_urlsafe(16)}
    assert run_tool(other, "restore", str(folder), "--endpoints", str(databases.endpoints)).returncode == 3
    forced = run_tool(other, "restore", str(folder), "--endpoints", str(databases.endpoints), "--force")
    assert forced.returncode == 0, forced.stderr
    assert "progress_applications" in databases.tables(databases.progress_url)
    missing = run_tool(env, "restore", str(tmp_path / "nothing-here"), "--endpoints", str(databases.endpoints))
    assert missing.returncode == 1 and "manifest.json" in missing.stderr



def test_make_targets_run_the_command():
    """`make backup DIR=…` / `make restore DIR=… FORCE=1` (dry run: nothing is executed)."""
    def dry(*args):
        done = subprocess.run(["make", "--no-print-directory", "-n", *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]
    assert dry("backup", "DIR=/b k").endswith('-m tools.backup backup "/b k" --endpoints "endpoints.yml"')
    assert dry("restore", "DIR=/b", "ENDPOINTS=deploy/endpoints.production.yml", "FORCE=1").endswith(
        '-m tools.backup restore "/b" --endpoints "deploy/endpoints.production.yml" --force')
    assert "--force" not in dry("restore", "DIR=/b")
    usage = subprocess.run(["make", "--no-print-directory", "backup"], cwd=ROOT, capture_output=True, text=True,
                           timeout=300)
    assert usage.returncode != 0 and "usage: make backup DIR=" in usage.stdout

if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))

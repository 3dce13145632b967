"""The console's state shared by several web replicas (issue 18): accounts, sessions and
audit through SQLAlchemy (the SQLite file as before, or PostgreSQL), the throttles in Redis.

PostgreSQL (database `test`, user postgres, 127.0.0.1:5432) is used in a schema of each
test's own, dropped afterwards; Redis (127.0.0.1:6379) under a key prefix of each test's
own, deleted afterwards. Without them the tests skip locally and fail under CI=true.
"""
import asyncio
import os
import pathlib
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid

import pytest
import requests

from tests.support import postgres_schema, skip_or_fail
from web import limits
from web.agents import AgentStore, hash_password

from test_web_console_api import PASSWORD, free_port

ROOT = pathlib.Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("WEB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

# what web/agents.py created before it used SQLAlchemy (sqlite3, this exact script)
OLD_SCHEMA = """
CREATE TABLE IF NOT EXISTS agents (
    username      TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    created_at    REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,
    username   TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_seen  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       REAL NOT NULL,
    username TEXT NOT NULL,
    kind     TEXT NOT NULL,
    subject  TEXT NOT NULL,
    outcome  TEXT NOT NULL
);
"""


@pytest.fixture
def pg_url():
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    with postgres_schema("web_test") as url:
        yield url


@pytest.fixture
def redis_prefix():
    """A key prefix of this test's own; every key under it is deleted afterwards."""
    host, port = "127.0.0.1", 6379
    try:
        with socket.create_connection((host, port), timeout=2):
            pass
    except OSError:
        skip_or_fail(f"the shared console throttle tests need Redis at {host}:{port}")
    import redis

    prefix = f"test:web:{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


# --- the SQLite file of the earlier version -----------------------------------------------
def test_an_agents_db_made_by_the_earlier_version_keeps_working(tmp_path):
    path = tmp_path / "agents.db"
    with sqlite3.connect(str(path)) as db:  # as the sqlite3 version wrote it
        db.executescript(OLD_SCHEMA)
        db.execute("INSERT INTO agents VALUES (?,?,?)", ("li", hash_password(PASSWORD), time.time()))
        db.execute("INSERT INTO audit(at, username, kind, subject, outcome) VALUES (?,?,?,?,?)",
                   (time.time(), "li", "application", "NC********23", "found"))
    store = AgentStore(path)
    assert store.list_agents() == ["li"] and store.check_password("li", PASSWORD)
    token, csrf = store.open_session("li")
    assert store.touch_session(token) == ("li", csrf)
    store.audit("li", "question", "", "knowledge")
    assert [row["outcome"] for row in store.audit_rows()] == ["knowledge", "found"]
    store.close()
    with sqlite3.connect(str(path)) as db:  # readable as before, ids still AUTOINCREMENT
        assert db.execute("SELECT id, kind FROM audit ORDER BY id").fetchall() == [
            (1, "application"), (2, "question")]
        assert "AUTOINCREMENT" in db.execute(
            "SELECT sql FROM sqlite_master WHERE name='audit'").fetchone()[0]
        assert db.execute("SELECT name FROM sqlite_master WHERE type='index' AND name='audit_username_at'").fetchone()
        assert db.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='devices'").fetchone()
    # ... and the earlier version could still read what this one wrote
    with sqlite3.connect(str(path)) as db:
        db.executescript(OLD_SCHEMA)
        assert db.execute("SELECT username FROM sessions").fetchall() == [("li",)]


def test_the_command_line_and_the_web_app_use_agent_database_url(tmp_path, pg_url):
    env = dict(os.environ, AGENT_DATABASE_URL=pg_url, PASSWORD=PASSWORD, PYTHONPATH=str(ROOT))
    env.pop("AGENT_DB", None)
    done = subprocess.run([sys.executable, "-m", "web.agents", "add", "zhou"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "postgresql" in done.stdout and "zhou" in done.stdout
    assert AgentStore(pg_url).check_password("zhou", PASSWORD)


# --- PostgreSQL --------------------------------------------------------------------------
def test_two_replicas_share_accounts_sessions_and_audit_on_postgresql(pg_url):
    first, second = AgentStore(pg_url), AgentStore(pg_url)
    try:
        assert first.add_agent("li", PASSWORD) is True
        assert second.check_password("li", PASSWORD) and not second.check_password("li", "nope-nope-nope")
        token, csrf = first.open_session("li")
        assert second.touch_session(token) == ("li", csrf)
        second.close_session(token)
        assert first.touch_session(token) is None
        first.audit("li", "application", "NC********23", "found")
        assert second.audit_rows()[0]["subject"] == "NC********23"
        token, _ = first.open_session("li")
        assert second.add_agent("li", PASSWORD + "-new") is False  # a new password ends sessions
        assert first.touch_session(token) is None
    finally:
        first.close()
        second.close()


def test_lookup_limits_hold_across_replicas_under_a_parallel_burst_on_postgresql(pg_url):
    stores = [AgentStore(pg_url), AgentStore(pg_url)]
    stores[0].add_agent("li", PASSWORD)
    granted = []
    start = threading.Barrier(16)

    def take(store):
        start.wait()
        if store.reserve("li", "application", "NC********23", [(5, 600), (300, 86400)]) is not None:
            granted.append(1)

    threads = [threading.Thread(target=take, args=(stores[i % 2],)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    try:
        assert len(granted) == 5  # never more, whichever replica served
        outcomes = [row["outcome"] for row in stores[1].audit_rows(100)]
        assert outcomes.count("pending") == 5 and outcomes.count("rate_limited") == 11
    finally:
        for store in stores:
            store.close()


# --- Redis -------------------------------------------------------------------------------
def test_two_replicas_count_the_same_sign_in_failures_in_redis(redis_prefix):
    import redis

    clock = [1_000_000.0]

    async def scenario():
        first = limits.RedisCounters(REDIS_URL, prefix=redis_prefix)
        second = limits.RedisCounters(REDIS_URL, prefix=redis_prefix)
        a = limits.SignInGuard(first, clock=lambda: clock[0])
        b = limits.SignInGuard(second, clock=lambda: clock[0])
        for index in range(limits.ACCOUNT_FREE):
            guard = a if index % 2 else b
            await guard.failed("li", f"10.0.0.{index}")
        assert await a.wait_seconds("li", "10.9.9.9") == limits.ACCOUNT_BASE_DELAY
        assert await b.wait_seconds("li", "10.9.9.9") == limits.ACCOUNT_BASE_DELAY
        clock[0] += limits.ACCOUNT_WINDOW + 1  # our clock, not Redis's, ends the window
        assert await b.wait_seconds("li", "10.9.9.9") == 0
        await a.failed("wang", "10.0.0.1")
        await b.succeeded("wang")
        assert (await first.state("login:account:wang", clock[0], 3600))[0] == 0
        for store in (first, second):
            assert not store.fallback._data  # Redis answered: nothing counted locally
            await store.close()

    asyncio.run(scenario())
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        keys = list(client.scan_iter(match=f"{redis_prefix}:*"))
        assert keys and all(0 < client.pttl(key) <= limits.ACCOUNT_WINDOW * 1000 + 1 for key in keys)
    finally:
        client.close()


# --- two web app processes ---------------------------------------------------------------
def _spawn(env_extra: dict, log: pathlib.Path):
    port = free_port()
    closed = f"http://127.0.0.1:{free_port()}"
    env = {name: value for name, value in os.environ.items()
           if name not in ("AGENT_DB", "AGENT_DATABASE_URL", "WEB_STATE_REDIS_URL")}
    env.update(PYTHONPATH=str(ROOT), WEB_PORT=str(port), RASA_URL=closed, PROGRESS_SERVICE_URL=closed,
               RASA_AUTH_TOKEN="t0ken", PROGRESS_AGENT_SECRET="s3cret", PROGRESS_API_KEY="k3y", **env_extra)
    process = subprocess.Popen([sys.executable, "-m", "web"], cwd=ROOT, env=env, stdout=log.open("wb"),
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return f"http://127.0.0.1:{port}", process, log


def _ready(started):
    url, process, log = started
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/health", timeout=1).status_code == 200:
                return url, process
        except requests.RequestException:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("web app did not start:\n" + log.read_text(errors="replace"))


def _start(env_extra: dict, log: pathlib.Path):
    return _ready(_spawn(env_extra, log))


def test_two_web_processes_share_sessions_and_sign_in_failures(tmp_path, pg_url, redis_prefix):
    AgentStore(pg_url).add_agent("li", PASSWORD)
    shared = {"AGENT_DATABASE_URL": pg_url, "WEB_STATE_REDIS_URL": REDIS_URL,
              "WEB_STATE_REDIS_PREFIX": redis_prefix, "AGENT_DB": str(tmp_path / "unused.db")}
    started = [_spawn(shared, tmp_path / f"web-{index}.log") for index in range(2)]  # in parallel
    apps = [_ready(one) for one in started]
    (url_a, _), (url_b, _) = apps
    try:
        # a session opened on A works on B (me, a CSRF-checked search, sign-out)
        http = requests.Session()
        http.get(f"{url_a}/agent", timeout=5)
        signed = http.post(f"{url_a}/agent/api/login", json={"username": "li", "password": PASSWORD},
                           headers={"X-CSRF-Token": http.cookies.get("agent_csrf")}, timeout=15)
        assert signed.status_code == 200
        csrf = signed.json()["csrf"]
        assert http.get(f"{url_b}/agent/api/me", timeout=5).json()["user"] == "li"
        assert http.post(f"{url_b}/agent/api/search", json={"q": "NC2025000123"},
                         headers={"X-CSRF-Token": csrf}, timeout=15).status_code == 200
        assert http.post(f"{url_b}/agent/api/logout", headers={"X-CSRF-Token": csrf},
                         timeout=5).status_code == 200
        assert http.get(f"{url_a}/agent/api/me", timeout=5).status_code == 401
        assert not (tmp_path / "unused.db").exists()

        # failed sign-ins on A count on B: 3 there and 2 here reach the limit of 5
        def attempt(url, password):
            page = requests.get(f"{url}/agent", timeout=5)
            token = page.cookies.get("agent_csrf")
            return requests.post(f"{url}/agent/api/login", json={"username": "li", "password": password},
                                 cookies={"agent_csrf": token}, headers={"X-CSRF-Token": token},
                                 timeout=15).status_code

        assert [attempt(url_a, "wrong-guess-1") for _ in range(3)] == [401] * 3
        assert [attempt(url_b, "wrong-guess-2") for _ in range(2)] == [401] * 2
        assert attempt(url_a, PASSWORD) == 429 and attempt(url_b, PASSWORD) == 429
    finally:
        for _, process in apps:
            process.terminate()
            process.wait(timeout=10)


def test_a_web_process_with_redis_down_still_signs_in_and_throttles(tmp_path):
    db = tmp_path / "agents.db"
    AgentStore(db).add_agent("li", PASSWORD)
    log = tmp_path / "web.log"
    url, process = _start({"AGENT_DB": str(db), "WEB_STATE_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}, log)
    try:
        def attempt(password):
            page = requests.get(f"{url}/agent", timeout=5)
            token = page.cookies.get("agent_csrf")
            return requests.post(f"{url}/agent/api/login", json={"username": "li", "password": password},
                                 cookies={"agent_csrf": token}, headers={"X-CSRF-Token": token},
                                 timeout=15).status_code

        assert attempt(PASSWORD) == 200
        assert [attempt("wrong-guess-3") for _ in range(5)] == [401] * 5
        assert attempt(PASSWORD) == 429
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert "Redis" in log.read_text(errors="replace") and "unreachable" in log.read_text(errors="replace")

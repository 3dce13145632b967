"""Readiness routes (docs/deploy.md, "Readiness"): 200 when what the process depends on
answers, 503 naming what does not (never where it is), liveness unchanged.

The real PostgreSQL and Redis are made unreachable for one process through a loopback
forwarder the test cuts (tests/foundation/ops_support.py); upstreams (Rasa for the web
app, the progress service for the action server) are a stub that answers or a closed port.
"""
import asyncio
import secrets
import sys
import urllib.parse

import pytest

from channels import health
from tests.foundation.ops_support import (
    StubHttp, TcpProxy, free_port, get_json, start_process, wait_for,
)
from tests.support import PG_BASE, postgres_schema, skip_or_fail

REDIS_PORT = 6379


def _pg_port() -> int:
    return urllib.parse.urlsplit(PG_BASE).port or 5432


def _via(url: str, port: int) -> str:
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=(netloc[0] + "@" + host) if len(netloc) == 2 else host))


def _redis_or_skip():
    import redis
    try:
        redis.Redis(host="127.0.0.1", port=REDIS_PORT, socket_timeout=2).ping()
    except Exception as error:  # noqa: BLE001
        skip_or_fail(f"Redis not reachable at 127.0.0.1:{REDIS_PORT}: {type(error).__name__}")


def _no_secret_in(body) -> None:
    text = str(body)
    assert "postgresql://" not in text and "redis://" not in text and "127.0.0.1" not in text


def test_the_progress_service_is_not_ready_while_its_database_is_unreachable(tmp_path):
    with postgres_schema("ready") as url:
        proxy = TcpProxy(_pg_port())
        port = free_port()
        env = {"PROGRESS_HOST": "127.0.0.1", "PROGRESS_PORT": str(port),
               "PROGRESS_DATABASE_URL": _via(url, proxy.port),
               **{name: secrets.token_urlsafe(16) for name in (
                   "PROGRESS_API_KEY", "PROGRESS_AGENCY_KEY", "PROGRESS_ID_HASH_KEY",
                   "PROGRESS_AGENT_SECRET")}}
        base = f"http://127.0.0.1:{port}"
        stack = start_process("progress", [sys.executable, "-m", "progress_service.app"], env,
                              f"{base}/health", tmp_path / "progress.log")
        try:
            assert get_json(f"{base}/ready") == (200, {"status": "ready"})
            proxy.cut()
            status, body = get_json(f"{base}/ready")
            assert status == 503 and body == {"status": "not ready", "failed": ["database"]}
            _no_secret_in(body)
            assert get_json(f"{base}/health") == (200, {"status": "ok"})  # liveness stays
            proxy.restore()
            assert wait_for(lambda: get_json(f"{base}/ready")[0] == 200)
        finally:
            stack.stop()
            proxy.cut()


def test_the_web_app_is_ready_only_with_its_database_redis_and_rasa(tmp_path):
    _redis_or_skip()
    redis_proxy = TcpProxy(REDIS_PORT)
    rasa = StubHttp()
    port = free_port()
    env = {"WEB_HOST": "127.0.0.1", "WEB_PORT": str(port),
           "RASA_URL": f"http://127.0.0.1:{rasa.port}",
           "WEB_STATE_REDIS_URL": f"redis://127.0.0.1:{redis_proxy.port}/0",
           "WEB_STATE_REDIS_PREFIX": f"ready-test-{secrets.token_hex(4)}",
           "AGENT_DB": str(tmp_path / "agents.db"),
           "PROGRESS_SERVICE_URL": f"http://127.0.0.1:{free_port()}"}
    base = f"http://127.0.0.1:{port}"
    stack = start_process("web", [sys.executable, "-m", "web"], env, f"{base}/health", tmp_path / "web.log")
    try:
        assert get_json(f"{base}/ready") == (200, {"status": "ready"})
        redis_proxy.cut()
        status, body = get_json(f"{base}/ready")
        assert status == 503 and body["failed"] == ["redis"], body
        rasa.stop()
        status, body = get_json(f"{base}/ready")
        assert status == 503 and body == {"status": "not ready", "failed": ["rasa", "redis"]}
        _no_secret_in(body)
        assert get_json(f"{base}/health") == (200, {"status": "ok"})
        redis_proxy.restore()
        rasa.start()
        assert wait_for(lambda: get_json(f"{base}/ready")[0] == 200)
    finally:
        stack.stop()
        redis_proxy.cut()
        rasa.stop()


def test_the_action_server_is_ready_only_while_the_progress_service_answers(tmp_path):
    progress = StubHttp()
    port = free_port()
    env = {"ACTION_SERVER_TOKEN": secrets.token_urlsafe(16), "ACTIONS_HOST": "127.0.0.1",
           "PROGRESS_SERVICE_URL": f"http://127.0.0.1:{progress.port}"}
    base = f"http://127.0.0.1:{port}"
    stack = start_process("actions", [sys.executable, "-m", "actions.server", "--port", str(port)],
                          env, f"{base}/health", tmp_path / "actions.log")
    try:
        assert get_json(f"{base}/ready") == (200, {"status": "ready"})  # no token needed
        assert any(path == "/health" for _, path, _ in progress.seen)
        progress.stop()
        status, body = get_json(f"{base}/ready")
        assert status == 503 and body == {"status": "not ready", "failed": ["progress_service"]}
        _no_secret_in(body)
        progress.start()
        assert wait_for(lambda: get_json(f"{base}/ready")[0] == 200)
    finally:
        stack.stop()
        progress.stop()


class _Agent:
    """What channels/health.py reads of Rasa's agent: the two stores and is_ready()."""

    def __init__(self, tracker_store, lock_store):
        self.tracker_store, self.lock_store = tracker_store, lock_store

    def is_ready(self):
        return True


class _App:
    def __init__(self, agent):
        self.ctx = type("Ctx", (), {"agent": agent})()


def test_rasas_readiness_needs_the_tracker_store_and_the_lock_store():
    from rasa.core.lock_store import RedisLockStore
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain

    _redis_or_skip()
    with postgres_schema("ready_rasa") as url:
        schema = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["options"][0]
        parts = urllib.parse.urlsplit(PG_BASE)
        pg_proxy, redis_proxy = TcpProxy(parts.port or 5432), TcpProxy(REDIS_PORT)
        try:
            tracker_store = SQLTrackerStore(
                Domain.empty(), dialect="postgresql", host="127.0.0.1", port=pg_proxy.port,
                db=parts.path.lstrip("/"), username=parts.username, password=parts.password,
                query={"options": schema})
            lock_store = RedisLockStore(host="127.0.0.1", port=redis_proxy.port,
                                        key_prefix=f"ready{secrets.token_hex(4)}")
            app = _App(_Agent(tracker_store, lock_store))
            assert asyncio.run(health.readiness(app)) == (200, {"status": "ready"})
            redis_proxy.cut()
            assert asyncio.run(health.readiness(app)) == (
                503, {"status": "not ready", "failed": ["lock_store"]})
            pg_proxy.cut()
            assert asyncio.run(health.readiness(app)) == (
                503, {"status": "not ready", "failed": ["tracker_store", "lock_store"]})
            assert asyncio.run(health.readiness(_App(None)))[1]["failed"] == [
                "model", "tracker_store", "lock_store"]
            redis_proxy.restore()
            pg_proxy.restore()
            assert asyncio.run(health.readiness(app)) == (200, {"status": "ready"})
            tracker_store.engine.dispose()
        finally:
            pg_proxy.cut()
            redis_proxy.cut()


@pytest.mark.xdist_group("shared_stack")
def test_the_running_stack_is_ready(running_stack):
    settings = running_stack.settings
    assert get_json(f"http://127.0.0.1:{settings.rasa_port}/webhooks/web/ready") == (200, {"status": "ready"})
    assert get_json(f"http://127.0.0.1:{settings.progress_port}/ready") == (200, {"status": "ready"})
    assert get_json(f"http://127.0.0.1:{settings.actions_port}/ready") == (200, {"status": "ready"})
    assert get_json(f"http://127.0.0.1:{settings.web_port}/ready") == (200, {"status": "ready"})
    # the stack waits for readiness where it has a route for it
    services = {service.name: service for service in running_stack.stack.services}
    assert services["rasa"].ready_url.endswith("/webhooks/web/ready")
    assert services["progress"].ready_url.endswith("/ready")


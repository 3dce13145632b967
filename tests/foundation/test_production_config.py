"""deploy/endpoints.production.yml: PostgreSQL tracker store + Redis lock store.

Runs against this machine's PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379).
Without them the test skips locally and fails under CI=true.
"""
import json
import socket
import uuid

import pytest

from tests.conftest import ROOT
from tests.support import skip_or_fail

PG = ("127.0.0.1", 5432)
REDIS = ("127.0.0.1", 6379)


def _reachable(address) -> bool:
    try:
        with socket.create_connection(address, timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture
def production_env():
    missing = [name for name, addr in (("PostgreSQL 127.0.0.1:5432", PG), ("Redis 127.0.0.1:6379", REDIS))
               if not _reachable(addr)]
    if missing:
        skip_or_fail("production configuration test needs " + " and ".join(missing))
    import psycopg2
    import redis

    database = "rasa_test_" + uuid.uuid4().hex[:10]
    env = {
        "DB_HOST": "127.0.0.1", "DB_PORT": "5432", "DB_USER": "postgres", "DB_PASSWORD": "",
        "DB_NAME": database, "DB_LOGIN_DB": "test",
        "REDIS_HOST": "127.0.0.1", "REDIS_PORT": "6379", "REDIS_PASSWORD": "", "REDIS_DB": "0",
    }
    yield env
    connection = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="test")
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    connection.close()
    redis.Redis(host="127.0.0.1", port=6379).close()


def test_conversation_events_land_in_postgresql(production_env, trained_model, tmp_path):
    import os

    import psycopg2

    from tests.conftest import make_settings, start_stack

    settings = make_settings(tmp_path / "state", trained_model)
    settings.endpoints = ROOT / "deploy" / "endpoints.production.yml"
    environ = dict(os.environ)
    environ.update(production_env)
    environ["ACTION_ENDPOINT_URL"] = f"http://127.0.0.1:{settings.actions_port}/webhook"
    handle = start_stack(settings, environ)
    try:
        assert "小助手" in handle.say_text("prod-u1", "你好")
        assert "12393" in handle.say_text("prod-u1", "明天会下雨吗")
    finally:
        handle.stack.stop()

    connection = psycopg2.connect(host="127.0.0.1", user="postgres", dbname=production_env["DB_NAME"])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT type_name, data FROM events WHERE sender_id = %s ORDER BY id", ("rest:prod-u1",)
        )
        rows = cursor.fetchall()
    connection.close()
    user_texts = [json.loads(row[1])["text"] for row in rows if row[0] == "user"]
    assert user_texts == ["你好", "明天会下雨吗"]
    assert any(row[0] == "bot" for row in rows)
    # nothing was written to the embedded SQLite store
    assert not (tmp_path / "state" / "rasa-tracker.db").exists()

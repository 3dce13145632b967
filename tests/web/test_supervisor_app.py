"""The supervisor page's API in the real web process on a PostgreSQL conversation store
(written as Rasa writes it), and with a store it cannot read: never a 500, audited."""
import sqlite3
import time

import pytest
import requests
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SessionStarted

from channels.tracker_store import PrivateSQLTrackerStore
from tests.conftest import ROOT
from tests.support import postgres_schema
from tests.web.test_supervisor_clusters import clarified, save
from tests.web.test_web_console_api import PASSWORD, start_web
from web.agents import SUPERVISOR, AgentStore

CLOSED = "http://127.0.0.1:9"  # nothing listens: the page needs neither Rasa nor progress


def supervisor_session(app):
    store = AgentStore(app.db)
    store.add_agent("boss", PASSWORD, role=SUPERVISOR)
    store.close()
    http = requests.Session()
    http.get(f"{app.url}/agent", timeout=5)
    reply = http.post(f"{app.url}/agent/api/login", json={"username": "boss", "password": PASSWORD},
                      headers={"X-CSRF-Token": http.cookies.get("agent_csrf")}, timeout=10)
    assert reply.status_code == 200, reply.text
    return http, reply.json()["csrf"]


def audit(app):
    with sqlite3.connect(str(app.db)) as db:
        return db.execute("SELECT username, kind, outcome FROM audit ORDER BY id").fetchall()


@pytest.fixture
def stopped():
    apps = []
    yield apps.append
    for app in apps:
        app.process.terminate()
        app.process.wait(timeout=10)


def test_the_page_reads_a_postgresql_store(tmp_path, stopped):
    domain = Domain.load(str(ROOT / "domain"))
    with postgres_schema("supervisor_app") as url:
        store = PrivateSQLTrackerStore(domain=domain, purge_in_background=False, dialect="postgresql", host=url)
        now = time.time()
        start = [ActionExecuted("action_session_start", timestamp=now - 60), SessionStarted(timestamp=now - 60),
                 ActionExecuted("action_listen", timestamp=now - 60)]
        save(store, "oOpenIdOfSomeone0001", start + clarified("异地就医怎么备案", now - 50), domain)
        save(store, "web-visitor-0002", start + clarified("異地就醫怎麼備案呢", now - 40), domain)
        store.close()
        endpoints = tmp_path / "endpoints.yml"
        endpoints.write_text("tracker_store:\n  type: channels.tracker_store.PrivateSQLTrackerStore\n"
                             f"  dialect: postgresql\n  url: \"{url}\"\n", encoding="utf-8")
        app = start_web(tmp_path, rasa_url=CLOSED, progress_url=CLOSED, TRACKER_ENDPOINTS=str(endpoints))
        stopped(app)
        http, csrf = supervisor_session(app)
        reply = http.post(f"{app.url}/agent/api/supervisor/questions", json={}, headers={"X-CSRF-Token": csrf},
                          timeout=60)
        assert reply.status_code == 200, reply.text
        data = reply.json()
        assert data["rows"] == 2 and data["totals"] == {"clarification": 2}
        assert [[q["text"] for q in c["questions"]] for c in data["clusters"]] == [["异地就医怎么备案", "異地就醫怎麼備案呢"]]
        assert "oOpenId" not in reply.text and "web-visitor" not in reply.text
        assert audit(app)[-1] == ("boss", "supervisor_view", "shown")


def test_a_store_it_cannot_read_is_unavailable_not_a_server_error(tmp_path, stopped):
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text("tracker_store:\n  type: mongod\n  url: mongodb://127.0.0.1:9\n", encoding="utf-8")
    app = start_web(tmp_path, rasa_url=CLOSED, progress_url=CLOSED, TRACKER_ENDPOINTS=str(endpoints))
    stopped(app)
    http, csrf = supervisor_session(app)
    for path, body in (("questions", {}), ("export", {"keys": ["x"]})):
        reply = http.post(f"{app.url}/agent/api/supervisor/{path}", json=body, headers={"X-CSRF-Token": csrf},
                          timeout=60)
        assert reply.status_code == 200 and reply.json()["kind"] == "unavailable", reply.text
        assert "mongodb" not in reply.text
    assert audit(app)[-2:] == [("boss", "supervisor_view", "unavailable"), ("boss", "supervisor_export", "unavailable")]

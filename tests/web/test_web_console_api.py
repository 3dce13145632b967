"""The console's HTTP API on its own (no Rasa needed): sessions, CSRF, time-outs.

The web app runs as its own process, as in `make run`. Rasa is either absent (closed
port) or a stand-in that answers too late, to check the 2-second fallback.
"""
import http.server
import os
import pathlib
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests

from web.agents import AgentStore

ROOT = pathlib.Path(__file__).resolve().parents[2]
PASSWORD = "correct-horse-42"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SlowHandler(http.server.BaseHTTPRequestHandler):
    """Answers every request, but only after 5 seconds."""

    def do_POST(self):
        time.sleep(5)
        body = b'{"intent": {"name": "ask_materials", "confidence": 0.99}, "entities": []}'
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass

    do_GET = do_POST

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def slow_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class WebApp:
    def __init__(self, url: str, db: pathlib.Path, process: subprocess.Popen):
        self.url, self.db, self.process = url, db, process

    def signed_in(self):
        """A requests session that loaded /agent and signed in: (session, csrf)."""
        http = requests.Session()
        http.get(f"{self.url}/agent", timeout=5)
        reply = http.post(
            f"{self.url}/agent/api/login", json={"username": "li", "password": PASSWORD},
            headers={"X-CSRF-Token": http.cookies.get("agent_csrf")}, timeout=10,
        )
        assert reply.status_code == 200, reply.text
        return http, reply.json()["csrf"]


def start_web(tmp_path, rasa_url: str, progress_url: str, **extra_env) -> WebApp:
    port = free_port()
    db = tmp_path / "agents.db"
    AgentStore(db).add_agent("li", PASSWORD)
    env = dict(os.environ, PYTHONPATH=str(ROOT), WEB_PORT=str(port), AGENT_DB=str(db),
               RASA_URL=rasa_url, PROGRESS_SERVICE_URL=progress_url, RASA_AUTH_TOKEN="t0ken",
               PROGRESS_AGENT_SECRET="s3cret", PROGRESS_API_KEY="k3y", **extra_env)
    process = subprocess.Popen([sys.executable, "-m", "web"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/health", timeout=1).status_code == 200:
                return WebApp(url, db, process)
        except requests.RequestException:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("web app did not start")


@pytest.fixture(scope="module")
def web(tmp_path_factory, slow_server):
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    app = start_web(tmp_path_factory.mktemp("web"), rasa_url=slow_server, progress_url=closed)
    yield app
    app.process.terminate()
    app.process.wait(timeout=10)


def test_every_console_api_answers_401_without_a_session(web):
    for method, path in [("GET", "me"), ("POST", "search"), ("POST", "logout"), ("GET", "audit"),
                         ("GET", "search"), ("DELETE", "me"), ("PUT", "logout")]:
        reply = requests.request(method, f"{web.url}/agent/api/{path}", json={"q": "x"}, timeout=5)
        assert reply.status_code == 401, (method, path, reply.status_code)
    bogus = requests.get(f"{web.url}/agent/api/me", cookies={"agent_session": "forged"}, timeout=5)
    assert bogus.status_code == 401


def test_sign_in_needs_the_csrf_token_and_the_right_password(web):
    http = requests.Session()
    http.get(f"{web.url}/agent", timeout=5)
    token = http.cookies.get("agent_csrf")
    assert token
    no_token = http.post(f"{web.url}/agent/api/login", json={"username": "li", "password": PASSWORD}, timeout=10)
    assert no_token.status_code == 403
    wrong = http.post(f"{web.url}/agent/api/login", json={"username": "li", "password": "wrong-password"},
                      headers={"X-CSRF-Token": token}, timeout=10)
    assert wrong.status_code == 401 and "agent_session" not in wrong.cookies
    right = http.post(f"{web.url}/agent/api/login", json={"username": "li", "password": PASSWORD},
                      headers={"X-CSRF-Token": token}, timeout=10)
    assert right.status_code == 200
    cookie = right.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert http.get(f"{web.url}/agent/api/me", timeout=5).json()["user"] == "li"


def test_state_changing_requests_without_the_session_csrf_token_are_refused(web):
    http, csrf = web.signed_in()
    assert http.post(f"{web.url}/agent/api/search", json={"q": "材料"}, timeout=10).status_code == 403
    assert http.post(f"{web.url}/agent/api/search", json={"q": "材料"},
                     headers={"X-CSRF-Token": "guess"}, timeout=10).status_code == 403
    assert http.post(f"{web.url}/agent/api/logout", timeout=10).status_code == 403
    # still signed in: the refused logout did nothing
    assert http.get(f"{web.url}/agent/api/me", timeout=5).status_code == 200
    assert http.post(f"{web.url}/agent/api/logout", headers={"X-CSRF-Token": csrf}, timeout=10).status_code == 200
    assert http.get(f"{web.url}/agent/api/me", timeout=5).status_code == 401


def test_a_slow_rasa_gives_a_fallback_with_the_hotline_within_the_time_limit(web):
    http, csrf = web.signed_in()
    started = time.monotonic()
    reply = http.post(f"{web.url}/agent/api/search", json={"q": "申请要带哪些材料"},
                      headers={"X-CSRF-Token": csrf}, timeout=15)
    elapsed = time.monotonic() - started
    assert reply.status_code == 200
    assert reply.json()["kind"] == "unavailable" and "12393" in reply.json()["message"]
    assert elapsed < 5.5  # parse (2 s) + bot reply (2 s), never the stand-in's 5 s each


def test_progress_service_down_gives_a_fallback_and_the_lookup_is_still_audited(web):
    http, csrf = web.signed_in()
    reply = http.post(f"{web.url}/agent/api/search", json={"q": "nc-2025 000 999"},
                      headers={"X-CSRF-Token": csrf}, timeout=15)
    assert reply.status_code == 200
    assert reply.json()["kind"] == "unavailable" and "12393" in reply.json()["message"]
    rows = AgentStore(web.db).audit_rows()
    assert rows[0]["kind"] == "application" and rows[0]["subject"] == "NC********99"
    assert rows[0]["username"] == "li"


def test_strange_input_never_gives_a_server_error(web):
    http, csrf = web.signed_in()
    for body in [b"not json", b"[1,2]", b'{"q": 5}', b'{"q": "' + "长".encode() * 5000 + b'"}']:
        reply = http.post(f"{web.url}/agent/api/search", data=body, timeout=15,
                          headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"})
        assert reply.status_code == 200, body[:20]
    login = requests.post(f"{web.url}/agent/api/login", data=b"\xff\xfe", timeout=5)
    assert login.status_code in (401, 403)


def test_console_pages_forbid_inline_scripts_and_framing(web):
    page = requests.get(f"{web.url}/agent", timeout=5)
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp


def test_repeated_wrong_passwords_are_throttled(tmp_path, slow_server):
    app = start_web(tmp_path, rasa_url=slow_server, progress_url=slow_server)
    try:
        http = requests.Session()
        http.get(f"{app.url}/agent", timeout=5)
        headers = {"X-CSRF-Token": http.cookies.get("agent_csrf")}
        codes = [http.post(f"{app.url}/agent/api/login", json={"username": "li", "password": "bad-guess"},
                           headers=headers, timeout=10).status_code for _ in range(6)]
        assert codes[:5] == [401] * 5 and codes[5] == 429
        # even the right password waits until the window has passed
        right = http.post(f"{app.url}/agent/api/login", json={"username": "li", "password": PASSWORD},
                          headers=headers, timeout=10)
        assert right.status_code == 429
    finally:
        app.process.terminate()
        app.process.wait(timeout=10)


def test_session_expires_after_inactivity(tmp_path, slow_server):
    app = start_web(tmp_path, rasa_url=slow_server, progress_url=slow_server,
                    AGENT_SESSION_IDLE_SECONDS="2")
    try:
        http, _ = app.signed_in()
        time.sleep(1.2)
        assert http.get(f"{app.url}/agent/api/me", timeout=5).status_code == 200  # activity
        time.sleep(1.2)
        assert http.get(f"{app.url}/agent/api/me", timeout=5).status_code == 200  # still < 2 s idle
        time.sleep(2.5)
        assert http.get(f"{app.url}/agent/api/me", timeout=5).status_code == 401
    finally:
        app.process.terminate()
        app.process.wait(timeout=10)


def test_demo_page_takes_the_widget_url_from_configuration_not_the_host_header(tmp_path, slow_server):
    app = start_web(tmp_path, rasa_url=slow_server, progress_url=slow_server,
                    WEB_PUBLIC_URL="https://help.example.org/")
    try:
        page = requests.get(f"{app.url}/", headers={"Host": "evil.example.com"}, timeout=5).text
        # the page itself loads the widget from its own origin, whatever name was typed
        assert '<script src="/widget/widget.js"' in page
        # the embed snippet shown for other sites names the configured public URL
        assert '&lt;script src=&quot;https://help.example.org/widget/widget.js&quot;' in page
        assert "evil.example.com" not in page
    finally:
        app.process.terminate()
        app.process.wait(timeout=10)


def test_demo_page_default_widget_url_is_this_app():
    from web.config import WebConfig

    config = WebConfig.from_env({"WEB_HOST": "0.0.0.0", "WEB_PORT": "9099"})
    assert config.public_url == "http://127.0.0.1:9099"

"""The production topology `make run-cluster` starts (tools/cluster.py, docs/deploy.md),
running for real: nginx in front of two Rasa replicas on one PostgreSQL tracker store and
one Redis (conversation locks, WeChat's shared state), two action servers behind nginx,
the progress stand-in and the web app.

- a conversation keeps its state whichever replica takes each turn (through nginx's
  round-robin and directly on each replica): a guided walk, a progress lookup;
- the same WeChat message (one MsgId) sent to both replicas at once runs the bot once and
  both get the same reply; a retry through nginx gets it again;
- a replica killed between two turns loses nothing: the other continues the
  conversation, a WeChat user's numbered menu included;
- Rasa's HTTP API is not reachable through nginx.

PostgreSQL (127.0.0.1:5432), Redis (127.0.0.1:6379) and nginx missing: skipped locally, a
failure under CI=true. Each run has a database and Redis key prefix of its own, dropped
at the end.
"""
import http.client
import json
import os
import pathlib
import re
import secrets
import signal
import socket
import subprocess
import threading
import time
import uuid

import pytest
import requests

from tests.conftest import _Tee
from tests.progress.progress_helpers import EXAMPLE_CSV, new_secrets, run_import
from tests.support import skip_or_fail
from tools.cluster import ClusterSettings, build_cluster, check_nginx, free_ports, prepare_store
from tools.stack import VENV_BIN, Stack
from wechat_fakes import AES_KEY, APPID, APPSECRET, TOKEN, FakeWeChat, text_xml

# one started cluster for the module: xdist keeps these tests on one worker
pytestmark = pytest.mark.xdist_group("cluster")

ROOT = pathlib.Path(__file__).resolve().parents[2]
PG_ADDRESS, REDIS_ADDRESS = ("127.0.0.1", 5432), ("127.0.0.1", 6379)


def _reachable(address) -> bool:
    try:
        with socket.create_connection(address, timeout=2):
            return True
    except OSError:
        return False


class Cluster:
    def __init__(self, stack: Stack, settings: ClusterSettings, env: dict, log):
        self.stack, self.settings, self.env, self.log = stack, settings, env, log

    @property
    def public_port(self) -> int:
        return self.settings.public_port

    def replica_port(self, number: int) -> int:
        return self.settings.rasa_ports[number - 1]

    def wechat_url(self, port: int) -> str:
        return f"http://127.0.0.1:{port}/webhooks/wechat/webhook"

    def access_log(self) -> list:
        return (self.settings.state_dir / "nginx" / "access.log").read_text(encoding="utf-8").splitlines()

    def user_turns(self, sender: str) -> list:
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", user="postgres", dbname=self.env["DB_NAME"])
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT data FROM events WHERE sender_id = %s AND type_name = 'user' "
                               "ORDER BY id", (sender,))
                return [json.loads(row[0]).get("text") for row in cursor.fetchall()]
        finally:
            connection.close()


def request(port: int, method: str, path: str, body=None, headers=None, timeout: float = 60):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8") if body is not None else None
        connection.request(method, path, payload, {"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def say(port: int, sender: str, text: str) -> str:
    """A turn on the web channel (as the widget sends it) at `port`: nginx or a replica."""
    status, body = request(port, "POST", "/webhooks/web/webhook", {"sender": sender, "message": text})
    assert status == 200, (status, body[:300])
    return "\n".join(message.get("text", "") for message in json.loads(body))


def web_sender() -> str:
    return f"web-{uuid.uuid4()}"


BUREAU_SITE = "https://ybj.nanchong.example"


def new_openid() -> str:
    return "oCLU" + uuid.uuid4().hex[:24]


@pytest.fixture(scope="module")
def wechat():
    with FakeWeChat() as fake:
        yield fake


@pytest.fixture(scope="module")
def cluster(trained_model, tmp_path_factory, wechat):
    missing = [name for name, address in (("PostgreSQL 127.0.0.1:5432", PG_ADDRESS),
                                          ("Redis 127.0.0.1:6379", REDIS_ADDRESS))
               if not _reachable(address)]
    if missing:
        skip_or_fail("the cluster tests need " + " and ".join(missing))
    directory = tmp_path_factory.mktemp("cluster")
    run = uuid.uuid4().hex[:10]
    ports = free_ports(10)
    settings = ClusterSettings(
        state_dir=directory, model_path=trained_model, public_port=ports[0],
        rasa_ports=(ports[1], ports[2]), actions_ports=(ports[3], ports[4]),
        actions_upstream_port=ports[5], rasa_internal_port=ports[6],
        progress_port=ports[7], web_port=ports[8], web_ports=(ports[8], ports[9]),
        lock_prefix=f"cluster{run}")
    problem = check_nginx(settings)
    if problem:
        skip_or_fail(problem)

    secrets_env = new_secrets()
    progress_url = f"sqlite:///{directory / 'progress.db'}"
    done = run_import(EXAMPLE_CSV, progress_url, secrets_env)
    assert done.returncode == 0, done.stdout + done.stderr
    environ = {**os.environ, **secrets_env, "PROGRESS_DATABASE_URL": progress_url,
               "RASA_AUTH_TOKEN": secrets.token_urlsafe(24), "AGENT_DB": str(directory / "agents.db"),
               "DB_HOST": "127.0.0.1", "DB_PORT": "5432", "DB_USER": "postgres", "DB_PASSWORD": "",
               "DB_NAME": f"cluster_{run}", "DB_LOGIN_DB": "test",
               "REDIS_HOST": "127.0.0.1", "REDIS_PORT": "6379", "REDIS_PASSWORD": "", "REDIS_DB": "0",
               "WECHAT_TOKEN": TOKEN, "WECHAT_APPID": APPID, "WECHAT_APPSECRET": APPSECRET,
               "WECHAT_AES_KEY": AES_KEY, "WECHAT_MODE": "safe", "WECHAT_API_BASE": wechat.api_base,
               "WECHAT_STATE_PREFIX": f"cluster{run}:wechat", "WEB_STATE_REDIS_PREFIX": f"cluster{run}:web",
               # the bureau's site that embeds the widget (the demo page is same-origin)
               "CORS_ORIGINS": BUREAU_SITE}
    for name in ("WECHAT_STATE_REDIS_URL", "WECHAT_TRANSFER_TO_KF", "WECHAT_PASSIVE_ONLY",
                 "WECHAT_REPLY_DEADLINE", "PROGRESS_SERVICE_URL", "CONVERSATION_CODES_DATABASE_URL",
                 "AGENT_DATABASE_URL", "WEB_STATE_REDIS_URL",
                 "WIDGET_SERVER_URL", "WEB_PUBLIC_URL"):
        environ.pop(name, None)

    services, env = build_cluster(settings, environ)
    log_path = directory / "cluster.log"
    log = _Tee(log_path)
    stack = Stack(services, output=log, environ=env)
    try:
        prepare_store(services, env, log=log)
        stack.start()
        if not stack.wait_healthy():
            raise RuntimeError("the cluster did not start:\n" + log_path.read_text(encoding="utf-8")[-6000:])
        handle = Cluster(stack, settings, env, log)
        for number in (1, 2):  # warm each replica (first turns build lazily loaded parts)
            say(handle.replica_port(number), web_sender(), "你好")
        yield handle
    finally:
        stack.stop()
        _drop(env["DB_NAME"], f"cluster{run}")


def _drop(database: str, redis_prefix: str) -> None:
    import psycopg2
    import redis

    connection = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="test")
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        connection.close()
    client = redis.Redis(host="127.0.0.1", port=6379)
    try:
        keys = list(client.scan_iter(match=f"{redis_prefix}:*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


# --- what nginx exposes ------------------------------------------------------------------
@pytest.mark.parametrize("method,path", [
    ("POST", "/model/parse"), ("GET", "/conversations/x/tracker"), ("GET", "/status"),
    ("POST", "/webhooks/rest/webhook"), ("GET", "/version"), ("PUT", "/model"),
    ("POST", "/conversations/x/trigger_intent"), ("GET", "/webhooks/web/"), ("GET", "/health"),
])
def test_the_rasa_http_api_is_not_reachable_through_nginx(cluster, method, path):
    token = cluster.env["RASA_AUTH_TOKEN"]
    body = {"text": "你好"} if method in ("POST", "PUT") else None
    status, _ = request(cluster.public_port, method, f"{path}?token={token}", body)
    assert status in (403, 404), (method, path, status)


def test_the_api_exists_behind_nginx_and_what_nginx_does_expose_answers(cluster):
    token = cluster.env["RASA_AUTH_TOKEN"]
    # on a replica's own (loopback) port the API is there: the 404 above is nginx's doing
    status, body = request(cluster.replica_port(1), "GET", f"/status?token={token}")
    assert status == 200 and b"model_file" in body
    for path in ("/", "/widget/widget.js", "/widget/widget.css", "/agent", "/static/agent.js"):
        status, _ = request(cluster.public_port, "GET", path)
        assert status == 200, path
    # the demo page points the widget at the public address (nginx), not at a replica
    _, page = request(cluster.public_port, "GET", "/")
    assert f'data-server="http://127.0.0.1:{cluster.public_port}"'.encode() in page


def test_the_widget_on_the_bureaus_site_gets_through_nginx_and_no_other_site_does(cluster):
    def preflight(origin):
        connection = http.client.HTTPConnection("127.0.0.1", cluster.public_port, timeout=30)
        try:
            connection.request("OPTIONS", "/webhooks/web/webhook", headers={
                "Origin": origin, "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type"})
            response = connection.getresponse()
            response.read()
            return response.status, response.getheader("Access-Control-Allow-Origin")
        finally:
            connection.close()

    status, allowed = preflight(BUREAU_SITE)
    assert status in (200, 204) and allowed == BUREAU_SITE, (status, allowed)
    status, allowed = preflight("https://evil.example")
    assert allowed is None, (status, allowed)
    reply = requests.post(f"http://127.0.0.1:{cluster.public_port}/webhooks/web/webhook", timeout=60,
                          json={"sender": web_sender(), "message": "你好"}, headers={"Origin": BUREAU_SITE})
    assert reply.status_code == 200 and reply.headers.get("Access-Control-Allow-Origin") == BUREAU_SITE


# --- one conversation, two replicas ------------------------------------------------------
def test_a_walk_alternates_between_the_replicas_and_keeps_its_step(cluster):
    sender = web_sender()
    assert "【微信小程序】第1步 / 共8步" in say(cluster.replica_port(1), sender, "我想在小程序上申请")
    assert "第2步 / 共8步" in say(cluster.replica_port(2), sender, "下一步")
    before = len(cluster.access_log())
    assert "第3步 / 共8步" in say(cluster.public_port, sender, "下一步")
    assert "第4步 / 共8步" in say(cluster.public_port, sender, "下一步")
    assert "第3步 / 共8步" in say(cluster.replica_port(1), sender, "上一步")
    # nginx's round-robin sent the two turns to different replicas
    upstreams = [re.search(r"upstream=(\S+)", line).group(1) for line in cluster.access_log()[before:]
                 if "/webhooks/web/webhook" in line]
    assert {f"127.0.0.1:{port}" for port in cluster.settings.rasa_ports} == set(upstreams), upstreams
    assert cluster.user_turns(sender) == ["我想在小程序上申请", "下一步", "下一步", "下一步", "上一步"]


def test_a_button_offered_by_one_replica_is_tapped_on_the_other(cluster):
    sender = web_sender()
    status, body = request(cluster.replica_port(1), "POST", "/webhooks/web/webhook",
                           {"sender": sender, "message": "怎么申请"})
    assert status == 200
    buttons = {button["title"]: button["payload"] for message in json.loads(body)
               for button in message.get("buttons", [])}
    assert "去窗口办" in buttons, buttons
    # the tap reaches replica 2, which never offered it: the shared tracker store says it may
    assert "【医保经办窗口】第1步 / 共4步" in say(cluster.replica_port(2), sender, buttons["去窗口办"])
    # a "/…" command the bot did not offer stays typed text, on either replica
    assert "【医保经办窗口】" not in say(cluster.replica_port(1), web_sender(), buttons["去窗口办"])


def test_a_progress_lookup_asked_on_one_replica_is_answered_on_the_other(cluster):
    sender = web_sender()
    assert "申请编号" in say(cluster.replica_port(1), sender, "查一下我的申请进度")
    assert "身份证" in say(cluster.replica_port(2), sender, "NC2025000101")
    answer = say(cluster.replica_port(1), sender, "1234")
    assert "已提交" in answer and "张*" in answer and "张三" not in answer
    # the stored conversation keeps no credentials once the lookup is done (redacted at rest)
    stored = cluster.user_turns(sender)
    assert len(stored) == 3 and "NC2025000101" not in stored and "1234" not in stored


# --- WeChat: one message, both replicas ---------------------------------------------------
def test_the_same_wechat_message_on_both_replicas_runs_the_bot_once(cluster, wechat):
    openid = new_openid()
    xml = text_xml(openid, "办慢特病要准备啥子材料", msg_id=str(8100000000000000000 + int(uuid.uuid4().int % 10**15)))
    start = threading.Barrier(2)
    results = {}

    def push(number):
        start.wait()
        results[number] = wechat.push(xml, mode="safe", url=cluster.wechat_url(cluster.replica_port(number)))

    threads = [threading.Thread(target=push, args=(number,)) for number in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    first, second = results[1], results[2]
    assert first.status == 200 and second.status == 200, (first, second)
    if first.content or second.content:  # answered in time: both replicas give the same reply
        assert first.content == second.content and "诊断证明" in first.content
    else:  # answered late: sent once through the customer-service API
        late = wechat.wait_for_messages(openid, 1, timeout=15)
        assert len(late) == 1 and "诊断证明" in late[0]
    # WeChat's retry through nginx, on whichever replica, gets the same reply again
    retry = wechat.push(xml, mode="safe", url=cluster.wechat_url(cluster.public_port))
    assert retry.status == 200 and retry.content == first.content
    # the bot ran once: one user turn in the shared tracker store
    assert cluster.user_turns(openid) == ["办慢特病要准备啥子材料"]
    assert len(wechat.messages_to(openid)) <= 1


# --- a replica dies ---------------------------------------------------------------------------
def test_a_replica_killed_mid_conversation_loses_nothing(cluster, wechat):
    sender = web_sender()
    openid = new_openid()
    assert "第1步 / 共8步" in say(cluster.replica_port(1), sender, "我想在小程序上申请")
    assert "第2步 / 共8步" in say(cluster.public_port, sender, "下一步")
    # a WeChat user gets a numbered menu from replica 1 …
    offer = wechat.push(text_xml(openid, "怎么申请"), mode="safe", url=cluster.wechat_url(cluster.replica_port(1)))
    menu = re.sub(r"<[^>]+>", "", offer.content or "")
    numbers = {line.split(".", 1)[1].strip(): line.split(".", 1)[0].strip()
               for line in menu.splitlines() if line[:1].isdigit() and "." in line}
    assert "去窗口办" in numbers, menu

    process = cluster.stack.processes["rasa-1"]
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    try:
        _carry_on_without_replica_1(cluster, wechat, sender, openid, numbers)
    finally:  # back for whatever test runs next: no test depends on running last
        assert cluster.stack.start_service("rasa-1"), "rasa-1 did not come back"


def _carry_on_without_replica_1(cluster, wechat, sender, openid, numbers):

    # … and the conversation goes on through nginx (on replica 2) and on replica 2 directly
    assert "第3步 / 共8步" in say(cluster.public_port, sender, "下一步")
    assert "第2步 / 共8步" in say(cluster.public_port, sender, "上一步")
    assert "第3步 / 共8步" in say(cluster.replica_port(2), sender, "下一步")
    # the number picks from the menu replica 1 offered (kept in Redis)
    picked = wechat.push(text_xml(openid, numbers["去窗口办"]), mode="safe", url=cluster.wechat_url(cluster.public_port))
    assert picked.status == 200 and "【医保经办窗口】第1步 / 共4步" in (picked.content or ""), picked
    assert cluster.user_turns(sender) == ["我想在小程序上申请", "下一步", "下一步", "上一步", "下一步"]
    failed = [line for line in cluster.access_log() if re.search(r'" 5\d\d ', line)]
    assert not failed, failed  # no visitor saw an error


def test_a_held_wechat_reply_survives_a_restart_of_the_replica(cluster, wechat):
    """A late answer that the customer-service API refuses (45015: outside the 48 h window)
    is held until the person's next message; the hold is in Redis, so a restart of the
    replica in between loses nothing and sends nothing twice."""
    openid = new_openid()
    actions = [cluster.stack.processes[name] for name in ("actions-1", "actions-2")]
    for process in actions:  # the turn waits for the action servers past WeChat's deadline
        os.killpg(process.pid, signal.SIGSTOP)
    try:
        wechat.send_errors.append(45015)
        first = wechat.push(text_xml(openid, "办慢特病要准备啥子材料"), mode="safe",
                            url=cluster.wechat_url(cluster.replica_port(1)))
        assert first.status == 200 and not first.content, first  # nothing in time
    finally:
        for process in actions:
            os.killpg(process.pid, signal.SIGCONT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(call.get("touser") == openid for call in wechat.send_calls):
        time.sleep(0.2)
    assert [call["touser"] for call in wechat.send_calls].count(openid) == 1  # tried once, refused
    assert wechat.messages_to(openid) == []

    cluster.stack.stop_service("rasa-1")
    assert cluster.stack.start_service("rasa-1"), "rasa-1 did not come back"
    reply = wechat.push(text_xml(openid, "谢谢"), mode="safe", url=cluster.wechat_url(cluster.replica_port(1)))
    text = reply.content or ""
    assert reply.status == 200 and text.startswith("【您上一个问题的回复】") and "诊断证明" in text, reply
    again = wechat.push(text_xml(openid, "谢谢"), mode="safe", url=cluster.wechat_url(cluster.replica_port(2)))
    assert "【您上一个问题的回复】" not in (again.content or "")  # taken once
    assert wechat.messages_to(openid) == []


# --- the agents' console on two web replicas ---------------------------------------------------
CONSOLE_PASSWORD = "cluster-console-" + secrets.token_hex(6)


def _add_agent(cluster, name):
    done = subprocess.run([str(VENV_BIN / "python"), "-m", "web.agents", "add", name],
                          cwd=ROOT, env={**cluster.env, "PASSWORD": CONSOLE_PASSWORD, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def _sign_in(http, port, name, password):
    http.get(f"http://127.0.0.1:{port}/agent", timeout=10)
    token = http.cookies.get("agent_csrf")
    return http.post(f"http://127.0.0.1:{port}/agent/api/login", json={"username": name, "password": password},
                     headers={"X-CSRF-Token": token}, timeout=30)


def test_a_console_session_works_on_either_web_replica_and_through_nginx(cluster):
    name = "c" + uuid.uuid4().hex[:8]
    _add_agent(cluster, name)
    web_1, web_2 = cluster.settings.all_web_ports
    http = requests.Session()
    signed = _sign_in(http, web_1, name, CONSOLE_PASSWORD)
    assert signed.status_code == 200, signed.text
    csrf = signed.json()["csrf"]
    for port in (web_2, cluster.public_port, web_1):
        me = http.get(f"http://127.0.0.1:{port}/agent/api/me", timeout=10)
        assert me.status_code == 200 and me.json()["user"] == name, (port, me.text)
    found = http.post(f"http://127.0.0.1:{web_2}/agent/api/search", json={"q": "NC2025000102"},
                      headers={"X-CSRF-Token": csrf}, timeout=30)
    assert found.status_code == 200
    assert http.post(f"http://127.0.0.1:{cluster.public_port}/agent/api/logout",
                     headers={"X-CSRF-Token": csrf}, timeout=10).status_code == 200
    assert http.get(f"http://127.0.0.1:{web_1}/agent/api/me", timeout=10).status_code == 401


def test_failed_sign_ins_count_across_web_replicas(cluster):
    name = "t" + uuid.uuid4().hex[:8]
    _add_agent(cluster, name)
    web_1, web_2 = cluster.settings.all_web_ports
    statuses = [_sign_in(requests.Session(), port, name, "wrong-password-x").status_code
                for port in (web_1, web_2, web_1, web_2, cluster.public_port)]
    assert statuses == [401] * 5, statuses
    # the account's back-off now holds on every replica, the right password included
    for port in (web_1, web_2):
        assert _sign_in(requests.Session(), port, name, CONSOLE_PASSWORD).status_code == 429

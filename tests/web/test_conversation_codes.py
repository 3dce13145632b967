"""Conversation codes (issue 19): the store, the console's view of a conversation, and the
console API that looks codes up (own web app process, a stand-in for Rasa's tracker API).

The test through the whole stack is tests/web/test_conversation_code_stack.py.
"""
import http.server
import json
import os
import pathlib
import re
import sqlite3
import stat
import subprocess
import sys
import threading
import time
import urllib.parse

import pytest
import requests

from core import conversation_codes
from core.conversation_codes import ALPHABET, CodeStore, normalize_typed_code
from web.agents import AgentStore
from web.console import conversation_turns, mask_turn_text

ROOT = pathlib.Path(__file__).resolve().parents[2]
PASSWORD = "correct-horse-42"
RASA_TOKEN = "t0ken"
CODE_PATTERN = re.compile(f"^[{ALPHABET}]{{6}}$")


class Clock:
    def __init__(self, now=1_800_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


def store_at(tmp_path, clock=None, key="code-key") -> CodeStore:
    return CodeStore(f"sqlite:///{tmp_path / 'codes.db'}", key=key, clock=clock or Clock())


# --- the store ----------------------------------------------------------------------------
def test_a_code_is_six_characters_without_look_alikes(tmp_path):
    assert not set("01OILU") & set(ALPHABET) and len(set(ALPHABET)) == len(ALPHABET) == 30
    store = store_at(tmp_path)
    codes = {store.issue(f"web-{index:032x}").code for index in range(200)}
    assert len(codes) == 200
    assert all(CODE_PATTERN.match(code) for code in codes)


def test_the_same_conversation_gets_the_same_code_while_it_is_valid(tmp_path):
    clock = Clock()
    store = store_at(tmp_path, clock)
    first = store.issue("web-a")
    assert not first.reused and first.hours_left(clock()) == 24
    clock.now += 23 * 3600
    again = store.issue("web-a")
    assert again.code == first.code and again.reused and again.hours_left(clock()) == 1
    assert store.issue("web-b").code != first.code
    # another process with the same key and file says the same code (action server restart)
    assert store_at(tmp_path, clock).issue("web-a").code == first.code


def test_a_code_expires_after_24_hours_and_the_conversation_then_gets_a_new_one(tmp_path):
    clock = Clock()
    store = store_at(tmp_path, clock)
    code = store.issue("web-a").code
    found = store.find(code)
    assert found.sender_id == "web-a" and store.is_valid(found)
    clock.now += 24 * 3600 + 1
    assert not store.is_valid(store.find(code))  # expired, still told apart from wrong
    fresh = store.issue("web-a")
    assert fresh.code != code and not fresh.reused
    clock.now += conversation_codes.KEEP_EXPIRED_SECONDS + 1
    assert store.purge() == 1 and store.find(code) is None  # purged a day after expiry
    assert store.find(fresh.code) is not None


def test_only_a_hash_of_the_code_is_stored_in_a_private_file(tmp_path):
    store = store_at(tmp_path)
    code = store.issue("web-a").code
    path = tmp_path / "codes.db"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with sqlite3.connect(str(path)) as db:
        rows = db.execute("SELECT * FROM conversation_codes").fetchall()
    dump = json.dumps(rows)
    assert code not in dump and code.lower() not in dump
    assert conversation_codes.code_hash(code) in dump
    # the web app's store has no key: it finds codes, it can neither mint nor derive them
    reader = CodeStore(f"sqlite:///{path}")
    assert reader.find(code).sender_id == "web-a"
    with pytest.raises(RuntimeError):
        reader.issue("web-b")
    # another key derives other codes from the same rows: the conversation gets a new one
    assert store_at(tmp_path, key="another-key").issue("web-a").code != code


def test_typed_codes_are_forgiven_case_and_separators_but_nothing_else():
    assert normalize_typed_code(" k7m-9qx ") == "K7M9QX"
    assert normalize_typed_code("Ｋ７Ｍ９ＱＸ") == "K7M9QX"  # full-width
    for hostile in ["", "K7M9Q", "K7M9QXX", "K0M9QX", "' OR 1=1 --", "K7M9Q\u0000", "码码码码码码",
                    "K" * 100000, None, 5, ["K7M9QX"]]:
        assert normalize_typed_code(hostile) is None


def test_the_default_location_is_the_state_folder_and_the_url_comes_from_the_environment():
    assert conversation_codes.database_url({}).endswith(".state/conversation-codes.db")
    assert conversation_codes.database_url(
        {"CONVERSATION_CODES_DATABASE_URL": "postgresql://x/y"}) == "postgresql://x/y"


def test_the_stack_gives_both_processes_one_store_and_only_the_action_server_the_key(tmp_path):
    from tools.stack import StackSettings, build_services

    settings = StackSettings(state_dir=tmp_path)
    environ = {"CONVERSATION_CODE_KEY": "from-env"}
    services = {service.name: service for service in build_services(settings, environ, with_stand_in=False)}
    url = services["actions"].env["CONVERSATION_CODES_DATABASE_URL"]
    assert url == services["web"].env["CONVERSATION_CODES_DATABASE_URL"] == f"sqlite:///{tmp_path / 'conversation-codes.db'}"
    assert services["actions"].env["CONVERSATION_CODE_KEY"] == "from-env"
    assert services["web"].env["CONVERSATION_CODE_KEY"] == ""
    assert "CONVERSATION_CODE_KEY" not in services["rasa"].env
    # without one in the environment: a development key in the state folder's secrets.env
    generated = {s.name: s for s in build_services(settings, {}, with_stand_in=False)}
    key = generated["actions"].env["CONVERSATION_CODE_KEY"]
    assert key and f"CONVERSATION_CODE_KEY={key}" in (tmp_path / "secrets.env").read_text()


# --- what the console shows of a conversation ---------------------------------------------
def user(text, at=1_800_000_000.0, channel="web"):
    return {"event": "user", "text": text, "timestamp": at, "input_channel": channel,
            "parse_data": {"intent": {"name": "x"}}}


def bot(text, at=1_800_000_001.0):
    return {"event": "bot", "text": text, "timestamp": at, "data": {}}


def test_the_view_keeps_the_last_30_turns_masked_and_notes_a_lookup():
    events = [{"event": "action", "name": "action_session_start"}]
    for index in range(35):
        events += [user(f"问题{index}"), {"event": "action", "name": "action_answer_topic"}, bot(f"答{index}")]
    events += [user("我的身份证511302199001011234，电话13812345678，编号NC2025000123"),
               {"event": "action", "name": "action_check_progress"}, bot("［已隐去］"),
               {"event": "bot", "text": None, "data": {"custom": {"handover": "human"}}},
               bot("请拨打12393")]
    view = conversation_turns(events)
    users = [turn for turn in view["turns"] if turn["who"] == "user"]
    assert len(users) == 30 and users[0]["text"] == "问题6"
    last = users[-1]["text"]
    assert "511302199001011234" not in last and "1234" in last
    assert "13812345678" not in last and "NC2025000123" not in last
    assert view["turns"][-1]["text"] == "请拨打12393"  # the hotline stays readable
    assert view["lookup"] is True and view["channel"] == "web"
    assert view["turns"][0]["at"] == "01-15 16:00"  # China time
    assert conversation_turns([user("你好")])["lookup"] is False
    assert conversation_turns(["junk", 5, {"event": "user"}]) == {"turns": [], "channel": "", "lookup": False}


def test_masking_keeps_short_numbers():
    assert mask_turn_text("拨打12393，3个月") == "拨打12393，3个月"
    assert mask_turn_text("NC2025000123") == "NC********23"


# --- the console API -----------------------------------------------------------------------
TRACKERS = {}  # sender id -> events, served by the stand-in for Rasa


class TrackerHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        match = re.fullmatch(r"/conversations/([^/]+)/tracker", url.path)
        if not match or query.get("token") != [RASA_TOKEN]:
            self.send_response(401)
            self.end_headers()
            return
        sender = urllib.parse.unquote(match.group(1))
        body = json.dumps({"sender_id": sender, "events": TRACKERS.get(sender, [])}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ConsoleApp:
    def __init__(self, url, agent_db, codes_url, process):
        self.url, self.agent_db, self.codes_url, self.process = url, agent_db, codes_url, process

    def signed_in(self, username="li"):
        http = requests.Session()
        http.get(f"{self.url}/agent", timeout=5)
        reply = http.post(f"{self.url}/agent/api/login", json={"username": username, "password": PASSWORD},
                          headers={"X-CSRF-Token": http.cookies.get("agent_csrf")}, timeout=10)
        assert reply.status_code == 200, reply.text
        return http, reply.json()["csrf"]

    def look_up(self, http, csrf, code):
        return http.post(f"{self.url}/agent/api/conversation", json={"code": code},
                         headers={"X-CSRF-Token": csrf}, timeout=10)

    def audit(self):
        with sqlite3.connect(str(self.agent_db)) as db:
            return db.execute("SELECT username, kind, subject, outcome FROM audit ORDER BY id").fetchall()


@pytest.fixture(scope="module")
def console_app(tmp_path_factory):
    directory = tmp_path_factory.mktemp("codes-console")
    rasa = http.server.ThreadingHTTPServer(("127.0.0.1", 0), TrackerHandler)
    rasa.daemon_threads = True
    threading.Thread(target=rasa.serve_forever, daemon=True).start()
    agent_db = directory / "agents.db"
    agents = AgentStore(agent_db)
    for name in ("li", "wang", "zhao"):
        agents.add_agent(name, PASSWORD)
    codes_url = f"sqlite:///{directory / 'codes.db'}"
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), WEB_PORT=str(port), AGENT_DB=str(agent_db),
               RASA_URL=f"http://127.0.0.1:{rasa.server_address[1]}", RASA_AUTH_TOKEN=RASA_TOKEN,
               PROGRESS_SERVICE_URL=f"http://127.0.0.1:{free_port()}", PROGRESS_AGENT_SECRET="s3cret",
               PROGRESS_API_KEY="k3y", CONVERSATION_CODES_DATABASE_URL=codes_url)
    env.pop("CONVERSATION_CODE_KEY", None)
    process = subprocess.Popen([sys.executable, "-m", "web"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            time.sleep(0.2)
    else:
        process.kill()
        raise RuntimeError("web app did not start")
    yield ConsoleApp(url, agent_db, codes_url, process)
    process.terminate()
    process.wait(timeout=10)
    rasa.shutdown()


def test_a_valid_code_shows_the_conversation_and_the_view_is_audited(console_app):
    sender = "web-" + "ab" * 16
    TRACKERS[sender] = [user("高血压要什么材料"), bot("要带病历……"), user("找人工"), bot("打12393时报这个号")]
    code = CodeStore(console_app.codes_url, key="k").issue(sender).code
    http, csrf = console_app.signed_in("li")
    reply = console_app.look_up(http, csrf, code.lower())
    assert reply.status_code == 200, reply.text
    data = reply.json()
    assert data["kind"] == "conversation" and data["channel"] == "web" and data["lookup"] is False
    assert [turn["text"] for turn in data["turns"]] == ["高血压要什么材料", "要带病历……", "找人工", "打12393时报这个号"]
    assert sender not in reply.text  # the sender id is a bearer value on the web channel
    row = console_app.audit()[-1]
    assert row[:2] == ("li", "conversation") and row[3] == "shown"
    assert row[2].startswith(code[:2] + "****") and code not in row[2] and sender not in row[2]


def test_a_conversation_with_a_lookup_says_so_without_the_number(console_app):
    sender = "web-" + "cd" * 16
    TRACKERS[sender] = [user("［已隐去］"), {"event": "action", "name": "action_check_progress"},
                        bot("［已隐去］"), user("找人工")]
    code = CodeStore(console_app.codes_url, key="k").issue(sender).code
    http, csrf = console_app.signed_in("li")
    data = console_app.look_up(http, csrf, code).json()
    assert data["lookup"] is True and "查过办理进度" in data["lookup_note"]


def test_wrong_and_expired_codes_are_refused_and_audited(console_app):
    http, csrf = console_app.signed_in("wang")
    wrong = console_app.look_up(http, csrf, "ZZZZZZ")
    assert wrong.status_code == 404 and "对话码" in wrong.json()["error"]
    past = Clock(time.time() - 25 * 3600)
    expired_code = CodeStore(console_app.codes_url, key="k", clock=past).issue("web-" + "ef" * 16).code
    expired = console_app.look_up(http, csrf, expired_code)
    assert expired.status_code == 410 and "过期" in expired.json()["error"]
    rows = [row for row in console_app.audit() if row[0] == "wang"]
    assert [row[3] for row in rows[-2:]] == ["wrong_code", "expired"]
    assert rows[-2][2] == "ZZ****"


def test_ten_wrong_codes_in_15_minutes_lock_the_agent_out_of_code_lookups(console_app):
    http, csrf = console_app.signed_in("zhao")
    valid = CodeStore(console_app.codes_url, key="k").issue("web-" + "12" * 16).code
    statuses = [console_app.look_up(http, csrf, f"ZZZZ{pair}").status_code
                for pair in ("22", "23", "24", "25", "26", "27", "28", "29", "2A", "2B")]
    assert statuses == [404] * 10
    assert console_app.look_up(http, csrf, valid).status_code == 429  # even a valid one, now
    assert [row[3] for row in console_app.audit() if row[0] == "zhao"][-1] == "rate_limited"
    # another agent is not affected
    other, other_csrf = console_app.signed_in("li")
    assert console_app.look_up(other, other_csrf, valid).status_code == 200


def test_code_lookups_need_a_session_and_the_csrf_token(console_app):
    code = CodeStore(console_app.codes_url, key="k").issue("web-" + "34" * 16).code
    anonymous = requests.post(f"{console_app.url}/agent/api/conversation", json={"code": code}, timeout=5)
    assert anonymous.status_code == 401
    http, _ = console_app.signed_in("li")
    assert http.post(f"{console_app.url}/agent/api/conversation", json={"code": code},
                     timeout=5).status_code == 403
    assert http.post(f"{console_app.url}/agent/api/conversation", json={"code": code},
                     headers={"X-CSRF-Token": "guess"}, timeout=5).status_code == 403
    assert http.get(f"{console_app.url}/agent/api/conversation", timeout=5).status_code == 405


def test_hostile_codes_never_give_a_server_error(console_app):
    http, csrf = console_app.signed_in("li")
    bodies = [json.dumps({"code": value}).encode() for value in (
        "' OR 1=1 --", "K" * 100000, "码" * 5000, "\u202eXQ9M7K", "%00", "../../etc", None, 7, [1], {"a": 1})]
    bodies += [b"not json", b"[1,2]", b"\xff\xfe"]
    for body in bodies:
        reply = http.post(f"{console_app.url}/agent/api/conversation", data=body, timeout=10,
                          headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"})
        assert reply.status_code in (404, 429), (body[:30], reply.status_code)

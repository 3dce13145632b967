"""Hostile inputs over every channel, against one running stack (issue 16).

One stack for the module (Rasa with REST, socket.io, the widget's channel and WeChat in safe
mode behind the fake WeChat; the action server; the progress stand-in with its own data; the
web app with a signed-in agent). Per channel HOSTILE_EXAMPLES (500; `make test-hostile`:
2000) generated inputs, seeded (derandomized hypothesis, tests/foundation/hostile_support.py):
random, control, RTL, emoji and zero-width text, huge and empty text, ID numbers in every
disguise, application numbers, "/intent" payloads of any width, SQL-ish and template-ish
strings, JSON of wrong types, nesting and size, bad headers, methods, paths and content
types, oversized bodies; for WeChat also forged signatures, stale timestamps, broken
envelopes and XML. Sent concurrently (HOSTILE_WORKERS, 8).

Checked afterwards: no answer >= 500 and no request left without an answer on any channel;
every process of the stack alive with the pid it started with; no full ID number
(core.privacy's rule) in the tracker store (every event's text, slots, entities), the stack
log, or the progress, console and conversation-code databases. Per-channel counts and
status histograms: in the assertion messages and in hostile-summary.json in the state dir.
"""
import asyncio
import json
import os
import pathlib
import secrets
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest
from hypothesis import strategies as st

from tests.foundation import hostile_support as hs
from tests.foundation.hostile_support import Case, EXAMPLES, hostile_text, json_values
from tests.progress.progress_helpers import EXAMPLE_CSV, new_secrets, run_import

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "wechat"))
from wechat_fakes import (  # noqa: E402
    AES_KEY, APPID, APPSECRET, TOKEN, FakeWeChat, event_xml, media_xml, text_xml, wechat_signature,
)

pytestmark = pytest.mark.xdist_group("hostile_stack")

ROOT = pathlib.Path(__file__).resolve().parents[2]
AGENT_USER, AGENT_PASSWORD = "hostile_agent", "hostile-Passw0rd-42"
KNOWN_NUMBERS = ["NC2025000101", "NC2025000102", "NC2025000103", "NC2025000104"]
SUMMARY = {}


class HostileStack:
    def __init__(self, handle, wechat, agent_cookie: str, agent_csrf: str):
        self.handle = handle
        self.wechat = wechat
        self.settings = handle.settings
        self.state_dir = pathlib.Path(handle.settings.state_dir)
        self.agent_cookie, self.agent_csrf = agent_cookie, agent_csrf
        self.pids = {name: process.pid for name, process in handle.stack.processes.items()}

    def record(self, outcome: hs.Outcome) -> None:
        SUMMARY[outcome.channel] = outcome.summary()
        print(outcome.line())
        (self.state_dir / "hostile-summary.json").write_text(
            json.dumps(SUMMARY, ensure_ascii=False, indent=1), encoding="utf-8")

    def alive(self) -> str:
        """'' when every process runs with the pid it started with, else what changed."""
        now = {name: process.pid for name, process in self.handle.stack.processes.items()}
        dead = self.handle.stack.dead_service()
        if dead or now != self.pids:
            return f"dead: {dead}, pids then {self.pids}, now {now}"
        return ""


def add_agent(db: pathlib.Path) -> None:
    env = dict(os.environ, PASSWORD=AGENT_PASSWORD, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "web.agents", "--db", str(db), "add", AGENT_USER],
                          cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def sign_in(web_url: str):
    """(session cookie, CSRF token) of the agent, as the console page does it."""
    csrf = secrets.token_urlsafe(16)
    request = urllib.request.Request(
        web_url + "/agent/api/login", method="POST",
        data=json.dumps({"username": AGENT_USER, "password": AGENT_PASSWORD}).encode(),
        headers={"Content-Type": "application/json", "X-CSRF-Token": csrf, "Cookie": f"agent_csrf={csrf}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
        cookie = next(value.split(";")[0].split("=", 1)[1] for name, value in response.headers.items()
                      if name.lower() == "set-cookie" and value.startswith("agent_session="))
    return cookie, body["csrf"]


@pytest.fixture(scope="module")
def hostile(stack_factory, tmp_path_factory):
    started = time.monotonic()
    directory = tmp_path_factory.mktemp("hostile-stack")
    url = f"sqlite:///{directory / 'progress.db'}"
    secrets_env = new_secrets()
    done = run_import(EXAMPLE_CSV, url, secrets_env)
    assert done.returncode == 0, done.stdout + done.stderr
    with FakeWeChat() as wechat:
        environ = {**os.environ, **secrets_env, "PROGRESS_DATABASE_URL": url,
                   "RASA_AUTH_TOKEN": secrets.token_urlsafe(24), "AGENT_DB": str(directory / "agents.db"),
                   "WECHAT_TOKEN": TOKEN, "WECHAT_APPID": APPID, "WECHAT_APPSECRET": APPSECRET,
                   "WECHAT_AES_KEY": AES_KEY, "WECHAT_MODE": "safe", "WECHAT_API_BASE": wechat.api_base}
        for name in ("WECHAT_STATE_REDIS_URL", "WECHAT_TRANSFER_TO_KF", "WECHAT_PASSIVE_ONLY",
                     "WECHAT_REPLY_DEADLINE", "PROGRESS_SERVICE_URL"):
            environ.pop(name, None)

        def point_the_fake_at_the_channel(settings):
            wechat.channel_url = f"http://127.0.0.1:{settings.rasa_port}/webhooks/wechat/webhook"

        handle = stack_factory(environ=environ, state_dir=directory, prepare=point_the_fake_at_the_channel)
        try:
            add_agent(directory / "agents.db")
            handle.say("hostile-warm-up", "你好", timeout=120)  # the first turn loads lazily
            cookie, csrf = sign_in(f"http://127.0.0.1:{handle.settings.web_port}")
            stack = HostileStack(handle, wechat, cookie, csrf)
            print(f"hostile stack ready in {time.monotonic() - started:.0f}s")
            yield stack
        finally:
            handle.stack.stop()


def check(stack: HostileStack, outcome: hs.Outcome, minimum: int = EXAMPLES) -> None:
    stack.record(outcome)
    assert outcome.count >= minimum, outcome.line()
    assert not outcome.server_errors, outcome.line() + "\n" + "\n".join(outcome.server_errors[:10])
    assert not outcome.no_answer, outcome.line() + "\nno answer:\n" + "\n".join(outcome.no_answer[:10])
    assert not stack.alive(), outcome.line() + "\n" + stack.alive()


def with_fixed(fixed, drawn, count):
    """The hand-picked cases first, then the generated ones, `count` at least in all."""
    cases = list(fixed) + list(drawn)
    return cases if len(cases) >= count else cases + list(drawn)[: count - len(cases)]


# --- REST and the widget's channel -------------------------------------------------------

# about 4 in 10 run a turn of the bot (the costly part); the rest is refused cheaply
WEBHOOK_KINDS = (["turn"] * 4 + ["turn_extra", "wrong_types", "wrong_types", "raw", "raw", "huge",
                                  "headers", "method", "path", "sender", "sender", "stream"])


@st.composite
def webhook_specs(draw):
    kind = draw(st.sampled_from(WEBHOOK_KINDS))
    spec = {"kind": kind, "sender": draw(st.integers(0, 59)),
            "text": draw(hostile_text) if kind in ("turn", "turn_extra", "stream", "headers") else "你好"}
    if kind == "turn_extra":
        spec["extra"] = draw(st.dictionaries(st.sampled_from(["metadata", "input_channel", "sender_id",
                                                              "x", "message_id", "stream"]), json_values,
                                             min_size=1, max_size=3))
    elif kind == "wrong_types":
        spec["message"] = draw(json_values.filter(lambda v: not isinstance(v, str)))
        spec["sender_value"] = draw(st.one_of(st.none(), json_values))
    elif kind == "raw":
        spec["body"] = draw(hs.raw_bodies)
    elif kind == "huge":
        spec["size"] = draw(st.integers(65 * 1024, 3 * 1024 * 1024))
        spec["chunked"] = draw(st.booleans())
    elif kind == "headers":
        spec["headers"] = draw(hs.bad_headers)
    elif kind == "method":
        spec["method"] = draw(st.sampled_from(hs.BAD_METHODS))
    elif kind == "path":
        spec["path"] = draw(st.integers(0, 100))
    elif kind == "sender":
        spec["sender_value"] = draw(st.one_of(hostile_text, st.sampled_from(
            ["web-", "web-zzzz", "web-" + "a" * 65, "agent-console-0123", "WEB-0123456789", "web-../../x",
             "agent-console-0123456789abcdeg", "web-0123abcd\n", "default", ""])))
    return spec


def webhook_case(channel: str, spec: dict) -> Case:
    base = f"/webhooks/{channel}/webhook"
    sender = (f"web-{spec['sender']:08x}-0000-4000-8000-00000000beef" if channel == "web"
              else f"hostile-rest-{spec['sender']}")
    body = {"sender": sender, "message": spec["text"]}
    json_header = [("Content-Type", "application/json")]
    kind = spec["kind"]
    if kind == "turn_extra":
        body.update(spec["extra"])
    elif kind == "wrong_types":
        body = {"sender": sender if spec["sender_value"] is None else spec["sender_value"],
                "message": spec["message"]}
    elif kind == "raw":
        return Case(kind, "POST", base, json_header, spec["body"])
    elif kind == "huge":
        payload = json.dumps({"sender": sender, "message": "好" * (spec["size"] // 3)}).encode()
        if spec["chunked"]:  # no length up front: the limit must hold on the stream too
            chunks = b"".join(b"%x\r\n%s\r\n" % (len(payload[i:i + 65536]), payload[i:i + 65536])
                              for i in range(0, len(payload), 65536)) + b"0\r\n\r\n"
            return Case(kind, "POST", base, json_header + [("Transfer-Encoding", "chunked")], chunks,
                        may_reset=True, content_length=False)
        return Case(kind, "POST", base, json_header, payload, may_reset=True)
    elif kind == "headers":
        return Case(kind, "POST", base, spec["headers"], json.dumps(body))
    elif kind == "method":
        return Case(kind, spec["method"], base, json_header, json.dumps(body))
    elif kind == "path":
        paths = hs.bad_paths(base)
        return Case(kind, "POST", paths[spec["path"] % len(paths)], json_header, json.dumps(body))
    elif kind == "sender":
        body["sender"] = spec["sender_value"]
    elif kind == "stream":
        return Case(kind, "POST", base + "?stream=true", json_header, json.dumps(body))
    return Case(kind, "POST", base, json_header, json.dumps(body))


FIXED_TEXTS = [  # always sent, on every channel that takes text
    "511302198001011234", "51130219800101123X", "511302800101123", "５１１３０２１９８００１０１１２３４",
    "511302 19800101 1234", "511302\u00a019800101\u00a01234", "511302-1980-0101-1234", "ID:511302198001011234",
    "sfz511302198001011234", "身份证号511302198001011234，帮我查NC2025000101", "5\u200b11302198001011234",
    "我" * 490 + "511302198001011234", "／restart", '/ask_materials{"disease": "高血压"}',
    "", " ", "\x00", "😀" * 600, "'; DROP TABLE events; --", "{{7*7}}",
]


def text_turns(channel):
    return [webhook_case(channel, {"kind": "turn", "sender": i % 60, "text": text})
            for i, text in enumerate(FIXED_TEXTS)]


@pytest.mark.parametrize("channel", ["rest", "web"])
def test_webhook_channels(hostile, channel):
    specs = hs.collect(webhook_specs(), EXAMPLES)
    cases = with_fixed(text_turns(channel), [webhook_case(channel, spec) for spec in specs], EXAMPLES)
    outcome = hs.run_cases(channel, hostile.settings.rasa_port, cases)
    check(hostile, outcome)


# --- socket.io ----------------------------------------------------------------------------

# A malformed websocket upgrade is a known 500 (test_known_bug_websocket_upgrade_...): not generated here.
SIO_RAW = ["handshake", "bad_eio", "bad_transport", "bogus_sid", "post_garbage", "huge_post", "method", "query"]


@st.composite
def socketio_specs(draw):
    if draw(st.integers(0, 9)) < 4:
        return {"raw": draw(st.sampled_from(SIO_RAW)), "value": draw(hostile_text),
                "body": draw(hs.raw_bodies), "method": draw(st.sampled_from(hs.BAD_METHODS))}
    kind = draw(st.sampled_from(["turn"] * 4 + ["bad_data", "session_request", "other_event", "bad_session"]))
    spec = {"event": kind, "session": draw(st.integers(0, 29)), "text": draw(hostile_text)}
    if kind == "bad_data":
        spec["data"] = draw(st.one_of(json_values, st.dictionaries(
            st.sampled_from(["message", "session_id", "metadata", "customData"]), json_values, max_size=3)))
    elif kind in ("session_request", "bad_session"):
        spec["data"] = draw(st.one_of(json_values, st.fixed_dictionaries({"session_id": json_values}),
                                      st.fixed_dictionaries({"session_id": hostile_text})))
    elif kind == "other_event":
        spec["name"] = draw(st.sampled_from(["user_uttered ", "bot_uttered", "💥", "__proto__", "session_confirm",
                                             "x" * 300, "message"]))
        spec["data"] = draw(json_values)
    return spec


def socketio_raw_case(spec) -> Case:
    base = "/socket.io/"
    value = urllib.parse.quote(spec["value"][:300], safe="")
    kind = spec["raw"]
    if kind == "handshake":
        return Case("sio_" + kind, "GET", base + "?EIO=4&transport=polling&t=" + value)
    if kind == "bad_eio":
        return Case("sio_" + kind, "GET", base + f"?EIO={value}&transport=polling")
    if kind == "bad_transport":
        return Case("sio_" + kind, "GET", base + f"?EIO=4&transport={value}")
    # python-engineio logs an unknown sid as sent: a known leak (test_known_bug_engineio_logs_...),
    # so the generated sids hold no ID number
    # and an empty sid on a POST is a known 500 (test_known_bug_engineio_post_without_a_sid_...)
    sid = "bogus-sid" if hs.has_id_number(spec["value"]) or not value else value
    if kind == "bogus_sid":
        return Case("sio_" + kind, "GET", base + f"?EIO=4&transport=polling&sid={sid}")
    if kind == "post_garbage":
        return Case("sio_" + kind, "POST", base + f"?EIO=4&transport=polling&sid={sid}",
                    [("Content-Type", "text/plain;charset=UTF-8")], spec["body"])
    if kind == "huge_post":
        return Case("sio_" + kind, "POST", base + "?EIO=4&transport=polling&sid=x",
                    [("Content-Type", "text/plain")], b"4" + b"a" * (1024 * 1024 + 10), may_reset=True)
    if kind == "method":
        return Case("sio_" + kind, spec["method"], base + "?EIO=4&transport=polling", [], spec["body"][:1000])
    return Case("sio_" + kind, "GET", base + "?" + value + "&EIO=4&" * 50)


# Bugs the suite found, each reproduced here and fixed; the tests stay. (A bug found and not
# yet fixed is kept out of the generated inputs and marked strict xfail, so its fix fails
# the test until the mark is removed.)
SID_SENTINEL = "110101199003074477"  # an ID number only the sid reproducer sends


def test_an_unknown_socketio_sid_is_masked_in_the_log(hostile):
    # the first unknown sid of this Rasa process: runs before test_socketio
    case = Case("sio_sid", "GET", f"/socket.io/?EIO=4&transport=polling&sid=sfz{SID_SENTINEL}")
    status, _ = hs.send_raw(hostile.settings.rasa_port, case)
    assert status == 400
    time.sleep(0.5)
    log = (hostile.state_dir / "stack.log").read_text(encoding="utf-8", errors="replace")
    assert SID_SENTINEL not in log, "the sid's ID number is in the stack log"


@pytest.mark.parametrize("key", [None, "not-base64!", "5113021980"])
def test_a_websocket_upgrade_with_a_bad_key_is_a_400(hostile, key):
    headers = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Version", "13")]
    if key is not None:
        headers.append(("Sec-WebSocket-Key", key))
    status, _ = hs.send_raw(hostile.settings.rasa_port,
                            Case("sio_upgrade", "GET", "/socket.io/?EIO=4&transport=websocket", headers))
    assert status == 400, status


@pytest.mark.parametrize("query", ["EIO=4&transport=polling", "EIO=4&transport=polling&sid="])
def test_an_engineio_post_without_a_sid_is_a_400(hostile, query):
    status, _ = hs.send_raw(hostile.settings.rasa_port,
                            Case("sio_post", "POST", "/socket.io/?" + query, [("Content-Type", "text/plain")], b"4"))
    assert status == 400, status


def test_socketio(hostile):
    import socketio

    specs = hs.collect(socketio_specs(), EXAMPLES)
    fixed = [{"event": "turn", "session": i % 30, "text": text} for i, text in enumerate(FIXED_TEXTS)]
    raw = [socketio_raw_case(spec) for spec in specs if "raw" in spec]
    events = fixed + [spec for spec in specs if "event" in spec]
    outcome = hs.run_cases("socketio", hostile.settings.rasa_port, raw)
    started = time.monotonic() - outcome.seconds
    url = f"http://127.0.0.1:{hostile.settings.rasa_port}"
    clients = 8

    def session_id(index: int) -> str:
        return f"hostile-sio-{index}"

    async def client_run(share):
        client = socketio.AsyncClient(reconnection=False)
        replies = asyncio.Queue()
        client.on("bot_uttered", lambda data: replies.put_nowait(data))
        await client.connect(url, socketio_path="/socket.io", transports=["websocket"])
        for index in range(30):
            await client.emit("session_request", {"session_id": session_id(index)})
        results = []
        for spec in share:
            kind = spec["event"]
            if not client.connected:
                await client.connect(url, socketio_path="/socket.io", transports=["websocket"])
                results.append(("reconnect", "reconnected"))
            while not replies.empty():
                replies.get_nowait()
            if kind == "turn":
                await client.emit("user_uttered", {"session_id": session_id(spec["session"]),
                                                   "message": spec["text"], "metadata": {"client": "mine"}})
                try:
                    await asyncio.wait_for(replies.get(), 15)
                    results.append((kind, "replied"))
                except asyncio.TimeoutError:
                    results.append((kind, "no_reply"))
                continue
            if kind == "bad_data":
                await client.emit("user_uttered", spec["data"])
            elif kind == "session_request":
                await client.emit("session_request", spec["data"])
            elif kind == "bad_session":
                data = spec["data"] if isinstance(spec["data"], dict) else {"session_id": spec["data"]}
                await client.emit("user_uttered", {**data, "message": spec["text"]})
            else:
                await client.emit(spec["name"], spec["data"])
            results.append((kind, "emitted"))
        # still served: a plain question gets its answer
        await client.emit("session_request", {"session_id": "hostile-sio-final"})
        await client.emit("user_uttered", {"session_id": "hostile-sio-final", "message": "怎么申请"})
        try:
            await asyncio.wait_for(replies.get(), 30)
            results.append(("liveness", "replied"))
        except asyncio.TimeoutError:
            results.append(("liveness", "error:no reply to a plain question"))
        await client.disconnect()
        return results

    async def run_all():
        return await asyncio.gather(*(client_run(events[i::clients]) for i in range(clients)))

    for results in asyncio.run(run_all()):
        for kind, status in results:
            outcome.record(kind, "sio_event_" + kind, status)
    outcome.seconds = time.monotonic() - started
    no_reply = outcome.statuses.get("no_reply", 0)
    check(hostile, outcome)
    assert no_reply <= outcome.kinds.get("sio_event_turn", 0) // 10, outcome.line()


# --- WeChat -------------------------------------------------------------------------------

WECHAT_KINDS = (["text"] * 3 + ["voice", "event", "other_msg", "forged", "forged", "forged", "envelope",
                                "envelope", "verify", "method"])
FORGERIES = ["bad_signature", "bad_msg_signature", "stale", "future", "nan_timestamp", "no_nonce",
             "no_signature", "plain_in_safe", "encrypt_type", "openid_mismatch", "replay_other_body",
             "empty_query"]
ENVELOPES = ["garbage_encrypt", "random_base64", "wrong_appid", "wrong_key", "broken_xml", "xml_bomb",
             "external_entity", "raw_body", "oversized", "not_utf8", "no_encrypt", "html"]


@st.composite
def wechat_specs(draw):
    kind = draw(st.sampled_from(WECHAT_KINDS))
    spec = {"kind": kind, "user": draw(st.integers(0, 59)), "text": draw(hostile_text)}
    if kind == "event":
        spec["event"] = draw(st.sampled_from(["subscribe", "unsubscribe", "CLICK", "VIEW", "SCAN", "LOCATION",
                                              "", "💥", "CLICK\x00"]))
    elif kind == "other_msg":
        spec["msg_type"] = draw(st.sampled_from(["image", "location", "link", "video", "shortvideo", "file",
                                                 "", "text ", "TEXT", "voice", "event"]))
        spec["extra"] = draw(st.sampled_from(["", "<PicUrl><![CDATA[http://x/y.png]]></PicUrl>",
                                              "<Location_X>abc</Location_X>", "<MsgId>-1</MsgId>",
                                              "<CreateTime>99999999999999999999</CreateTime>",
                                              "<Content>" + "a" * 100 + "</Content>"]))
    elif kind == "forged":
        spec["forgery"] = draw(st.sampled_from(FORGERIES))
    elif kind == "envelope":
        spec["envelope"] = draw(st.sampled_from(ENVELOPES))
        spec["body"] = draw(hs.raw_bodies)
    elif kind == "verify":
        spec["valid"] = draw(st.booleans())
    elif kind == "method":
        spec["method"] = draw(st.sampled_from(hs.BAD_METHODS))
    return spec


def openid(index: int) -> str:
    return f"oHostile{chr(97 + index % 26)}{index:04d}"


def cdata(text: str) -> str:
    return text.replace("\x00", "")


def wechat_case(fake, spec) -> Case:
    from wechatpy.crypto import WeChatCrypto

    base = "/webhooks/wechat/webhook"
    xml_header = [("Content-Type", "text/xml")]
    user = openid(spec["user"])
    kind = spec["kind"]

    def signed(xml: str, query_changes=None, mode="safe"):
        query, body = fake.signed_query(xml, mode, user)
        query.update(query_changes or {})
        query = {k: v for k, v in query.items() if v is not None}
        return base + "?" + urllib.parse.urlencode(query), body

    def envelope(encrypt: str, sign_it: bool = True):
        timestamp, nonce = str(int(time.time())), str(secrets.randbelow(10**9))
        query = {"signature": wechat_signature(fake.token, timestamp, nonce), "timestamp": timestamp,
                 "nonce": nonce, "openid": user, "encrypt_type": "aes",
                 "msg_signature": wechat_signature(fake.token, timestamp, nonce, encrypt) if sign_it else "0" * 40}
        body = f"<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        return base + "?" + urllib.parse.urlencode(query), body.encode("utf-8")

    if kind == "text":
        target, body = signed(text_xml(user, cdata(spec["text"])))
        return Case("wx_text", "POST", target, xml_header, body)
    if kind == "voice":
        target, body = signed(media_xml(user, "voice", f"<MediaId><![CDATA[m1]]></MediaId><Format><![CDATA[amr]]>"
                                                       f"</Format><Recognition><![CDATA[{cdata(spec['text'])}]]>"
                                                       f"</Recognition>"))
        return Case("wx_voice", "POST", target, xml_header, body)
    if kind == "event":
        target, body = signed(event_xml(user, spec["event"], cdata(spec["text"][:200])))
        return Case("wx_event", "POST", target, xml_header, body)
    if kind == "other_msg":
        target, body = signed(media_xml(user, spec["msg_type"], spec["extra"]))
        return Case("wx_other_msg", "POST", target, xml_header, body)
    if kind == "forged":
        forgery = spec["forgery"]
        xml = text_xml(user, cdata(spec["text"]))
        changes = {
            "bad_signature": {"signature": "0" * 40}, "bad_msg_signature": {"msg_signature": "f" * 40},
            "stale": {"timestamp": str(int(time.time()) - 3600)}, "future": {"timestamp": str(int(time.time()) + 3600)},
            "nan_timestamp": {"timestamp": "NaN"}, "no_nonce": {"nonce": None}, "no_signature": {"signature": None},
            "encrypt_type": {"encrypt_type": "rsa"}, "openid_mismatch": {"openid": "oSomeoneElse0000"},
            "empty_query": None,
        }.get(forgery, {})
        if forgery == "plain_in_safe":
            query, body = fake.signed_query(xml, "plain", user)
            return Case("wx_forged", "POST", base + "?" + urllib.parse.urlencode(query), xml_header, body)
        if forgery == "replay_other_body":
            query, _ = fake.signed_query(xml, "safe", user)
            _, other = fake.signed_query(text_xml(user, "查进度NC2025000101"), "safe", user)
            return Case("wx_forged", "POST", base + "?" + urllib.parse.urlencode(query), xml_header, other)
        if changes is None:
            _, body = fake.signed_query(xml, "safe", user)
            return Case("wx_forged", "POST", base, xml_header, body)
        target, body = signed(xml, changes)
        return Case("wx_forged", "POST", target, xml_header, body)
    if kind == "envelope":
        which = spec["envelope"]
        if which == "garbage_encrypt":
            target, body = envelope(spec["text"][:2000].replace("]]>", "") or "x")
        elif which == "random_base64":
            target, body = envelope(hs.b64(spec["body"][:4000] or b"\x00"))
        elif which in ("wrong_appid", "wrong_key"):
            crypto = (WeChatCrypto(TOKEN, AES_KEY, "wxevil00000000000") if which == "wrong_appid"
                      else WeChatCrypto(TOKEN, "B" * 43, APPID))
            sealed = crypto.encrypt_message(text_xml(user, cdata(spec["text"])), "1", str(int(time.time())))
            target, body = envelope(sealed.split("<Encrypt><![CDATA[")[1].split("]]>")[0])
        elif which == "oversized":
            target, _ = envelope("x")
            body = b"<xml><Encrypt><![CDATA[" + b"A" * (70 * 1024) + b"]]></Encrypt></xml>"
            return Case("wx_envelope", "POST", target, xml_header, body, may_reset=True)
        else:
            target, _ = envelope("eA==")
            body = {
                "broken_xml": b"<xml><Encrypt><![CDATA[abc</xml>",
                "xml_bomb": (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                             b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
                             b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
                             b"<xml><Encrypt>&lol3;</Encrypt></xml>"),
                "external_entity": (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                                    b"<xml><Encrypt>&e;</Encrypt></xml>"),
                "raw_body": spec["body"], "not_utf8": b"<xml><Encrypt>\xff\xfe\xfd</Encrypt></xml>",
                "no_encrypt": b"<xml><ToUserName>x</ToUserName></xml>", "html": b"<html><body>hi</body></html>",
            }[which]
        return Case("wx_envelope", "POST", target, xml_header, body)
    if kind == "verify":
        timestamp, nonce = str(int(time.time())), str(secrets.randbelow(10**9))
        signature = wechat_signature(fake.token, timestamp, nonce) if spec["valid"] else "0" * 40
        query = urllib.parse.urlencode({"signature": signature, "timestamp": timestamp, "nonce": nonce,
                                        "echostr": spec["text"][:3000]})
        return Case("wx_verify", "GET", base + "?" + query)
    target, body = signed(text_xml(user, "你好"))
    return Case("wx_method", spec["method"], target, xml_header, body)


def test_wechat(hostile):
    fake = hostile.wechat
    specs = hs.collect(wechat_specs(), EXAMPLES)
    fixed = [{"kind": "text", "user": i % 60, "text": text} for i, text in enumerate(FIXED_TEXTS)]
    # built just before sending: signatures carry the current time (5 minutes' tolerance)
    cases = [wechat_case(fake, spec) for spec in with_fixed(fixed, specs, EXAMPLES)]
    outcome = hs.run_cases("wechat", hostile.settings.rasa_port, cases)
    check(hostile, outcome)
    accepted = outcome.statuses.get("200", 0)
    assert accepted >= outcome.kinds["wx_text"] // 2, outcome.line()  # the signed ones do get through


# --- the progress service ------------------------------------------------------------------

PROGRESS_KINDS = (["lookup"] * 4 + ["lookup_bad_key", "agent_token", "push", "push", "push_bad_key",
                                    "method", "path", "headers"])
STATUS_FIELDS = ["status", "id_last4", "applicant_name", "disease", "channel", "submitted_at",
                 "status_updated_at", "note", "valid_from", "valid_until", "application_no"]


@st.composite
def progress_specs(draw):
    kind = draw(st.sampled_from(PROGRESS_KINDS))
    spec = {"kind": kind, "number": draw(st.one_of(st.sampled_from(KNOWN_NUMBERS), hostile_text)),
            "encode": draw(st.booleans()), "last4": draw(st.one_of(st.sampled_from(["1234", "123X", "5678", "0000"]),
                                                                    hostile_text)),
            "sender": draw(st.one_of(st.none(), hostile_text)) if kind == "lookup" else None}
    if kind == "push":
        spec["body"] = draw(st.one_of(
            json_values,
            st.dictionaries(st.sampled_from(STATUS_FIELDS), st.one_of(hostile_text, json_values), max_size=6),
            st.fixed_dictionaries({"status": st.sampled_from(["accepted", "expert_review", "approved", "已受理"]),
                                   "note": hostile_text, "applicant_name": hostile_text,
                                   "id_last4": st.sampled_from(["1234", "123X"]),
                                   "submitted_at": st.just("2025-03-01 09:00")}),
        ))
        spec["raw"] = draw(st.one_of(st.none(), hs.raw_bodies))
    elif kind in ("method", "headers"):
        spec["method"] = draw(st.sampled_from(hs.BAD_METHODS))
        spec["headers"] = draw(hs.bad_headers)
    elif kind == "path":
        spec["path"] = draw(st.integers(0, 100))
    return spec


def progress_case(spec, keys) -> Case:
    number = spec["number"]
    # sanic logs a request target it cannot parse as it came: a known leak
    # (test_known_bug_sanic_logs_an_unparsable_url_verbatim), so raw targets hold no ID number
    raw = spec["encode"] is False and not hs.has_id_number(number)
    number = number.replace(" ", "")[:3000] if raw else urllib.parse.quote(number[:3000], safe="")
    target = f"/api/v1/applications/{number or 'x'}"
    key = [("X-API-Key", keys["PROGRESS_API_KEY"])]
    last4 = [("X-Id-Last4", hs._bytes(spec["last4"][:500]).replace(b"\r", b"").replace(b"\n", b""))]
    sender = ([("X-Sender", hs._bytes(spec["sender"][:500]).replace(b"\r", b"").replace(b"\n", b""))]
              if spec["sender"] is not None else [])
    kind = spec["kind"]
    if kind == "lookup":
        return Case("lookup", "GET", target, key + last4 + sender)
    if kind == "lookup_bad_key":
        bad = hs._bytes(spec["last4"][:200]).replace(b"\r", b"").replace(b"\n", b"")
        return Case(kind, "GET", target, [("X-API-Key", bad)] + last4)
    if kind == "agent_token":
        token = hs._bytes(spec["last4"][:2000]).replace(b"\r", b"").replace(b"\n", b"")
        return Case(kind, "GET", target, key + [("X-Agent-Token", token)])
    if kind in ("push", "push_bad_key"):
        body = spec["raw"] if spec.get("raw") is not None else json.dumps(spec.get("body"), ensure_ascii=False)
        agency = keys["PROGRESS_AGENCY_KEY"] if kind == "push" else keys["PROGRESS_API_KEY"]
        return Case(kind, "POST", target + "/status", [("X-API-Key", agency), ("Content-Type", "application/json")],
                    body)
    if kind == "method":
        return Case(kind, spec["method"], target, key + last4)
    if kind == "headers":
        return Case(kind, "GET", target, key + last4 + spec["headers"])
    paths = hs.bad_paths("/api/v1/applications") + ["/openapi.json?" + number, "/health/" + number,
                                                     "/api/v1/applications/NC2025000101/status/x"]
    return Case(kind, "GET", paths[spec["path"] % len(paths)], key + last4)


def test_progress_api(hostile):
    keys = hostile.handle.environ
    specs = hs.collect(progress_specs(), EXAMPLES)
    cases = [progress_case(spec, keys) for spec in specs]
    outcome = hs.run_cases("progress", hostile.settings.progress_port, cases)
    check(hostile, outcome)


# --- the agent console -----------------------------------------------------------------------

CONSOLE_ROUTES = ["/agent/api/login", "/agent/api/me", "/agent/api/search", "/agent/api/conversation",
                  "/agent/api/logout", "/agent/api/x", "/agent/api/" + "a/" * 50, "/agent", "/",
                  "/widget/widget.js", "/static/agent.js", "/static/../app.py", "/widget/../../secrets.env",
                  "/health", "/favicon.ico", "/agent/api/search/", "/AGENT/API/SEARCH",
                  "/agent/supervisor", "/agent/api/supervisor/questions", "/agent/api/supervisor/export"]


@st.composite
def console_specs(draw):
    signed_in = draw(st.booleans())
    kinds = (["search"] * 4 + ["conversation", "conversation", "bad_csrf", "me", "route", "method", "body"]
             if signed_in else ["route"] * 3 + ["login", "body", "body", "cookies", "method", "csrf_login"])
    kind = draw(st.sampled_from(kinds))
    spec = {"signed_in": signed_in, "kind": kind, "typed": draw(st.booleans()), "text": "", "value": None,
            "route": draw(st.sampled_from(CONSOLE_ROUTES)), "headers": [], "body": b"", "method": "POST"}
    # only what the kind uses is drawn (drawing is most of the cost of 1000 examples)
    if kind in ("search", "conversation", "bad_csrf", "cookies", "csrf_login", "login"):
        spec["text"] = draw(hostile_text) if spec["typed"] or kind != "search" else ""
    if kind in ("search", "conversation", "route", "login", "csrf_login") and not (kind == "search" and spec["typed"]):
        spec["value"] = draw(json_values)
    if kind in ("me", "route", "body"):
        spec["headers"] = draw(hs.bad_headers)
    if kind in ("method", "body"):
        spec["body"] = draw(hs.raw_bodies)
    if kind == "method":
        spec["method"] = draw(st.sampled_from(hs.BAD_METHODS + ["POST"]))
    if kind in ("login", "csrf_login"):
        spec["user"] = draw(st.one_of(st.sampled_from(["admin", AGENT_USER, "root", ""]), hostile_text))
    return spec


def header_value(text: str, limit: int = 300) -> bytes:
    return hs._bytes(text[:limit]).replace(b"\r", b"").replace(b"\n", b"")


def console_case(spec, stack: HostileStack) -> Case:
    kind = spec["kind"]
    # a malformed Accept header on an unknown path is a known 500 (test_known_bug_sanic_...)
    spec = {**spec, "headers": [h for h in spec["headers"] if h[0] != "Accept"]}
    json_header = [("Content-Type", "application/json")]
    session = ([("Cookie", f"agent_session={stack.agent_cookie}"), ("X-CSRF-Token", stack.agent_csrf)]
               if spec["signed_in"] else [])
    name = ("agent_" if spec["signed_in"] else "public_") + kind
    if kind == "search":
        q = spec["text"] if spec["typed"] else spec["value"]
        return Case(name, "POST", "/agent/api/search", session + json_header, json.dumps({"q": q}))
    if kind == "conversation":
        code = spec["text"][:200] if spec["typed"] else spec["value"]
        return Case(name, "POST", "/agent/api/conversation", session + json_header, json.dumps({"code": code}))
    if kind == "bad_csrf":
        route = spec["route"] if spec["route"].startswith("/agent/api") else "/agent/api/logout"
        return Case(name, "POST", route, [("Cookie", f"agent_session={stack.agent_cookie}"),
                                          ("X-CSRF-Token", header_value(spec["text"]))] + json_header,
                    json.dumps({"q": "怎么申请"}))
    if kind == "me":
        return Case(name, "GET", "/agent/api/me", session + spec["headers"])
    if kind == "route":
        method = "GET" if spec["typed"] else "POST"
        route = spec["route"]
        if spec["signed_in"] and route == "/agent/api/logout":
            route = "/agent/api/me"  # the signed-in session stays signed in
        return Case(name, method, route, session + json_header + spec["headers"], json.dumps(spec["value"]))
    if kind == "method":
        route = spec["route"]
        if spec["signed_in"] and route == "/agent/api/logout":
            route = "/agent/api/me"
        return Case(name, spec["method"], route, session + json_header, spec["body"][:2000])
    if kind == "body":
        route = spec["route"] if spec["route"].startswith("/agent/api") else "/agent/api/search"
        if spec["signed_in"] and route == "/agent/api/logout":
            route = "/agent/api/search"
        return Case(name, "POST", route, session + json_header + spec["headers"], spec["body"])
    if kind == "cookies":
        return Case(name, "POST", "/agent/api/search",
                    [("Cookie", b"agent_session=" + header_value(spec["text"]) + b"; agent_csrf=x"),
                     ("X-CSRF-Token", header_value(spec["text"]))] + json_header, json.dumps({"q": spec["text"]}))
    if kind == "login":  # no CSRF pair: refused before any password check
        return Case(name, "POST", "/agent/api/login", json_header,
                    json.dumps({"username": spec["user"], "password": spec["value"]}))
    # a CSRF pair a script can forge (cookie = header): the password check runs (scrypt)
    return Case(name, "POST", "/agent/api/login",
                [("Cookie", "agent_csrf=forged"), ("X-CSRF-Token", "forged")] + json_header,
                json.dumps({"username": spec["user"] if spec["typed"] else spec["value"],
                            "password": spec["text"]}))


def test_console_api(hostile):
    specs = hs.collect(console_specs(), 2 * EXAMPLES)
    cases = [console_case(spec, hostile) for spec in specs]
    outcome = hs.run_cases("console", hostile.settings.web_port, cases)
    check(hostile, outcome, 2 * EXAMPLES)
    signed_in = sum(count for kind, count in outcome.kinds.items() if kind.startswith("agent_"))
    assert signed_in >= EXAMPLES * 0.8 and outcome.count - signed_in >= EXAMPLES * 0.8, outcome.summary()["kinds"]
    # the agent is still signed in: nothing above ended the session
    request = urllib.request.Request(f"http://127.0.0.1:{hostile.settings.web_port}/agent/api/me",
                                     headers={"Cookie": f"agent_session={hostile.agent_cookie}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read())["user"] == AGENT_USER


def test_the_scanners_find_what_they_look_for(tmp_path):
    """The checks below are only as good as the detector: disguised ID numbers are found,
    masked ones, application numbers, phone numbers and hashes are not."""
    for text in FIXED_TEXTS[:11]:
        assert hs.has_id_number(text), text
    for text in ["**************1234", "NC2025000101", "13800138000", "ab" + "1" * 40, "0" * 16 + "f" * 16]:
        assert not hs.has_id_number(text), text
    log = tmp_path / "stack.log"
    log.write_text("[rasa] ok\n[web] 身份证 511302 19800101 1234\n"
                   "[rasa] uri: 'ws://h/socket.io/?transport=websocket&EIO=4&t=1796286453.70889'\n",
                   encoding="utf-8")
    assert hs.log_findings(log) == (3, ["[web] 身份证 511302 19800101 1234"])


# --- afterwards ---------------------------------------------------------------------------------

def test_afterwards_every_process_lives_and_no_id_number_is_kept(hostile):
    assert not hostile.alive(), hostile.alive()
    time.sleep(2)  # the last turns (late WeChat replies) settle
    state = hostile.state_dir
    report = {}
    events, findings = hs.tracker_findings(state / "rasa-tracker.db")
    report["tracker"] = {"events": events, "findings": findings[:20]}
    lines, log_found = hs.log_findings(state / "stack.log", ignore=[SID_SENTINEL])
    report["stack.log"] = {"lines": lines, "findings": log_found[:20]}
    for name in ("progress.db", "agents.db", "conversation-codes.db"):
        path = state / name
        if path.is_file():
            values, found = hs.database_findings(path)
            report[name] = {"values": values, "findings": found[:20]}
    SUMMARY["scan"] = report
    (state / "hostile-summary.json").write_text(json.dumps(SUMMARY, ensure_ascii=False, indent=1), encoding="utf-8")
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "findings"} for k, v in report.items()}))
    assert events > EXAMPLES, report["tracker"]
    leaks = {name: part["findings"] for name, part in report.items() if part["findings"]}
    assert not leaks, json.dumps(leaks, ensure_ascii=False, indent=1)
    assert not hostile.alive(), hostile.alive()


# --- found bugs that would leave their traces: after the scan above ----------------------

URL_SENTINEL = "110101199003070038"  # an ID number only the raw-URL reproducer sends


def test_an_unparsable_url_is_masked_in_the_log(hostile):
    case = Case("raw_url", "GET", f"/api/v1/applications/身份证{URL_SENTINEL}".encode("utf-8"))
    hs.send_raw(hostile.settings.progress_port, case)
    time.sleep(0.5)
    log = (hostile.state_dir / "stack.log").read_text(encoding="utf-8", errors="replace")
    assert URL_SENTINEL not in log, "the URL's ID number is in the stack log"


def test_the_cut_never_leaves_an_id_number(hostile):
    sender = "hostile-known-cut"
    hostile.handle.say(sender, "我" * 482 + "511302198001011234" + "138001380001")
    _, findings = hs.tracker_findings(hostile.state_dir / "rasa-tracker.db")
    assert not [finding for finding in findings if finding.startswith(sender)], findings


@pytest.mark.parametrize("accept", ["a/b/c", "*/**/*"])
def test_a_malformed_accept_on_an_unknown_path_is_a_404(hostile, accept):
    status, _ = hs.send_raw(hostile.settings.web_port,
                            Case("accept", "GET", "/static/../app.py", [("Accept", accept)]))
    assert status is not None and status < 500, status


PUSH_SENTINEL = "110101199003071234"  # an ID number only the push reproducer sends


def test_an_agency_push_keeps_no_id_number(hostile):
    body = json.dumps({"status": "accepted", "note": f"身份证 {PUSH_SENTINEL[:6]} {PUSH_SENTINEL[6:14]} "
                                                      f"{PUSH_SENTINEL[14:]}"}, ensure_ascii=False)
    status, _ = hs.send_raw(hostile.settings.progress_port, Case(
        "push", "POST", "/api/v1/applications/NC2025000103/status",
        [("X-API-Key", hostile.handle.environ["PROGRESS_AGENCY_KEY"]), ("Content-Type", "application/json")], body))
    assert status == 200
    _, findings = hs.database_findings(hostile.state_dir / "progress.db")
    assert not findings, findings

"""Test doubles that speak the real protocols over real sockets on 127.0.0.1.

FakeWeChat   - WeChat's side: signs/encrypts pushes with wechatpy (an implementation
               independent of ours), retries on its own schedule, and serves the
               stable_token, customer-service, template-message and menu/create endpoints
               with scripted error codes (45015 outside the 48 h window, 45047 quota,
               43004 not a follower: `send_errors`, `template_errors`, `unfollowed`); `stable_tokens` makes stable_token hand out its last token
               again unless force_refresh is set, as WeChat's cache does; `resend`
               replays a captured signed query with another body.
ChannelServer - our WeChatInput mounted by Rasa's own `register()` in a sanic server
               running in a background thread, with a stand-in agent.
StubAgent    - stands in for rasa's Agent.handle_message: records every run, can be slow.
start_wechat_stack - the stack `make run` starts, with WeChat (safe mode) behind a FakeWeChat.
"""
import asyncio
import hashlib
import itertools
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Mapping, Optional

from wechatpy.crypto import WeChatCrypto

TOKEN = "testtoken123"
APPID = "wx0123456789abcdef"
APPSECRET = "s3cret"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
ACCOUNT = "gh_0123456789ab"


def wechat_signature(*parts: str) -> str:
    # written out here on purpose rather than imported from wechat_channel
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def text_xml(openid: str, content: str, msg_id: Optional[str] = None,
             create_time: Optional[int] = None, extra: str = "") -> str:
    create_time = create_time or int(time.time())
    msg_id = msg_id or str(next(_msg_ids))
    return (f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
            f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId>{extra}</xml>")


def event_xml(openid: str, event: str, key: str = "", create_time: Optional[int] = None) -> str:
    create_time = create_time or int(time.time())
    return (f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
            f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[{event}]]></Event><EventKey><![CDATA[{key}]]></EventKey></xml>")


def media_xml(openid: str, msg_type: str, extra: str = "") -> str:
    return (f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
            f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[{msg_type}]]></MsgType>"
            f"{extra}<MsgId>{next(_msg_ids)}</MsgId></xml>")


_msg_ids = itertools.count(7000000000000000001)


class PushResult:
    def __init__(self, status: Optional[int], body: bytes, elapsed: float):
        self.status, self.body, self.elapsed = status, body, elapsed
        self.reply: Optional[Dict[str, str]] = None  # decrypted/parsed passive reply

    @property
    def timed_out(self) -> bool:
        return self.status is None

    @property
    def content(self) -> Optional[str]:
        return self.reply.get("Content") if self.reply else None

    def __repr__(self) -> str:
        return f"PushResult({self.status}, {self.body[:80]!r}, {self.elapsed:.2f}s)"


class FakeWeChat:
    def __init__(self, token: str = TOKEN, appid: str = APPID, appsecret: str = APPSECRET,
                 aes_key: str = AES_KEY):
        self.token, self.appid, self.appsecret, self.aes_key = token, appid, appsecret, aes_key
        self.crypto = WeChatCrypto(token, aes_key, appid)
        self.lock = threading.Lock()
        self.sent: List[Dict[str, Any]] = []  # accepted customer-service messages
        self.send_calls: List[Dict[str, Any]] = []  # every custom/send call
        self.transfers: List[Dict[str, str]] = []  # passive transfer_customer_service replies
        self.menu_calls: List[Dict[str, Any]] = []  # every menu/create call (token + body)
        self.menu_errors: List[int] = []  # errcodes returned by the next menu/create calls
        self.token_calls = 0
        self.token_requests: List[Dict[str, Any]] = []  # every stable_token body (no secret)
        self.valid_tokens: set = set()
        # WeChat's stable_token caches its token: with this on, a call without
        # force_refresh returns the last token again, even one invalidate_tokens() revoked.
        self.stable_tokens = False
        self.current_token: Optional[str] = None
        self.send_errors: List[int] = []  # errcodes returned by the next custom/send calls
        self.no_permission = False  # every custom/send answers 48001
        self.templates: List[Dict[str, Any]] = []  # accepted template messages
        self.template_calls: List[Dict[str, Any]] = []  # every template/send call
        self.template_errors: List[int] = []  # errcodes returned by the next template/send calls
        self.unfollowed: set = set()  # OpenIDs that do not follow: 43004 to both endpoints
        self.token_delay = 0.0
        self.channel_url: Optional[str] = None
        self.last_verify_query: Optional[Dict[str, str]] = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.api_base = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()

    # --- API side ------------------------------------------------------------------
    def invalidate_tokens(self) -> None:
        with self.lock:
            self.valid_tokens.clear()

    def messages_to(self, openid: str) -> List[str]:
        with self.lock:
            return [m["text"]["content"] for m in self.sent if m["touser"] == openid]

    def templates_to(self, openid: str) -> List[Dict[str, str]]:
        """The accepted template messages to `openid`, as {key: value}."""
        with self.lock:
            return [{key: field["value"] for key, field in m["data"].items()}
                    for m in self.templates if m["touser"] == openid]

    def wait_for_templates(self, openid: str, count: int,
                           timeout: float = 10.0) -> List[Dict[str, str]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.templates_to(openid)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        return self.templates_to(openid)

    def wait_for_messages(self, openid: str, count: int, timeout: float = 10.0) -> List[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            messages = self.messages_to(openid)
            if len(messages) >= count:
                return messages
            time.sleep(0.05)
        return self.messages_to(openid)

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _json(self, data: Dict[str, Any]) -> None:
                body = json.dumps(data, ensure_ascii=False).encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    payload = json.loads(raw.decode("utf-8"))
                except ValueError:
                    return self._json({"errcode": 47001, "errmsg": "data format error"})
                if url.path == "/cgi-bin/stable_token":
                    time.sleep(fake.token_delay)
                    with fake.lock:
                        fake.token_calls += 1
                        fake.token_requests.append({k: v for k, v in payload.items() if k != "secret"})
                        if (payload.get("appid"), payload.get("secret")) != (fake.appid, fake.appsecret):
                            return self._json({"errcode": 40125, "errmsg": "invalid appsecret"})
                        if (fake.stable_tokens and fake.current_token
                                and payload.get("force_refresh") is not True):
                            token = fake.current_token
                        else:
                            token = f"TOKEN-{fake.token_calls}"
                            fake.valid_tokens.add(token)
                        fake.current_token = token
                    return self._json({"access_token": token, "expires_in": 7200})
                if url.path == "/cgi-bin/message/custom/send":
                    with fake.lock:
                        fake.send_calls.append({"token": query.get("access_token"), **payload})
                        if query.get("access_token") not in fake.valid_tokens:
                            return self._json({"errcode": 40001, "errmsg": "invalid credential"})
                        if fake.no_permission:
                            return self._json({"errcode": 48001, "errmsg": "api unauthorized"})
                        if payload.get("touser") in fake.unfollowed:
                            return self._json({"errcode": 43004, "errmsg": "require subscribe"})
                        if fake.send_errors:
                            code = fake.send_errors.pop(0)
                            return self._json({"errcode": code, "errmsg": "scripted"})
                        fake.sent.append(payload)
                    return self._json({"errcode": 0, "errmsg": "ok"})
                if url.path == "/cgi-bin/message/template/send":
                    with fake.lock:
                        fake.template_calls.append({"token": query.get("access_token"), **payload})
                        if query.get("access_token") not in fake.valid_tokens:
                            return self._json({"errcode": 40001, "errmsg": "invalid credential"})
                        if not payload.get("template_id") or not isinstance(payload.get("data"), dict):
                            return self._json({"errcode": 40037, "errmsg": "invalid template_id"})
                        if payload.get("touser") in fake.unfollowed:
                            return self._json({"errcode": 43004, "errmsg": "require subscribe"})
                        if fake.template_errors:
                            code = fake.template_errors.pop(0)
                            return self._json({"errcode": code, "errmsg": "scripted"})
                        fake.templates.append(payload)
                    return self._json({"errcode": 0, "errmsg": "ok", "msgid": len(fake.templates)})
                if url.path == "/cgi-bin/menu/create":
                    with fake.lock:
                        fake.menu_calls.append({"token": query.get("access_token"), "body": payload})
                        if query.get("access_token") not in fake.valid_tokens:
                            return self._json({"errcode": 40001, "errmsg": "invalid credential"})
                        if fake.menu_errors:
                            code = fake.menu_errors.pop(0)
                            return self._json({"errcode": code, "errmsg": "scripted"})
                    return self._json({"errcode": 0, "errmsg": "ok"})
                self.send_response(404)
                self.end_headers()

        return Handler

    # --- push side -----------------------------------------------------------------
    def signed_query(self, body_xml: str, mode: str, openid: Optional[str],
                     timestamp: Optional[int] = None) -> (Dict[str, str], bytes):
        timestamp = str(timestamp if timestamp is not None else int(time.time()))
        nonce = str(uuid.uuid4().int % 10**9)
        query = {"signature": wechat_signature(self.token, timestamp, nonce),
                 "timestamp": timestamp, "nonce": nonce}
        if openid:
            query["openid"] = openid
        if mode == "plain":
            return query, body_xml.encode("utf-8")
        envelope = self.crypto.encrypt_message(body_xml, nonce, timestamp)
        encrypt = envelope.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
        query.update({"encrypt_type": "aes",
                      "msg_signature": wechat_signature(self.token, timestamp, nonce, encrypt)})
        if mode == "compatible":  # plaintext fields and Encrypt side by side
            body = body_xml.replace("</xml>", f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>")
        else:
            body = (f"<xml><ToUserName><![CDATA[{self.account}]]></ToUserName>"
                    f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>")
        return query, body.encode("utf-8")

    account = ACCOUNT

    def post(self, query: Dict[str, str], body: bytes, timeout: float = 5.0,
             mode: str = "plain", url: Optional[str] = None) -> PushResult:
        """POST to `url` (a replica's webhook; default: channel_url)."""
        url = (url or self.channel_url) + "?" + urllib.parse.urlencode(query)
        request = urllib.request.Request(url, data=body, method="POST",
                                         headers={"Content-Type": "text/xml"})
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                result = PushResult(response.status, response.read(), time.monotonic() - started)
        except urllib.error.HTTPError as error:
            return PushResult(error.code, error.read(), time.monotonic() - started)
        except (socket.timeout, TimeoutError, urllib.error.URLError, ConnectionError):
            return PushResult(None, b"", time.monotonic() - started)
        if result.status == 200 and result.body not in (b"", b"success"):
            result.reply = self.read_reply(result.body, mode == "plain" and b"<Encrypt>" not in result.body)
            if result.reply.get("MsgType") == "transfer_customer_service":
                with self.lock:
                    self.transfers.append(result.reply)
        return result

    def read_reply(self, body: bytes, plain: bool) -> Dict[str, str]:
        from defusedxml import ElementTree
        text = body.decode("utf-8")
        if not plain:
            root = ElementTree.fromstring(text)
            fields = {child.tag: child.text for child in root}
            # wechatpy checks the MsgSignature and the appid while decrypting
            text = self.crypto.decrypt_message(text, fields["MsgSignature"],
                                               fields["TimeStamp"], fields["Nonce"])
        root = ElementTree.fromstring(text)
        return {child.tag: child.text or "" for child in root}

    def push(self, body_xml: str, mode: str = "plain", openid: Optional[str] = None,
             timeout: float = 5.0, url: Optional[str] = None) -> PushResult:
        query, body = self.signed_query(body_xml, mode, openid)
        return self.post(query, body, timeout=timeout, mode=mode, url=url)

    def push_with_retries(self, body_xml: str, mode: str = "plain", attempts: int = 3,
                          interval: float = 5.0, timeout: float = 5.0) -> List[PushResult]:
        """WeChat's schedule: the same message `attempts` times, `interval` apart, each
        attempt dropped after `timeout` — whatever the earlier attempts answered."""
        results: List[Optional[PushResult]] = [None] * attempts

        def attempt(index: int) -> None:
            results[index] = self.push(body_xml, mode=mode, timeout=timeout)

        threads = []
        for index in range(attempts):
            if index:
                time.sleep(interval)
            thread = threading.Thread(target=attempt, args=(index,))
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join()
        return results  # type: ignore[return-value]

    def resend(self, query: Dict[str, str], body_xml: str, mode: str = "plain") -> PushResult:
        """A captured push's signed URL again, with another body (what a replay attacker
        can do): in plain mode the body as is; otherwise encrypted for the same timestamp
        and nonce, but the captured msg_signature stays (only WeChat can sign)."""
        if mode == "plain":
            body = body_xml.encode("utf-8")
        else:
            envelope = self.crypto.encrypt_message(body_xml, query["nonce"], query["timestamp"])
            encrypt = envelope.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
            body = (f"<xml><ToUserName><![CDATA[{self.account}]]></ToUserName>"
                    f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>").encode("utf-8")
        return self.post(dict(query), body, mode=mode)

    def verify_url(self, echostr: str, timestamp: Optional[int] = None,
                   signature: Optional[str] = None,
                   query: Optional[Dict[str, str]] = None) -> PushResult:
        """The GET URL check; `query`: a captured signed query to send again with this echostr."""
        if query is None:
            timestamp = str(timestamp if timestamp is not None else int(time.time()))
            nonce = str(uuid.uuid4().int % 10**9)
            query = {"signature": signature or wechat_signature(self.token, timestamp, nonce),
                     "timestamp": timestamp, "nonce": nonce}
        query = {**query, "echostr": echostr}
        self.last_verify_query = query
        started = time.monotonic()
        try:
            with urllib.request.urlopen(self.channel_url + "?" + urllib.parse.urlencode(query),
                                        timeout=5) as response:
                return PushResult(response.status, response.read(), time.monotonic() - started)
        except urllib.error.HTTPError as error:
            return PushResult(error.code, error.read(), time.monotonic() - started)


class StubAgent:
    """Stands in for rasa.core.agent.Agent: `handle_message` is what Rasa's register() calls."""

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.delays: Dict[str, float] = {}  # text -> seconds, overrides `delay`
        self.runs: List[Dict[str, Any]] = []
        self.responses: Dict[str, List[Dict[str, Any]]] = {}  # text -> messages
        self.fail_on: set = set()

    async def handle_message(self, message) -> None:
        self.runs.append({"text": message.text, "sender_id": message.sender_id,
                          "input_channel": message.input_channel,
                          "metadata": message.metadata})
        delay = self.delays.get(message.text, self.delay)
        if delay:
            await asyncio.sleep(delay)
        if message.text in self.fail_on:
            raise RuntimeError("the bot broke")
        out = message.output_channel
        for reply in self.responses.get(message.text, [{"text": f"答复：{message.text}"}]):
            if reply.get("custom"):
                await out.send_custom_json(message.sender_id, reply["custom"])
            elif reply.get("buttons"):
                await out.send_text_with_buttons(message.sender_id, reply["text"], reply["buttons"])
            else:
                await out.send_text_message(message.sender_id, reply["text"])

    def texts(self) -> List[str]:
        return [run["text"] for run in self.runs]


class ChannelServer:
    """Sanic + Rasa's register() + our WeChatInput, in a thread with its own event loop."""

    def __init__(self, channel, agent: StubAgent):
        self.channel, self.agent = channel, agent
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._server = None
        self.port: Optional[int] = None

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks/wechat/webhook"

    def __enter__(self):
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(15)
        return self

    def __exit__(self, *exc):
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(15)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)

    async def _start(self) -> None:
        from rasa.core.channels.channel import register
        from sanic import Sanic

        Sanic.test_mode = True
        app = Sanic(f"wechat_test_{uuid.uuid4().hex[:8]}")
        app.config.ACCESS_LOG = False
        app.ctx.agent = self.agent
        register([self.channel], app, route="/webhooks/")
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._server = await app.create_server(sock=sock, return_asyncio_server=True)
        await self._server.startup()
        await self._server.before_start()
        await self._server.after_start()

    async def _stop(self) -> None:
        await self._server.before_stop()
        self._server.close()
        await self._server.wait_closed()
        await self._server.after_stop()

    def run(self, coroutine, timeout: float = 10):
        """Run a coroutine on the server's loop (to inspect channel state safely)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)


class Recorder:
    """Work for InFlight.attempt that counts its runs and records passive and late replies."""

    def __init__(self):
        self.runs, self.passive, self.late = 0, [], []

    def work(self, seconds, result="答案"):
        async def go():
            self.runs += 1
            await asyncio.sleep(seconds)
            return result
        return go

    def on_passive(self, result):
        self.passive.append(result)
        return result

    async def on_late(self, result):
        self.late.append(result)


# WeChat settings a developer's shell may hold that would change what a stack test sees
_AMBIENT_WECHAT = ("WECHAT_STATE_REDIS_URL", "WECHAT_TRANSFER_TO_KF", "WECHAT_PASSIVE_ONLY",
                   "WECHAT_REPLY_DEADLINE", "PROGRESS_EVENTS_URL", "STATUS_SUBSCRIPTIONS_DATABASE_URL",
                   "WECHAT_STATUS_TEMPLATE_ID", "WECHAT_STATUS_TEMPLATE_KEYS")


def start_wechat_stack(stack_factory, directory, wechat: "FakeWeChat", secrets_env: Mapping[str, str],
                       settings: Optional[Mapping[str, str]] = None,
                       prepare: Optional[Callable[[Any], None]] = None):
    """The stack `make run` starts (tests/conftest.py's stack_factory) with WeChat in safe
    mode behind `wechat`, the progress stand-in on SQLite in `directory`; `settings` are
    added to (or override) the environment; `prepare(stack settings)` runs once the ports
    are known. The fake is pointed at Rasa's WeChat webhook."""
    environ = {**os.environ, **secrets_env,
               "PROGRESS_DATABASE_URL": f"sqlite:///{directory / 'progress.db'}",
               "WECHAT_TOKEN": TOKEN, "WECHAT_APPID": APPID, "WECHAT_APPSECRET": APPSECRET,
               "WECHAT_AES_KEY": AES_KEY, "WECHAT_MODE": "safe", "WECHAT_API_BASE": wechat.api_base}
    for name in _AMBIENT_WECHAT:
        environ.pop(name, None)
    environ.update(settings or {})

    def point_the_fake_at_rasa(stack_settings):
        wechat.channel_url = f"http://127.0.0.1:{stack_settings.rasa_port}/webhooks/wechat/webhook"
        if prepare is not None:
            prepare(stack_settings)

    return stack_factory(environ=environ, state_dir=directory, prepare=point_the_fake_at_rasa)

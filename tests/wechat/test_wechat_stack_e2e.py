"""WeChat end to end: the stack `make run` starts (trained model, action server, progress
stand-in) with WeChat settings, and the fake WeChat pushing encrypted messages (safe mode)
as the real servers do. Covers the welcome, a knowledge answer, the walk picked by its
numbered buttons, a full progress lookup, and a slow progress backend whose answer misses
WeChat's deadline and goes out through the customer-service API.
"""
import re
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.progress.progress_helpers import EXAMPLE_CSV, new_secrets, run_import
from wechat_fakes import FakeWeChat, event_xml, start_wechat_stack, text_xml

# one started stack for the module, so xdist keeps these tests on one worker
pytestmark = pytest.mark.xdist_group("wechat_stack")

REPLY_DEADLINE = 1.5  # seconds; WeChat's is 5 s, shorter here so the slow case is quick
SLOW_BACKEND = 3.0  # seconds the progress backend takes in the slow case


class SlowProxy:
    """Forwards HTTP to `target` after `delay` seconds: a progress backend that is slow."""

    def __init__(self):
        self.target = None
        self.delay = 0.0
        self.requests = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _forward(self):
                proxy.requests += 1
                time.sleep(proxy.delay)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "connection", "content-length")}
                request = urllib.request.Request(proxy.target + self.path, data=body,
                                                 headers=headers, method=self.command)
                try:
                    with urllib.request.urlopen(request, timeout=10) as response:
                        status, payload, kind = response.status, response.read(), response.headers
                except urllib.error.HTTPError as error:
                    status, payload, kind = error.code, error.read(), error.headers
                self.send_response(status)
                self.send_header("Content-Type", kind.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self):
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def wechat():
    with FakeWeChat() as fake:
        yield fake


@pytest.fixture(scope="module")
def proxy():
    slow = SlowProxy()
    yield slow
    slow.close()


@pytest.fixture(scope="module")
def stack(stack_factory, tmp_path_factory, wechat, proxy):
    directory = tmp_path_factory.mktemp("wechat-stack")
    secrets_env = new_secrets()
    done = run_import(EXAMPLE_CSV, f"sqlite:///{directory / 'progress.db'}", secrets_env)
    assert done.returncode == 0, done.stdout + done.stderr

    def point_the_proxy_at_the_stand_in(settings):
        proxy.target = f"http://127.0.0.1:{settings.progress_port}"

    # the actions (and the console) reach the progress service through the proxy
    handle = start_wechat_stack(stack_factory, directory, wechat, secrets_env, {
        "WECHAT_REPLY_DEADLINE": str(REPLY_DEADLINE),
        "PROGRESS_SERVICE_URL": proxy.url, "PROGRESS_TIMEOUT_SECONDS": "8"},
        prepare=point_the_proxy_at_the_stand_in)
    yield handle
    handle.stack.stop()


def new_openid() -> str:
    return "oE2E" + uuid.uuid4().hex[:24]


def say(wechat, openid, text):
    result = wechat.push(text_xml(openid, text), mode="safe")
    assert result.status == 200, result
    return result.content or ""


def visible(text):
    """What the phone shows: tappable menu lines (<a href="weixin://bizmsgmenu…">) as text."""
    return re.sub(r"<[^>]+>", "", text)


def test_welcome_then_a_knowledge_answer(stack, wechat):
    user = new_openid()
    welcome = wechat.push(event_xml(user, "subscribe"), mode="safe")
    assert welcome.status == 200 and "1. " in welcome.content
    answer = say(wechat, user, "办慢特病要准备啥子材料")
    assert "诊断证明" in answer and "系统有点忙" not in answer
    assert len(visible(answer)) <= 200


def test_the_walk_is_picked_and_followed_by_numbers(stack, wechat):
    user = new_openid()
    offer = visible(say(wechat, user, "怎么申请"))
    lines = {line.split(".", 1)[1].strip(): line.split(".", 1)[0].strip()
             for line in offer.splitlines() if line[:1].isdigit() and "." in line}
    assert "去窗口办" in lines, offer
    first = say(wechat, user, lines["去窗口办"])  # the number, as a person types it
    assert "【医保经办窗口】第1步 / 共4步" in first
    assert "第2步 / 共4步" in say(wechat, user, "下一步")
    assert wechat.messages_to(user) == []  # every answer was in time, none went late


def test_a_full_progress_lookup(stack, wechat, proxy):
    proxy.delay = 0.0
    user = new_openid()
    asked = say(wechat, user, "帮我查下NC2025000102的进度")
    assert "身份证" in asked
    answer = say(wechat, user, "5678")
    assert "已受理" in answer and "李*明" in answer and "李小明" not in answer


def test_a_slow_backend_answers_late_through_customer_service_once(stack, wechat, proxy):
    user = new_openid()
    assert "身份证" in say(wechat, user, "查进度NC2025000101")
    proxy.delay = SLOW_BACKEND
    try:
        started = time.monotonic()
        result = wechat.push(text_xml(user, "1234"), mode="safe")
        # past the channel's deadline WeChat gets an empty success, not an error
        assert result.status == 200 and not result.content, result
        assert time.monotonic() - started < REPLY_DEADLINE + 1.0
        late = wechat.wait_for_messages(user, 1, timeout=SLOW_BACKEND + 10)
    finally:
        proxy.delay = 0.0
    assert len(late) == 1 and "已提交" in late[0] and "张三" not in late[0]
    time.sleep(1.0)
    assert len(wechat.messages_to(user)) == 1  # exactly once
    # the conversation goes on normally afterwards
    assert "诊断证明" in say(wechat, user, "要带什么材料")

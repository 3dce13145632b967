"""Status-change notifications through the WeChat channel (issue 19): our WeChatInput in a
real sanic server (a stand-in agent instead of the trained model), the fake WeChat over
loopback, the subscription store on SQLite. The route /webhooks/wechat/status-events takes
the progress system's signed event; the fake records what reached each user.

The same flow through the whole stack (trained model, action server, progress service
pushing its events) is tests/wechat/test_status_notifications_stack_e2e.py.
"""
import json
import time
import urllib.error
import urllib.request
import uuid

import pytest

from core import status_events
from core.status_subscriptions import (
    DECLINE_PAYLOAD, SUBSCRIBE_PAYLOAD, SubscriptionStore,
)
from wechat_fakes import text_xml

SECRET = "status-events-test-secret"
TEMPLATE_ID = "TPL-status-change"
OFFER_BUTTONS = [{"title": "通知我", "payload": SUBSCRIBE_PAYLOAD},
                 {"title": "不用了", "payload": DECLINE_PAYLOAD}]


@pytest.fixture
def store_url(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'state' / 'status-subscriptions.db'}"
    monkeypatch.setenv("STATUS_SUBSCRIPTIONS_DATABASE_URL", url)
    return url


@pytest.fixture
def store(store_url):
    opened = SubscriptionStore(store_url)
    yield opened
    opened.close()


def new_openid() -> str:
    return "oNTF" + uuid.uuid4().hex[:24]


def say(fake, openid, text):
    result = fake.push(text_xml(openid, text), mode="safe")
    assert result.status == 200, result
    return result.content or ""


def subscribe(fake, agent, store, openid, number, status="accepted"):
    """What a lookup does (the action writes the offer, the answer carries the two numbered
    lines), then the person answers "1"."""
    store.offer(openid, number, status)
    agent.responses["查进度"] = [{"text": "已受理。", "buttons": OFFER_BUTTONS}]
    offered = say(fake, openid, "查进度")
    assert "1. 通知我" in offered and "2. 不用了" in offered
    runs = len(agent.runs)
    answer = say(fake, openid, "1")
    assert "状态有变化时" in answer and "取消通知" in answer, answer
    assert len(agent.runs) == runs  # answered by the channel: the bot never ran


def post_event(server, number, status, updated_at="2026-12-03 10:00:00+08:00", secret=SECRET,
               now=None, body=None, headers=None):
    body = body if body is not None else status_events.event_body(number, status, updated_at)
    sent = headers if headers is not None else status_events.signed_headers(
        secret, body, now if now is not None else time.time())
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.port}/webhooks/wechat/status-events", data=body,
        method="POST", headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def settle(store, number, count, timeout=10.0):
    """Wait until `count` changes of `number` have an outcome (the route answers 202 first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        outcomes = [o for o in store.outcomes(number) if o != "claimed"]
        if len(outcomes) >= count:
            return outcomes
        time.sleep(0.05)
    return store.outcomes(number)


def test_a_change_reaches_its_subscriber_once_and_nobody_else(channel_for, fake_wechat, store):
    server, agent = channel_for(events_secret=SECRET)
    alice, bob, carol = new_openid(), new_openid(), new_openid()
    subscribe(fake_wechat, agent, store, alice, "NC2025000101")
    subscribe(fake_wechat, agent, store, bob, "NC2025000102")
    say(fake_wechat, carol, "你好")  # in the window, subscribed to nothing

    assert post_event(server, "NC2025000101", "expert_review")[0] == 202
    told = fake_wechat.wait_for_messages(alice, 1)
    assert len(told) == 1
    assert "NC********01" in told[0] and "专家审核中" in told[0] and "查进度" in told[0]
    assert "NC2025000101" not in told[0]
    assert len(told[0]) <= 120

    # the same event again (a redelivery, another replica): nothing more
    assert post_event(server, "NC2025000101", "expert_review")[0] == 202
    assert settle(store, "NC2025000101", 1) == ["sent"]
    time.sleep(1.0)
    assert len(fake_wechat.messages_to(alice)) == 1
    assert fake_wechat.messages_to(bob) == [] and fake_wechat.messages_to(carol) == []
    assert fake_wechat.templates == []


def test_cancel_stops_the_notifications(channel_for, fake_wechat, store):
    server, agent = channel_for(events_secret=SECRET)
    alice = new_openid()
    subscribe(fake_wechat, agent, store, alice, "NC2025000101")
    runs = len(agent.runs)
    answer = say(fake_wechat, alice, "取消通知")
    assert "已取消" in answer and len(agent.runs) == runs
    assert "没有开通" in say(fake_wechat, alice, "取消通知。")
    assert post_event(server, "NC2025000101", "need_more")[0] == 202
    time.sleep(1.5)
    assert fake_wechat.messages_to(alice) == [] and fake_wechat.templates == []
    assert store.outcomes("NC2025000101") == []  # nobody to tell


def test_declining_subscribes_nothing(channel_for, fake_wechat, store):
    server, agent = channel_for(events_secret=SECRET)
    alice = new_openid()
    store.offer(alice, "NC2025000101", "accepted")
    agent.responses["查进度"] = [{"text": "已受理。", "buttons": OFFER_BUTTONS}]
    say(fake_wechat, alice, "查进度")
    assert "不通知" in say(fake_wechat, alice, "2")
    assert store.subscribers("NC2025000101") == []
    # "1" after declining: the offer is gone, the person is asked to look up again
    assert "再查一次" in say(fake_wechat, alice, "1")


@pytest.mark.parametrize("errcode", [45015, 45047])
def test_a_closed_window_or_the_quota_falls_back_to_the_template(channel_for, fake_wechat,
                                                                 store, errcode):
    server, agent = channel_for(events_secret=SECRET, status_template_id=TEMPLATE_ID,
                                status_template_keys=("character_string1", "phrase2", "thing3"))
    alice = new_openid()
    subscribe(fake_wechat, agent, store, alice, "NC2025000101")
    fake_wechat.send_errors = [errcode]
    assert post_event(server, "NC2025000101", "approved")[0] == 202
    templates = fake_wechat.wait_for_templates(alice, 1)
    assert templates == [{"character_string1": "NC********01", "phrase2": "审核通过",
                          "thing3": "回复“查进度”看详情"}]
    assert fake_wechat.template_calls[-1]["template_id"] == TEMPLATE_ID
    assert fake_wechat.messages_to(alice) == []
    assert settle(store, "NC2025000101", 1) == ["template"]
    # a final status: the subscription ends with its message
    assert store.subscribers("NC2025000101") == []


def test_outside_the_window_only_the_template_goes(channel_for, fake_wechat, store):
    server, agent = channel_for(events_secret=SECRET, status_template_id=TEMPLATE_ID)
    alice = new_openid()
    subscribe(fake_wechat, agent, store, alice, "NC2025000101")
    server.run(server.channel.endpoint.state.forget_user(alice))  # the window has closed
    calls = len(fake_wechat.send_calls)
    assert post_event(server, "NC2025000101", "need_more")[0] == 202
    assert len(fake_wechat.wait_for_templates(alice, 1)) == 1
    assert len(fake_wechat.send_calls) == calls  # no customer-service attempt
    assert settle(store, "NC2025000101", 1) == ["template"]
    assert store.subscribers("NC2025000101")[0].status == "need_more"  # still subscribed


def test_without_window_and_template_nothing_is_sent_and_it_is_logged(channel_for, fake_wechat,
                                                                      store, caplog, monkeypatch):
    server, agent = channel_for(events_secret=SECRET)
    alice = new_openid()
    subscribe(fake_wechat, agent, store, alice, "NC2025000101")
    server.run(server.channel.endpoint.state.forget_user(alice))
    # a sanic app started earlier in this worker may have disabled existing loggers
    import logging
    monkeypatch.setattr(logging.getLogger("wechat_channel.notify"), "disabled", False)
    caplog.set_level("INFO")
    assert post_event(server, "NC2025000101", "need_more")[0] == 202
    assert settle(store, "NC2025000101", 1) == ["not_sent"]
    assert fake_wechat.messages_to(alice) == [] and fake_wechat.templates == []
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "not sent" in logged and alice not in logged and "NC2025000101" not in logged


def test_a_user_who_unfollowed_loses_the_subscription(channel_for, fake_wechat, store):
    server, agent = channel_for(events_secret=SECRET, status_template_id=TEMPLATE_ID)
    alice, bob = new_openid(), new_openid()
    subscribe(fake_wechat, agent, store, alice, "NC2025000101")
    subscribe(fake_wechat, agent, store, bob, "NC2025000101")
    fake_wechat.unfollowed.add(alice)
    assert post_event(server, "NC2025000101", "need_more")[0] == 202
    assert len(fake_wechat.wait_for_messages(bob, 1)) == 1
    assert sorted(settle(store, "NC2025000101", 2)) == ["sent", "unfollowed"]
    assert [s.openid for s in store.subscribers("NC2025000101")] == [bob]
    assert fake_wechat.messages_to(alice) == [] and fake_wechat.templates == []


def test_a_passing_error_gives_the_claim_back_for_a_redelivery(channel_for, fake_wechat, store):
    server, agent = channel_for(events_secret=SECRET)
    alice = new_openid()
    subscribe(fake_wechat, agent, store, alice, "NC2025000101")
    fake_wechat.send_errors = [-1]  # WeChat busy
    assert post_event(server, "NC2025000101", "need_more")[0] == 202
    time.sleep(1.5)
    assert fake_wechat.messages_to(alice) == [] and store.outcomes("NC2025000101") == []
    assert post_event(server, "NC2025000101", "need_more")[0] == 202  # redelivered
    assert len(fake_wechat.wait_for_messages(alice, 1)) == 1


def test_the_route_refuses_what_is_not_a_signed_event_and_never_fails(channel_for, fake_wechat,
                                                                      store):
    server, agent = channel_for(events_secret=SECRET)
    alice = new_openid()
    subscribe(fake_wechat, agent, store, alice, "NC2025000101")
    body = status_events.event_body("NC2025000101", "approved", "t")
    good = status_events.signed_headers(SECRET, body, time.time())
    cases = {
        "wrong secret": dict(secret="not-the-secret"),
        "old timestamp": dict(now=time.time() - 3600),
        "future timestamp": dict(now=time.time() + 3600),
        "no headers": dict(headers={"Content-Type": "application/json"}),
        "other body": dict(body=status_events.event_body("NC2025000102", "approved", "t"),
                           headers=good),
        "garbage signature": dict(headers={**good, status_events.SIGNATURE_HEADER: "x" * 64}),
    }
    for name, arguments in cases.items():
        status, _ = post_event(server, "NC2025000101", "approved", **arguments)
        assert status == 403, name
    for name, bad in {"not json": b"\xff{", "no event": b'{"application_no": "NC1"}',
                      "a list": b"[]"}.items():
        status, _ = post_event(server, None, None, body=bad,
                               headers=status_events.signed_headers(SECRET, bad, time.time()))
        assert status == 400, name
    huge = b"{" + b" " * (status_events.MAX_BODY_BYTES + 10) + b"}"
    status, _ = post_event(server, None, None, body=huge,
                           headers=status_events.signed_headers(SECRET, huge, time.time()))
    assert status == 400
    time.sleep(1.0)
    assert fake_wechat.messages_to(alice) == []


def test_without_a_secret_every_event_is_refused(channel_for, fake_wechat, store):
    server, agent = channel_for()  # no PROGRESS_EVENTS_SECRET
    alice = new_openid()
    subscribe(fake_wechat, agent, store, alice, "NC2025000101")
    assert post_event(server, "NC2025000101", "approved", secret="")[0] == 403
    assert post_event(server, "NC2025000101", "approved", secret="anything")[0] == 403
    time.sleep(0.5)
    assert fake_wechat.messages_to(alice) == []


# --- the 48-hour window in the channel's state store (memory, and Redis for replicas) -------
REDIS_URL = "redis://127.0.0.1:6379/0"


def _window_store(kind, prefix):
    from wechat_channel.state import MemoryStateStore, RedisStateStore
    if kind == "memory":
        return MemoryStateStore()
    import redis
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception:  # noqa: BLE001 - no Redis here
        from tests.support import skip_or_fail
        skip_or_fail("the Redis window test needs Redis at 127.0.0.1:6379")
    return RedisStateStore.from_url(REDIS_URL, prefix=prefix)


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_the_window_is_recorded_per_user_and_closed_by_unfollowing(kind):
    import asyncio
    prefix = f"test-notify-{uuid.uuid4().hex[:8]}"
    alice, bob = new_openid(), new_openid()

    async def scenario():
        store = _window_store(kind, prefix)
        try:
            assert not await store.within_window(alice)
            await store.note_inbound(alice)
            assert await store.within_window(alice) and not await store.within_window(bob)
            if kind == "redis":
                ttl = await store.client.pttl(f"{prefix}:inbound:{alice}")
                assert 47 * 3600 * 1000 < ttl <= 48 * 3600 * 1000
            await store.forget_user(alice)  # unsubscribe event
            assert not await store.within_window(alice)
        finally:
            if kind == "redis":
                keys = await store.client.keys(f"{prefix}:*")
                if keys:
                    await store.client.delete(*keys)
            await store.close()

    asyncio.run(scenario())


def test_nginx_does_not_expose_the_events_route():
    """deploy/nginx.cluster.conf.template: the public server proxies named paths only; the
    status-events route falls to `location / { return 404; }`."""
    import pathlib
    import re as regex

    template = (pathlib.Path(__file__).resolve().parents[2] / "deploy"
                / "nginx.cluster.conf.template").read_text(encoding="utf-8")
    public = template.split("listen {{public_listen}};", 1)[1].split("\n    server {", 1)[0]
    route = "/webhooks/wechat/status-events"
    matching = []
    for modifier, path in regex.findall(r"^\s*(?:#@\w+\s+)?location\s+(=|\^~|~\*?)?\s*(\S+)\s*\{",
                                        public, flags=regex.M):
        if modifier == "=" and path == route:
            matching.append(path)
        elif modifier in ("~", "~*") and regex.search(path, route):
            matching.append(path)
        elif not modifier or modifier == "^~":
            if route.startswith(path):
                matching.append(path)
    assert matching == ["/"], matching
    assert regex.search(r"location / \{ return 404; \}", public)

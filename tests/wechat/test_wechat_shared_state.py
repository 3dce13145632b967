"""Shared channel state (wechat_channel/state.py): two replicas, one Redis.

The store contract runs on both stores (in memory: one store object shared by two
InFlights; Redis: one client per "replica"). The replica tests start two channel servers
(each its own endpoint, InFlight and bot) on the real Redis at 127.0.0.1:6379, with a key
prefix of their own that is deleted afterwards. Without Redis they skip locally and fail
under CI=true (tests.support.skip_or_fail).
"""
import asyncio
import json
import socket
import threading
import time
import uuid

import pytest
import yaml

from tests.support import skip_or_fail
from wechat_channel.config import ConfigError, WeChatSettings
from wechat_channel.delivery import HeldReply, InFlight, Outcome
from wechat_channel.state import MemoryStateStore, RedisStateStore, redacted_url, state_store

from wechat_fakes import APPID, APPSECRET, AES_KEY, TOKEN, ChannelServer, Recorder, StubAgent, event_xml, text_xml

REDIS_URL = "redis://127.0.0.1:6379/0"
OPENID = "oReplicaUser00000000000001"
MENU = [{"text": "请选择：", "buttons": [{"title": "要带什么材料", "payload": "/ask_materials"},
                                      {"title": "在哪里办", "payload": "/ask_channel"}]}]


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture
def redis_prefix():
    """A key prefix of this test's own; every key under it is deleted afterwards."""
    if not _redis_up():
        skip_or_fail("shared WeChat state tests need Redis at 127.0.0.1:6379")
    import redis

    prefix = f"test:wechat:{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def _keys(prefix):
    import redis

    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        return {key: (client.lrange(key, 0, -1) if client.type(key) == "list" else client.get(key),
                      client.pttl(key))
                for key in client.scan_iter(match=f"{prefix}:*")}
    finally:
        client.close()


@pytest.fixture(params=["memory", "redis"])
def stores(request):
    """stores(**ttls) -> (a, b): two replicas' handles on one state (call inside the loop)."""
    if request.param == "memory":
        def make(**kwargs):
            store = MemoryStateStore(**kwargs)
            return store, store
        return make
    prefix = request.getfixturevalue("redis_prefix")

    def make(**kwargs):
        return (RedisStateStore.from_url(REDIS_URL, prefix=prefix, **kwargs),
                RedisStateStore.from_url(REDIS_URL, prefix=prefix, **kwargs))
    return make


async def _close(*stores):
    for store in set(stores):
        await store.close()


def _run(scenario):
    return asyncio.run(scenario())


# --- the store contract ---------------------------------------------------------------

def test_a_claim_is_set_if_absent_and_carries_the_outcome(stores):
    async def scenario():
        a, b = stores()
        try:
            assert await a.claim("msg:1") is True
            assert await b.claim("msg:1") is False
            assert await b.outcome("msg:1") == Outcome("running")
            await a.settle("msg:1", Outcome("answered", "答复：你好 😀"))
            assert await b.outcome("msg:1") == Outcome("answered", "答复：你好 😀")
            assert await b.claim("msg:1") is False
            assert await b.outcome("msg:2") is None
        finally:
            await _close(a, b)

    _run(scenario)


def test_buttons_are_shared_and_an_empty_menu_keeps_the_last(stores):
    async def scenario():
        a, b = stores()
        try:
            await a.remember_buttons(OPENID, [("材料", "/ask_materials"), ("地点", "/ask_channel")])
            await b.remember_buttons(OPENID, [])
            assert await b.buttons(OPENID) == [("材料", "/ask_materials"), ("地点", "/ask_channel")]
            assert await b.buttons("oSomebodyElse0000000000001") == []
            await b.forget_user(OPENID)
            assert await a.buttons(OPENID) == []
        finally:
            await _close(a, b)

    _run(scenario)


def test_held_replies_keep_order_and_limit_and_are_taken_once(stores):
    async def scenario():
        a, b = stores(max_held=3)
        try:
            for i in range(5):
                await (a if i % 2 else b).hold(OPENID, HeldReply(f"晚到{i}", False))
            await a.hold(OPENID, HeldReply("续", True), front=True)
            assert [h.text for h in await b.held(OPENID)] == ["续", "晚到3", "晚到4"]
            taken = await asyncio.gather(a.take_held(OPENID), b.take_held(OPENID))
            assert sorted(len(t) for t in taken) == [0, 3]  # one reply delivers them
            await b.hold(OPENID, HeldReply("晚到", False))
            await a.hold(OPENID, HeldReply("续", True), front=True)
            assert [(h.text, h.continued) for h in await b.take_held(OPENID)] == \
                [("续", True), ("晚到", False)]
            await a.hold(OPENID, HeldReply("晚到", False))
            await b.forget_user(OPENID)
            assert await a.held(OPENID) == []
        finally:
            await _close(a, b)

    _run(scenario)


def test_replies_held_at_the_same_time_on_two_replicas_are_all_kept(stores):
    async def scenario():
        a, b = stores(max_held=40)
        try:
            await asyncio.gather(*[(a, b)[i % 2].hold(OPENID, HeldReply(f"第{i}条", False))
                                   for i in range(20)])
            assert sorted(h.text for h in await a.held(OPENID)) == sorted(f"第{i}条" for i in range(20))
        finally:
            await _close(a, b)

    _run(scenario)


def test_a_signed_request_is_accepted_again_only_with_the_same_digest(stores):
    async def scenario():
        a, b = stores()
        try:
            assert await a.remember_request("sig1", "digest-a", 5.0) is True
            assert await b.remember_request("sig1", "digest-a", 5.0) is True  # WeChat again
            assert await b.remember_request("sig1", "digest-b", 5.0) is False  # another body
            assert await a.remember_request("sig1", "digest-b", 5.0) is False
            assert await a.remember_request("sig2", "digest-b", 5.0) is True
        finally:
            await _close(a, b)

    _run(scenario)


def test_a_seen_request_expires_with_its_ttl(stores):
    async def scenario():
        a, b = stores()
        try:
            assert await a.remember_request("sig3", "digest-a", 0.3)
            assert not await b.remember_request("sig3", "digest-b", 0.3)
            await asyncio.sleep(0.6)  # its timestamp is stale by now: checked before the store
            return await b.remember_request("sig3", "digest-b", 0.3)
        finally:
            await _close(a, b)

    assert _run(scenario) is True


def test_seen_requests_in_memory_are_bounded():
    from wechat_channel.state import SeenRequests

    seen = SeenRequests(max_size=3, clock=lambda: 0.0)
    for i in range(5):
        assert seen.check(f"sig{i}", "d", 300.0)
    assert len(seen) == 3 and not seen.check("sig4", "other", 300.0)


# --- Redis specifics --------------------------------------------------------------------

def test_redis_keys_are_prefixed_json_and_expire(redis_prefix):
    async def scenario():
        store = RedisStateStore.from_url(REDIS_URL, prefix=redis_prefix, claim_ttl=120,
                                         button_ttl=24 * 3600, held_ttl=48 * 3600)
        try:
            await store.claim("msg:42")
            await store.settle("msg:42", Outcome("answered", "答复"))
            await store.remember_buttons(OPENID, [("材料", "/ask_materials")])
            await store.hold(OPENID, HeldReply("晚到", False))
        finally:
            await store.close()

    _run(scenario)
    keys = _keys(redis_prefix)
    assert set(keys) == {f"{redis_prefix}:claim:msg:42", f"{redis_prefix}:reply:msg:42",
                         f"{redis_prefix}:buttons:{OPENID}", f"{redis_prefix}:held:{OPENID}"}
    # the settled claim (no reply) lasts the dedupe window: a replay never runs the bot again
    value, ttl = keys[f"{redis_prefix}:claim:msg:42"]
    assert json.loads(value) == {"state": "answered", "reply": None} and 115_000 < ttl <= 120_000
    # the reply is kept for WeChat's retries (about 15 s), not the whole dedupe window
    value, ttl = keys[f"{redis_prefix}:reply:msg:42"]
    assert json.loads(value) == "答复" and 25_000 < ttl <= 30_000
    value, ttl = keys[f"{redis_prefix}:buttons:{OPENID}"]
    assert json.loads(value) == [["材料", "/ask_materials"]] and 23.9 * 3600_000 < ttl <= 24 * 3600_000
    value, ttl = keys[f"{redis_prefix}:held:{OPENID}"]
    assert [json.loads(item) for item in value] == [{"text": "晚到", "continued": False}]
    assert 47.9 * 3600_000 < ttl <= 48 * 3600_000


def test_a_redis_claim_is_a_lease_while_running_then_kept_for_the_dedupe_ttl(redis_prefix):
    # windows of a second or more: two workers share two cores while Rasa stacks load
    async def scenario():
        store = RedisStateStore.from_url(REDIS_URL, prefix=redis_prefix, claim_ttl=1.5,
                                         claim_lease=1.5)
        try:
            assert await store.claim("msg:7")
            await asyncio.sleep(0.9)
            await store.renew("msg:7")  # the owner's heartbeat
            await asyncio.sleep(0.9)
            renewed = await store.outcome("msg:7")
            await asyncio.sleep(2.0)
            lapsed = await store.outcome("msg:7")  # the owner stopped renewing
            assert await store.claim("msg:8")
            await store.settle("msg:8", Outcome("late"))
            await store.renew("msg:8")  # a late renewal never revives or shortens it
            settled = await store.outcome("msg:8")
            await asyncio.sleep(2.0)
            return renewed, lapsed, settled, await store.claim("msg:8")
        finally:
            await store.close()

    # a "retry" after the TTL is a new message
    assert _run(scenario) == (Outcome("running"), None, Outcome("late"), True)


def test_a_replica_that_lost_its_lease_neither_renews_nor_overwrites_the_new_owner(redis_prefix):
    async def scenario():
        a = RedisStateStore.from_url(REDIS_URL, prefix=redis_prefix, claim_lease=0.5)
        b = RedisStateStore.from_url(REDIS_URL, prefix=redis_prefix, claim_lease=30.0)
        try:
            assert await a.claim("msg:9")
            await asyncio.sleep(1.0)  # A's loop stalled past its lease
            assert await b.claim("msg:9")  # B takes the message over
            await a.renew("msg:9")  # A's late heartbeat does not touch B's claim
            await a.settle("msg:9", Outcome("answered", "A 的答复"))  # nor its outcome
            during = await b.outcome("msg:9")
            await b.settle("msg:9", Outcome("answered", "B 的答复"))
            return during, await a.outcome("msg:9")
        finally:
            await a.close()
            await b.close()

    assert _run(scenario) == (Outcome("running"), Outcome("answered", "B 的答复"))


def test_a_redis_request_key_is_prefixed_and_expires_with_the_timestamp(redis_prefix):
    async def scenario():
        store = RedisStateStore.from_url(REDIS_URL, prefix=redis_prefix)
        try:
            await store.remember_request("ab" * 20, "f" * 64, 301.0)
        finally:
            await store.close()

    _run(scenario)
    value, ttl = _keys(redis_prefix)[f"{redis_prefix}:request:{'ab' * 20}"]
    assert value == "f" * 64 and 300_000 < ttl <= 301_000


def test_without_redis_a_replay_is_still_refused_on_the_replica_it_reaches(caplog):
    async def scenario():
        store = RedisStateStore.from_url("redis://127.0.0.1:1/0", timeout=0.5)
        try:
            return [await store.remember_request("sig", digest, 300.0)
                    for digest in ("same", "same", "other")]
        finally:
            await store.close()

    assert _run(scenario) == [True, True, False]
    assert "checked against this replica only" in caplog.text


def test_unreachable_redis_degrades_to_answering_here(caplog):
    async def scenario():
        store = RedisStateStore.from_url("redis://:secret@127.0.0.1:1/0", timeout=0.5)
        try:
            return (await store.claim("msg:1"), await store.outcome("msg:1"),
                    await store.buttons(OPENID), await store.hold(OPENID, HeldReply("x", False)),
                    await store.take_held(OPENID))
        finally:
            await store.close()

    assert _run(scenario) == (True, Outcome("unknown"), [], None, [])
    assert "Redis unavailable" in caplog.text
    assert "secret" not in caplog.text and OPENID not in caplog.text  # masked: oRep…01


def test_settings_choose_the_store_and_logs_never_show_the_password():
    settings = WeChatSettings.from_env({"WECHAT_TOKEN": "abc123"})
    assert isinstance(state_store(settings), MemoryStateStore)
    settings = WeChatSettings.from_env({
        "WECHAT_TOKEN": "abc123", "WECHAT_STATE_REDIS_URL": "redis://:pw@redis.internal:6380/2",
        "WECHAT_STATE_PREFIX": "prod:wechat"})
    store = state_store(settings)
    assert isinstance(store, RedisStateStore) and store.prefix == "prod:wechat"
    assert store.claim_ttl == 360 and store.held_ttl == 48 * 3600
    assert redacted_url(settings.state_redis_url) == "redis://redis.internal:6380/2"


def test_a_bad_state_url_or_prefix_stops_start_up_without_showing_the_url():
    with pytest.raises(ConfigError) as error:
        WeChatSettings.from_env({"WECHAT_TOKEN": "abc123",
                                 "WECHAT_STATE_REDIS_URL": "http://:hunter2@redis:6379/0"})
    assert "hunter2" not in str(error.value)
    with pytest.raises(ConfigError):
        WeChatSettings.from_env({"WECHAT_TOKEN": "abc123", "WECHAT_STATE_PREFIX": "a b"})


def test_make_run_passes_the_state_url_as_a_reference(tmp_path):
    from tools.stack import StackSettings, runtime_credentials

    path = runtime_credentials(StackSettings(state_dir=tmp_path), {
        "WECHAT_TOKEN": "tok3n", "WECHAT_STATE_REDIS_URL": "redis://:hunter2@redis:6379/0"})
    text = path.read_text(encoding="utf-8")
    section = yaml.safe_load(text)["channels.wechat.WeChatInput"]
    assert section["state_redis_url"] == "${WECHAT_STATE_REDIS_URL}" and "hunter2" not in text


# --- InFlight across two processes -------------------------------------------------------

def test_a_retry_on_the_other_process_gets_the_same_passive_reply(stores):
    rec = Recorder()

    async def scenario():
        sa, sb = stores()
        a, b = InFlight(claims=sa, poll_interval=0.05), InFlight(claims=sb, poll_interval=0.05)
        try:
            first = asyncio.ensure_future(a.attempt("k", rec.work(0.3), 2.0, rec.on_passive, rec.on_late))
            await asyncio.sleep(0.05)
            second = await b.attempt("k", rec.work(0.3), 2.0, rec.on_passive, rec.on_late)
            third = await b.attempt("k", rec.work(0.3), 2.0, rec.on_passive, rec.on_late)
            return await first, second, third
        finally:
            await _close(sa, sb)

    assert _run(scenario) == ("答案", "答案", "答案")
    assert (rec.runs, rec.passive, rec.late) == (1, ["答案"], [])


def test_past_the_deadline_every_process_answers_success_and_the_answer_goes_late_once(stores):
    rec = Recorder()

    async def scenario():
        sa, sb = stores()
        a, b = InFlight(claims=sa, poll_interval=0.05), InFlight(claims=sb, poll_interval=0.05)
        try:
            first = await a.attempt("k", rec.work(0.4), 0.1, rec.on_passive, rec.on_late)
            started = time.monotonic()
            second = await b.attempt("k", rec.work(0.4), 2.0, rec.on_passive, rec.on_late)
            waited = time.monotonic() - started
            await asyncio.sleep(0.5)
            return first, second, waited
        finally:
            await _close(sa, sb)

    first, second, waited = _run(scenario)
    assert (first, second) == (None, None) and waited < 1.0  # "late" is known at once, not at 2 s
    assert (rec.runs, rec.passive, rec.late) == (1, [], ["答案"])


def test_a_dropped_connection_on_the_owner_makes_the_answer_late_for_everyone(stores):
    rec = Recorder()

    async def scenario():
        sa, sb = stores()
        a, b = InFlight(claims=sa, poll_interval=0.05), InFlight(claims=sb, poll_interval=0.05)
        try:
            first = asyncio.ensure_future(a.attempt("k", rec.work(0.3), 2.0, rec.on_passive, rec.on_late))
            await asyncio.sleep(0.05)
            first.cancel()  # WeChat hung up on replica A
            await asyncio.sleep(0.05)
            second = await b.attempt("k", rec.work(0.3), 2.0, rec.on_passive, rec.on_late)
            await asyncio.sleep(0.4)
            return second
        finally:
            await _close(sa, sb)

    assert _run(scenario) is None
    assert (rec.runs, rec.passive, rec.late) == (1, [], ["答案"])


def test_a_long_run_keeps_its_claim_and_a_killed_owner_is_taken_over(redis_prefix):
    rec = Recorder()

    async def scenario():
        def store():
            return RedisStateStore.from_url(REDIS_URL, prefix=redis_prefix, claim_lease=1.0)
        sa, sb = store(), store()
        a, b = InFlight(claims=sa, poll_interval=0.05), InFlight(claims=sb, poll_interval=0.05)
        try:
            # the owner's heartbeat keeps a 3 s run claimed past the 1 s lease
            first = asyncio.ensure_future(a.attempt("k1", rec.work(3.0, "A"), 5.0, rec.on_passive, rec.on_late))
            await asyncio.sleep(1.5)
            joined = await b.attempt("k1", rec.work(0.1, "B"), 5.0, rec.on_passive, rec.on_late)
            assert (await first, joined, rec.runs) == ("A", "A", 1)
            # replica A is killed while the bot runs: its claim lapses, B runs the message
            doomed = asyncio.ensure_future(a.attempt("k2", rec.work(10.0, "A"), 10.0, rec.on_passive, rec.on_late))
            await asyncio.sleep(0.1)
            a._publish = lambda item: None  # a killed process tells nobody anything
            a._items["k2"].task.cancel()  # (its heartbeat stops with it)
            doomed.cancel()
            started = time.monotonic()
            taken = await b.attempt("k2", rec.work(0.1, "B"), 4.0, rec.on_passive, rec.on_late)
            return taken, time.monotonic() - started
        finally:
            await _close(sa, sb)

    taken, waited = _run(scenario)
    assert taken == "B" and waited < 3.0 and rec.runs == 3 and rec.late == []


# --- two channel replicas on one Redis ---------------------------------------------------

FAST = {"reply_deadline": 0.5}


@pytest.fixture
def replicas(fake_wechat, redis_prefix):
    """start(**settings) -> (server, agent): a channel replica on the shared Redis;
    discard(server) stops one (as a deploy or a crash would)."""
    from channels.wechat import WeChatInput

    running = []

    def start(mode: str = "safe", **overrides):
        credentials = {"token": TOKEN, "appid": APPID, "appsecret": APPSECRET, "aes_key": AES_KEY,
                       "mode": mode, "api_base": fake_wechat.api_base,
                       "state_redis_url": REDIS_URL, "state_key_prefix": redis_prefix}
        for key in ("passive_only", "reply_deadline"):
            if key in overrides:
                credentials[key] = overrides.pop(key)
        settings = WeChatSettings.from_mapping(credentials, **overrides)
        agent = StubAgent()
        server = ChannelServer(WeChatInput(settings), agent).__enter__()
        running.append(server)
        return server, agent

    def discard(server):
        running.remove(server)
        server.__exit__(None, None, None)

    start.discard = discard
    yield start
    for server in running:
        server.__exit__(None, None, None)


def _push(fake, server, xml, mode="safe", timeout=5.0):
    return fake.push(xml, mode=mode, url=server.webhook_url, timeout=timeout)


def test_the_same_msgid_on_two_replicas_runs_the_bot_once_and_both_get_the_reply(
        replicas, fake_wechat):
    (a, bot_a), (b, bot_b) = replicas(reply_deadline=2.0), replicas(reply_deadline=2.0)
    bot_a.delays["同一条"] = bot_b.delays["同一条"] = 0.6
    message = text_xml(OPENID, "同一条")
    results = {}

    def send(name, server):
        results[name] = _push(fake_wechat, server, message)

    threads = [threading.Thread(target=send, args=("a", a))]
    threads[0].start()
    time.sleep(0.15)  # the retry reaches the other replica while the bot still runs
    threads.append(threading.Thread(target=send, args=("b", b)))
    threads[1].start()
    for thread in threads:
        thread.join()
    assert results["a"].content == results["b"].content == "答复：同一条"
    assert bot_a.texts() + bot_b.texts() == ["同一条"]
    # a later retry, on either replica, gets the same reply again
    assert _push(fake_wechat, b, message).content == "答复：同一条"
    assert _push(fake_wechat, a, message).content == "答复：同一条"
    assert bot_a.texts() + bot_b.texts() == ["同一条"]
    assert fake_wechat.send_calls == []


def test_a_slow_message_retried_on_another_replica_is_answered_once_late(replicas, fake_wechat):
    # seconds, not tenths: the margins hold on a loaded two-core machine
    (a, bot_a), (b, bot_b) = replicas(reply_deadline=2.0), replicas(reply_deadline=2.0)
    bot_a.delays["慢问题"] = bot_b.delays["慢问题"] = 4.0
    message = text_xml(OPENID, "慢问题")
    assert _push(fake_wechat, a, message).body == b"success"  # after the 2 s deadline
    retry = _push(fake_wechat, b, message)
    # at once: it neither waits for its own deadline (2 s) nor runs the bot again
    assert retry.body == b"success" and retry.elapsed < 1.5
    assert fake_wechat.wait_for_messages(OPENID, 1) == ["答复：慢问题"]
    time.sleep(0.3)
    assert fake_wechat.messages_to(OPENID) == ["答复：慢问题"]
    assert bot_a.texts() + bot_b.texts() == ["慢问题"]


def test_a_number_after_a_menu_on_one_replica_is_resolved_on_the_other(replicas, fake_wechat):
    (a, bot_a), (b, bot_b) = replicas(**FAST), replicas(**FAST)
    bot_a.responses["菜单"] = MENU
    first = _push(fake_wechat, a, text_xml(OPENID, "菜单")).content
    assert "在哪里办" in first and bot_a.texts() == ["菜单"]
    assert _push(fake_wechat, b, text_xml(OPENID, "2")).content == "答复：/ask_channel"
    assert bot_b.runs[0]["text"] == "/ask_channel" and bot_b.runs[0]["metadata"]["wechat"]["button"]
    # the welcome menu of a follow on B, a number on A
    other = "oReplicaUser00000000000002"
    welcome = _push(fake_wechat, b, event_xml(other, "subscribe")).content
    assert welcome and "1" in welcome
    _push(fake_wechat, a, text_xml(other, "1"))
    assert bot_a.texts()[-1] == a.channel.menu.welcome_button_pairs[0][1]


def test_a_held_reply_is_delivered_by_another_replica_after_the_first_is_gone(
        replicas, fake_wechat):
    a, bot_a = replicas(passive_only="true", **FAST)
    bot_a.delays["慢问题"] = 0.8
    assert _push(fake_wechat, a, text_xml(OPENID, "慢问题")).body == b"success"
    deadline = time.monotonic() + 5
    while not a.run(a.channel.endpoint.state.held(OPENID)):
        assert time.monotonic() < deadline, "the late answer was never held"
        time.sleep(0.05)
    replicas.discard(a)  # a deploy: replica A is gone, with its memory
    b, bot_b = replicas(passive_only="true", **FAST)  # started afterwards, like a restart
    reply = _push(fake_wechat, b, text_xml(OPENID, "第二个问题")).content
    assert reply == "【您上一个问题的回复】\n答复：慢问题\n\n答复：第二个问题"
    assert _push(fake_wechat, b, text_xml(OPENID, "第三个")).content == "答复：第三个"  # once
    assert fake_wechat.send_calls == []


def test_a_url_replayed_on_another_replica_with_another_body_is_refused(replicas, fake_wechat):
    (a, bot_a), (b, bot_b) = replicas(mode="plain", **FAST), replicas(mode="plain", **FAST)
    query, body = fake_wechat.signed_query(text_xml(OPENID, "真问题"), "plain", OPENID)
    assert fake_wechat.post(query, body, url=a.webhook_url).content == "答复：真问题"
    forged = text_xml(OPENID, "假问题").encode("utf-8")
    assert fake_wechat.post(query, forged, url=b.webhook_url).status == 403
    # WeChat's exact retry on the other replica: the reply again, from the shared claim
    assert fake_wechat.post(query, body, url=b.webhook_url).content == "答复：真问题"
    assert bot_a.texts() + bot_b.texts() == ["真问题"]


def test_continue_on_another_replica_shows_the_rest_of_a_long_answer(replicas, fake_wechat):
    (a, bot_a), (b, bot_b) = replicas(passive_only="1", **FAST), replicas(passive_only="1", **FAST)
    paragraphs = [f"第{i}段：" + "说明" * 100 for i in range(6)]  # ~3.6 KB
    bot_a.responses["长"] = [{"text": "\n".join(paragraphs)}]
    first = _push(fake_wechat, a, text_xml(OPENID, "长")).content
    assert first.endswith("（未完，回复“继续”看下一段）")
    second = _push(fake_wechat, b, text_xml(OPENID, "继续")).content
    assert second.startswith("（接上条）\n") and bot_b.texts() == []
    shown = first.replace("\n（未完，回复“继续”看下一段）", "") + "\n" + second[len("（接上条）\n"):]
    assert shown == "\n".join(paragraphs)


def test_the_channel_answers_when_redis_is_down(fake_wechat):
    """No Redis needed: the store is pointed at a closed port."""
    from channels.wechat import WeChatInput

    settings = WeChatSettings.from_mapping(
        {"token": TOKEN, "appid": APPID, "appsecret": APPSECRET, "aes_key": AES_KEY, "mode": "safe",
         "api_base": fake_wechat.api_base, "reply_deadline": 2.0,
         "state_redis_url": "redis://127.0.0.1:1/0"})
    agent = StubAgent()
    with ChannelServer(WeChatInput(settings), agent) as server:
        result = fake_wechat.push(text_xml(OPENID, "你好"), mode="safe", url=server.webhook_url)
    assert result.content == "答复：你好" and agent.texts() == ["你好"]

"""Replay protection, compatible mode's envelope, the dedupe window and the plain-mode warning.

A signed URL (signature over token, timestamp and nonce) stays valid for the timestamp
tolerance. Within it, the same URL is accepted again only with the same request (WeChat
repeating itself, answered by the MsgId dedupe); with another body or echostr it is 403.
"""
import asyncio
import logging
import time

import pytest

from channels.wechat import wechat_menu, wechat_replies
from wechat_channel.config import ConfigError, WeChatSettings
from wechat_channel.endpoint import WeChatEndpoint, request_digest
from wechat_channel.state import MemoryStateStore

from wechat_fakes import AES_KEY, APPID, TOKEN, event_xml, text_xml, wechat_signature

OPENID = "oReplayUser000000000000001"


# --- through the channel server --------------------------------------------------------
@pytest.mark.parametrize("mode", ["plain", "compatible", "safe"])
def test_a_replayed_wechat_url_with_another_body_is_refused(channel_for, fake_wechat, mode):
    _, agent = channel_for(mode=mode)
    query, body = fake_wechat.signed_query(text_xml(OPENID, "要带哪些材料"), mode, OPENID)
    assert fake_wechat.post(query, body, mode=mode).content == "答复：要带哪些材料"
    replay = fake_wechat.resend(query, text_xml(OPENID, "另一个问题"), mode=mode)
    assert replay.status == 403 and replay.reply is None
    assert agent.texts() == ["要带哪些材料"]


@pytest.mark.parametrize("mode", ["plain", "safe"])
def test_wechat_repeating_a_request_exactly_gets_the_same_reply_and_one_bot_run(
        channel_for, fake_wechat, mode):
    _, agent = channel_for(mode=mode)
    query, body = fake_wechat.signed_query(text_xml(OPENID, "你好"), mode, OPENID)
    first = fake_wechat.post(query, body, mode=mode)
    again = fake_wechat.post(query, body, mode=mode)
    assert first.content == again.content == "答复：你好"
    assert agent.texts() == ["你好"]


def test_a_replayed_url_check_with_another_echostr_or_as_a_push_is_refused(channel_for,
                                                                          fake_wechat):
    _, agent = channel_for(mode="plain")
    assert fake_wechat.verify_url("echo-first").body == b"echo-first"
    captured = {k: v for k, v in fake_wechat.last_verify_query.items() if k != "echostr"}
    assert fake_wechat.verify_url("echo-first", query=captured).body == b"echo-first"
    assert fake_wechat.verify_url("<script>", query=captured).status == 403
    # the GET check's signature is the same formula as a push's: not a licence to push
    pushed = fake_wechat.post(captured, text_xml(OPENID, "你好").encode("utf-8"))
    assert pushed.status == 403 and agent.runs == []


def test_the_first_body_wins_and_stays_answerable(channel_for, fake_wechat):
    _, agent = channel_for(mode="plain")
    query, body = fake_wechat.signed_query(text_xml(OPENID, "第一条"), "plain", OPENID)
    assert fake_wechat.post(query, body).content == "答复：第一条"
    assert fake_wechat.resend(query, text_xml(OPENID, "第二条")).status == 403
    assert fake_wechat.post(query, body).content == "答复：第一条"  # WeChat's own retry
    assert agent.texts() == ["第一条"]


# --- compatible mode: always the authenticated ciphertext -----------------------------
def test_compatible_mode_refuses_pushes_without_the_encrypted_envelope(channel_for, fake_wechat):
    _, agent = channel_for(mode="compatible")
    # plaintext only, as a plain-mode push: the body is covered by no signature
    assert fake_wechat.push(text_xml(OPENID, "你好"), mode="plain", openid=OPENID).status == 403
    # the envelope without msg_signature, or without encrypt_type=aes
    for dropped in ("msg_signature", "encrypt_type"):
        query, body = fake_wechat.signed_query(text_xml(OPENID, "你好"), "compatible", OPENID)
        del query[dropped]
        assert fake_wechat.post(query, body, mode="compatible").status == 403, dropped
    assert agent.runs == []


def test_compatible_mode_reads_the_ciphertext_not_the_plaintext_beside_it(channel_for,
                                                                          fake_wechat):
    _, agent = channel_for(mode="compatible")
    query, body = fake_wechat.signed_query(text_xml(OPENID, "真的"), "compatible", OPENID)
    forged = body.replace("<![CDATA[真的]]>".encode(), "<![CDATA[假的]]>".encode())
    assert fake_wechat.post(query, forged, mode="compatible").content == "答复：真的"
    assert agent.texts() == ["真的"]


# --- the dedupe outlasts the replay window ---------------------------------------------
class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


class CountingBot:
    def __init__(self):
        self.texts = []

    async def __call__(self, text, sender_id, metadata):
        self.texts.append(text)
        return [{"recipient_id": sender_id, "text": f"答复：{text}"}]


def _signed(timestamp: int, nonce: str = "424242"):
    return {"signature": wechat_signature(TOKEN, str(timestamp), nonce),
            "timestamp": str(timestamp), "nonce": nonce, "openid": OPENID}


def test_an_exact_replay_late_in_the_window_still_finds_the_dedupe():
    wall, mono = Clock(1_700_000_000.0), Clock(5000.0)
    settings = WeChatSettings(token=TOKEN)
    bot = CountingBot()
    endpoint = WeChatEndpoint(settings, bot, wechat_replies(), menu=wechat_menu(settings),
                              clock=wall, monotonic=mono)
    query = _signed(int(wall.now))
    body = text_xml(OPENID, "查进度", msg_id="8000000000000000001",
                    create_time=int(wall.now)).encode("utf-8")

    async def go():
        first = await endpoint.receive(query, body)
        for clock in (wall, mono):
            clock.now += settings.timestamp_tolerance - 5  # still fresh: accepted
        again = await endpoint.receive(query, body)
        for clock in (wall, mono):
            clock.now += 10  # stale now
        stale = await endpoint.receive(query, body)
        await endpoint.close()
        return first, again, stale

    first, again, stale = asyncio.run(go())
    assert first.status == 200 and "答复：查进度" in first.body
    assert again.status == 200 and bot.texts == ["查进度"]  # not run a second time
    assert stale.status == 403


def test_a_request_is_remembered_until_its_timestamp_is_stale_not_longer():
    wall, mono = Clock(1_700_000_000.0), Clock(5000.0)
    settings = WeChatSettings(token=TOKEN)
    store = MemoryStateStore(clock=mono)
    endpoint = WeChatEndpoint(settings, CountingBot(), wechat_replies(),
                              menu=wechat_menu(settings), clock=wall, monotonic=mono, state=store)
    # WeChat's clock 100 s ahead of ours: the URL stays fresh for 400 s here
    query = _signed(int(wall.now) + 100)
    body = event_xml(OPENID, "VIEW", create_time=1).encode("utf-8")

    async def go():
        await endpoint.receive(query, body)
        for clock in (wall, mono):
            clock.now += 390
        late = await endpoint.receive(query, event_xml(OPENID, "SCAN", create_time=2).encode())
        await endpoint.close()
        return late

    assert asyncio.run(go()).status == 403
    assert len(store.requests) == 1


def test_the_digest_covers_method_unsigned_parameters_and_body():
    query = _signed(1_700_000_000)
    base = request_digest("POST", query, b"<xml/>")
    assert base == request_digest("POST", dict(query), b"<xml/>")
    assert base == request_digest("POST", {**query, "signature": query["signature"].upper()},
                                  b"<xml/>")
    assert base != request_digest("GET", query, b"<xml/>")
    assert base != request_digest("POST", query, b"<xml />")
    assert base != request_digest("POST", {**query, "openid": "oOther"}, b"<xml/>")
    assert base != request_digest("POST", {**query, "msg_signature": "0" * 40}, b"<xml/>")


@pytest.mark.parametrize("overrides", [
    {"dedupe_ttl": 120.0},  # the old default: shorter than the 300 s tolerance
    {"dedupe_ttl": 315.0},  # tolerance + retries exactly: not longer
    {"timestamp_tolerance": 600.0},  # a longer tolerance needs a longer dedupe
    {"timestamp_tolerance": 0.0},
])
def test_settings_refuse_a_dedupe_shorter_than_the_replay_window(overrides):
    with pytest.raises(ConfigError):
        WeChatSettings(token=TOKEN, **overrides)


def test_default_dedupe_outlasts_tolerance_and_retries():
    settings = WeChatSettings(token=TOKEN)
    assert settings.dedupe_ttl > settings.timestamp_tolerance + 3 * 5
    WeChatSettings(token=TOKEN, timestamp_tolerance=600.0, dedupe_ttl=700.0)  # both raised: fine


# --- plain mode is for the sandbox --------------------------------------------------------
def test_start_up_warns_that_plain_mode_is_for_the_sandbox_only(caplog):
    def build(**values):
        settings = WeChatSettings(token=TOKEN, **values)
        return WeChatEndpoint(settings, CountingBot(), wechat_replies(), menu=wechat_menu(settings))

    with caplog.at_level(logging.WARNING, logger="wechat_channel.endpoint"):
        build(mode="safe", aes_key=AES_KEY, appid=APPID)
        build(mode="compatible", aes_key=AES_KEY, appid=APPID)
        assert "plain" not in caplog.text
        build()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "sandbox" in warnings[0].getMessage()
    assert "WECHAT_MODE=plain" in warnings[0].getMessage()


def test_timestamps_in_signed_queries_are_checked_before_the_store(channel_for, fake_wechat):
    """A stale or unsigned request never takes a slot in the replay memory."""
    server, _ = channel_for(mode="plain")
    query, body = fake_wechat.signed_query(text_xml(OPENID, "x"), "plain", OPENID,
                                           timestamp=int(time.time()) - 400)
    assert fake_wechat.post(query, body).status == 403
    query, body = fake_wechat.signed_query(text_xml(OPENID, "x"), "plain", OPENID)
    query["signature"] = "0" * 40
    assert fake_wechat.post(query, body).status == 403
    assert len(server.channel.endpoint.state.requests) == 0

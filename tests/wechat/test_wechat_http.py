"""The channel over real HTTP: Rasa's register() mounts it in sanic, a fake WeChat pushes."""
import time
from unittest import mock

import pytest

from wechat_fakes import AES_KEY, TOKEN, event_xml, media_xml, text_xml, wechat_signature

OPENID = "oUserOpenId0000000000000001"


@pytest.mark.parametrize("mode", ["plain", "compatible", "safe"])
def test_text_reaches_the_bot_and_the_reply_comes_back_passively(channel_for, fake_wechat, mode):
    server, agent = channel_for(mode=mode)
    agent.responses["要带哪些材料"] = [{"text": "请带身份证和医保卡。"}, {"text": "还有病历。"}]
    result = fake_wechat.push(text_xml(OPENID, "要带哪些材料"), mode=mode, openid=OPENID)
    assert result.status == 200
    assert result.reply["ToUserName"] == OPENID
    assert result.reply["MsgType"] == "text"
    # both bot messages of the turn in one reply
    assert result.content == "请带身份证和医保卡。\n\n还有病历。"
    assert agent.runs == [{"text": "要带哪些材料", "sender_id": OPENID, "input_channel": "wechat",
                           "metadata": {"wechat": {"msg_type": "text", "button": False},
                                        "request_id": mock.ANY}}]
    if mode == "safe":
        assert b"<Encrypt>" in result.body and "请带" not in result.body.decode()


def test_url_verification_echoes_echostr(channel_for, fake_wechat):
    channel_for(mode="safe")
    ok = fake_wechat.verify_url("echo-1234567890")
    assert (ok.status, ok.body) == (200, b"echo-1234567890")
    forged = fake_wechat.verify_url("echo-1", signature="0" * 40)
    assert forged.status == 403 and b"echo-1" not in forged.body
    stale = fake_wechat.verify_url("echo-2", timestamp=int(time.time()) - 301)
    assert stale.status == 403


# --- security: nothing bad reaches the bot -------------------------------------------
def _assert_rejected(result, status, agent):
    assert result.status == status, result
    assert agent.runs == []
    assert result.reply is None


def test_bad_signature_is_rejected(channel_for, fake_wechat):
    _, agent = channel_for(mode="plain")
    query, body = fake_wechat.signed_query(text_xml(OPENID, "你好"), "plain", OPENID)
    query["signature"] = wechat_signature("wrongtoken", query["timestamp"], query["nonce"])
    _assert_rejected(fake_wechat.post(query, body), 403, agent)
    del query["signature"]
    _assert_rejected(fake_wechat.post(query, body), 403, agent)


def test_bad_msg_signature_is_rejected_in_safe_mode(channel_for, fake_wechat):
    _, agent = channel_for(mode="safe")
    query, body = fake_wechat.signed_query(text_xml(OPENID, "你好"), "safe", OPENID)
    query["msg_signature"] = "0" * 40  # the plain signature is still right
    _assert_rejected(fake_wechat.post(query, body, mode="safe"), 403, agent)


def test_safe_mode_refuses_unencrypted_pushes(channel_for, fake_wechat):
    _, agent = channel_for(mode="safe")
    _assert_rejected(fake_wechat.push(text_xml(OPENID, "你好"), mode="plain"), 403, agent)


@pytest.mark.parametrize("seconds", [-310, 310, -3600])  # exact edges: test_wechat_crypto
def test_stale_timestamp_is_rejected(channel_for, fake_wechat, seconds):
    _, agent = channel_for(mode="safe")
    query, body = fake_wechat.signed_query(text_xml(OPENID, "你好"), "safe", OPENID,
                                           timestamp=int(time.time()) + seconds)
    _assert_rejected(fake_wechat.post(query, body, mode="safe"), 403, agent)


def test_message_for_another_appid_is_rejected(channel_for, fake_wechat):
    from wechatpy.crypto import WeChatCrypto

    _, agent = channel_for(mode="safe")
    fake_wechat.crypto = WeChatCrypto(TOKEN, AES_KEY, "wx9999999999999999")  # signatures valid
    _assert_rejected(fake_wechat.push(text_xml(OPENID, "你好"), mode="safe"), 403, agent)


def test_openid_parameter_must_match_the_sender(channel_for, fake_wechat):
    _, agent = channel_for(mode="safe")
    result = fake_wechat.push(text_xml(OPENID, "你好"), mode="safe", openid="oSomeoneElse0000")
    _assert_rejected(result, 403, agent)


def test_entity_expansion_is_refused(channel_for, fake_wechat):
    _, agent = channel_for(mode="plain")
    bomb = ('<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "哈哈哈哈哈哈哈哈">'
            '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]>'
            + text_xml(OPENID, "x").replace("<![CDATA[x]]>", "&c;"))
    _assert_rejected(fake_wechat.push(bomb, mode="plain"), 400, agent)


def test_one_megabyte_body_is_refused(channel_for, fake_wechat):
    _, agent = channel_for(mode="plain")
    huge = text_xml(OPENID, "长" * (1024 * 1024 // 3))
    query, body = fake_wechat.signed_query(huge, "plain", OPENID)
    assert len(body) >= 1024 * 1024
    _assert_rejected(fake_wechat.post(query, body), 400, agent)
    # and the channel still answers normally afterwards
    assert fake_wechat.push(text_xml(OPENID, "你好"), mode="plain").content == "答复：你好"


def test_non_utf8_body_is_malformed(channel_for, fake_wechat):
    _, agent = channel_for(mode="plain")
    query, body = fake_wechat.signed_query(text_xml(OPENID, "你好"), "plain", OPENID)
    _assert_rejected(fake_wechat.post(query, body.replace("你好".encode(), "你好".encode("gbk"))),
                     400, agent)


@pytest.mark.parametrize("body", [b"", b"<xml></xml>", b"not xml at all"])
def test_empty_or_incomplete_bodies_are_malformed(channel_for, fake_wechat, body):
    _, agent = channel_for(mode="plain")
    query, _ = fake_wechat.signed_query("<xml/>", "plain", None)
    _assert_rejected(fake_wechat.post(query, body), 400, agent)


@pytest.mark.parametrize("content", ["", "   ", "\n"])
def test_empty_content_gets_a_prompt_not_a_bot_run(channel_for, fake_wechat, content):
    _, agent = channel_for(mode="safe")
    result = fake_wechat.push(text_xml(OPENID, content), mode="safe")
    assert result.status == 200 and "请直接打字提问" in result.content
    assert agent.runs == []


# --- message types ---------------------------------------------------------------------
def test_voice_with_recognition_goes_to_the_bot(channel_for, fake_wechat):
    _, agent = channel_for(mode="safe")
    voice = media_xml(OPENID, "voice", "<Format><![CDATA[amr]]></Format><MediaId><![CDATA[m1]]>"
                      "</MediaId><Recognition><![CDATA[高血压怎么申请]]></Recognition>")
    assert fake_wechat.push(voice, mode="safe").content == "答复：高血压怎么申请"
    assert agent.runs[0]["sender_id"] == OPENID


def test_voice_without_recognition_asks_for_text(channel_for, fake_wechat):
    _, agent = channel_for(mode="safe")
    voice = media_xml(OPENID, "voice", "<Format>amr</Format><MediaId>m1</MediaId>"
                      "<Recognition><![CDATA[]]></Recognition>")
    assert "请发文字" in fake_wechat.push(voice, mode="safe").content
    assert agent.runs == []


@pytest.mark.parametrize("msg_type,extra", [
    ("image", "<PicUrl>http://x/y.jpg</PicUrl><MediaId>m</MediaId>"),
    ("video", "<MediaId>m</MediaId><ThumbMediaId>t</ThumbMediaId>"),
    ("location", "<Location_X>30.8</Location_X><Location_Y>106.1</Location_Y><Label>南充</Label>"),
    ("link", "<Title>看看</Title><Url>https://example.org</Url>"),
])
def test_media_gets_a_polite_please_type(channel_for, fake_wechat, msg_type, extra):
    _, agent = channel_for(mode="safe")
    assert "请直接打字提问" in fake_wechat.push(media_xml(OPENID, msg_type, extra), mode="safe").content
    assert agent.runs == []


def test_subscribe_shows_the_numbered_menu_and_a_number_picks_it(channel_for, fake_wechat):
    _, agent = channel_for(mode="safe")
    welcome = fake_wechat.push(event_xml(OPENID, "subscribe"), mode="safe").content
    assert welcome.startswith("您好，欢迎关注")
    assert '<a href="weixin://bizmsgmenu?msgmenucontent=要准备哪些材料&msgmenuid=2">2. 要准备哪些材料</a>' in welcome
    assert agent.runs == []
    # replying "２" (full width) asks menu item 2's question
    assert fake_wechat.push(text_xml(OPENID, "２"), mode="safe").content == "答复：/ask_materials"
    # tapping line 3 sends its title back with bizmsgmenuid
    tapped = text_xml(OPENID, "手机上怎么申请", extra="<bizmsgmenuid>3</bizmsgmenuid>")
    fake_wechat.push(tapped, mode="safe")
    assert agent.texts() == ["/ask_materials", "/start_guide"]
    assert all(run["metadata"]["wechat"]["button"] for run in agent.runs)


def test_bot_buttons_are_remembered_per_user(channel_for, fake_wechat):
    _, agent = channel_for(mode="plain")
    agent.responses["慢特病"] = [{"text": "您想了解：", "buttons": [
        {"title": "谁能申请", "payload": "/ask_who"}, {"title": "材料", "payload": "/ask_materials"}]}]
    reply = fake_wechat.push(text_xml(OPENID, "慢特病")).content
    assert "1. 谁能申请</a>" in reply and "2. 材料</a>" in reply
    fake_wechat.push(text_xml(OPENID, "2"))
    fake_wechat.push(text_xml("oAnotherUser000000000002", "2"))  # no menu for this user
    fake_wechat.push(text_xml(OPENID, "9"))  # no such button
    fake_wechat.push(text_xml(OPENID, '/restart{"x": 1}'))  # typed text cannot inject intents
    assert agent.texts() == ["慢特病", "/ask_materials", "2", "9", 'restart{"x": 1}']


def test_menu_clicks_map_to_configured_intents(channel_for, fake_wechat):
    _, agent = channel_for(mode="safe")
    fake_wechat.push(event_xml(OPENID, "CLICK", "APPLY_MATERIALS", create_time=1), mode="safe")
    fake_wechat.push(event_xml(OPENID, "CLICK", "ABOUT_BOT", create_time=2), mode="safe")
    assert agent.texts() == ["/ask_materials", "/bot_challenge"]
    unknown = fake_wechat.push(event_xml(OPENID, "CLICK", "NO_SUCH_KEY"), mode="safe")
    assert "12393" in unknown.content and len(agent.runs) == 2


def test_unsubscribe_and_other_events_get_no_reply(channel_for, fake_wechat):
    _, agent = channel_for(mode="safe")
    for event in ("unsubscribe", "VIEW", "SCAN"):
        result = fake_wechat.push(event_xml(OPENID, event), mode="safe")
        assert (result.status, result.body) == (200, b"success")
    assert agent.runs == []


def test_a_failing_bot_gets_a_fallback_with_the_hotline(channel_for, fake_wechat):
    _, agent = channel_for(mode="safe")
    agent.fail_on.add("崩溃")
    result = fake_wechat.push(text_xml(OPENID, "崩溃"), mode="safe")
    assert result.status == 200 and "12393" in result.content


def test_special_text_survives_the_round_trip(channel_for, fake_wechat):
    _, agent = channel_for(mode="safe")
    agent.responses["符号"] = [{"text": "a]]>b <b>粗</b> & 😀"}]
    assert fake_wechat.push(text_xml(OPENID, "符号"), mode="safe").content == "a]]>b <b>粗</b> & 😀"

"""Parsing, passive-reply rendering, CDATA escaping and splitting by UTF-8 bytes."""
import os
import pathlib
import re
import subprocess
import sys

import pytest
from wechatpy import parse_message as wechatpy_parse

from wechat_channel.messages import (
    MalformedMessage, parse_message, parse_xml, render_bot_messages, render_text_reply,
    split_utf8,
)

MINI = ('<a href="https://example.org/fallback" data-miniprogram-appid="wxabcdef0123456789" '
        'data-miniprogram-path="pages/index/index">打开小程序</a>')


def test_parses_a_text_push():
    fields = parse_xml(
        "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[oUser]]>"
        "</FromUserName><CreateTime>1714112445</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        "<Content><![CDATA[要带哪些材料？😀]]></Content><MsgId>123</MsgId></xml>".encode())
    message = parse_message(fields)
    assert (message.from_user, message.msg_type, message.content, message.dedupe_key) == \
        ("oUser", "text", "要带哪些材料？😀", "msg:123")


def test_events_are_deduplicated_by_sender_and_time():
    fields = parse_xml(b"<xml><ToUserName>gh_1</ToUserName><FromUserName>oUser</FromUserName>"
                       b"<CreateTime>1714112445</CreateTime><MsgType>event</MsgType>"
                       b"<Event>CLICK</Event><EventKey>APPLY_WHO</EventKey></xml>")
    message = parse_message(fields)
    assert (message.event, message.event_key) == ("click", "APPLY_WHO")
    assert message.dedupe_key == "evt:oUser:1714112445:click"


@pytest.mark.parametrize("body", [
    b"",
    b"   ",
    b"<xml><Content>\xff\xfe</Content></xml>",  # not UTF-8
    b"<xml><a>unclosed</xml>",
    b"<html><FromUserName>x</FromUserName></html>",
    b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
    b"<xml><Content>&b;</Content></xml>",  # entity expansion
    b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b"<xml><Content>&x;</Content></xml>",  # external entity
])
def test_unreadable_bodies_are_malformed(body):
    with pytest.raises(MalformedMessage):
        parse_xml(body)


def test_required_fields_are_checked():
    with pytest.raises(MalformedMessage):
        parse_message({"ToUserName": "gh", "MsgType": "text", "CreateTime": "1"})
    with pytest.raises(MalformedMessage):
        parse_message({"ToUserName": "gh", "FromUserName": "o", "MsgType": "text",
                       "CreateTime": "yesterday"})


@pytest.mark.parametrize("text", ["a]]>b", "]]>", "]]]]>", "x]]>]]>y", "<a href='x'>&</a>",
                                  "控制符\x01去掉"])
def test_cdata_survives_any_text(text):
    xml = render_text_reply("oUser", "gh_1", text, create_time=1)
    parsed = parse_xml(xml.encode())
    assert parsed["Content"] == text.replace("\x01", "")
    assert wechatpy_parse(xml).content == text.replace("\x01", "")  # an independent parser agrees


def test_passive_reply_shape():
    parsed = parse_xml(render_text_reply("oUser", "gh_1", "你好", create_time=1714112445).encode())
    assert parsed == {"ToUserName": "oUser", "FromUserName": "gh_1", "CreateTime": "1714112445",
                      "MsgType": "text", "Content": "你好"}


def test_buttons_become_numbered_tappable_lines():
    text, buttons = render_bot_messages([
        {"text": "您想了解哪一项？", "buttons": [
            {"title": "材料清单", "payload": "/ask_materials"},
            {"title": "办理地点 & 时间", "payload": "/ask_where"}]},
        {"text": "也可以直接打字。", "buttons": [{"title": "人工", "payload": "/human"}]},
    ])
    assert buttons == [("材料清单", "/ask_materials"), ("办理地点 & 时间", "/ask_where"),
                       ("人工", "/human")]
    assert '<a href="weixin://bizmsgmenu?msgmenucontent=材料清单&msgmenuid=1">1. 材料清单</a>' in text
    # & and quotes cannot break the href; the visible line keeps the title
    assert 'msgmenucontent=办理地点 时间&msgmenuid=2">2. 办理地点 & 时间</a>' in text
    assert "3. 人工</a>" in text  # numbering continues across the turn's messages
    assert text.index("您想了解") < text.index("1. 材料") < text.index("也可以") < text.index("3. 人工")


def test_mini_program_links_pass_through():
    text, _ = render_bot_messages([{"text": f"在手机上办理：{MINI}"}])
    assert MINI in text


@pytest.mark.parametrize("limit", [2048, 100, 37])
def test_split_respects_bytes_characters_and_links(limit):
    paragraph = "门诊慢特病申请需要准备身份证、医保卡和近期病历😀。" * 3
    text = "\n".join([paragraph, MINI if limit > 300 else "短链接", "🏥" * 40, "x" * 300, paragraph])
    text = "\n\n".join([text] * 8)
    chunks = split_utf8(text, limit)
    assert len(chunks) > 1
    assert all(len(chunk.encode("utf-8")) <= limit for chunk in chunks)
    assert re.sub(r"\s", "", "".join(chunks)) == re.sub(r"\s", "", text)  # nothing lost
    if limit > 300:
        for chunk in chunks:  # a link is never cut
            assert chunk.count("<a ") == chunk.count("</a>")


def test_short_text_is_one_chunk_and_empty_is_none():
    assert split_utf8("  你好  ") == ["你好"]
    assert split_utf8("") == [] and split_utf8("\n \n") == []
    exactly = "特" * (2048 // 3)
    assert split_utf8(exactly) == [exactly]


def test_protocol_modules_do_not_import_rasa_or_sanic():
    code = (
        "import sys\n"
        "import wechat_channel.endpoint, wechat_channel.api_client, wechat_channel.crypto\n"
        "import wechat_channel.messages, wechat_channel.signature, wechat_channel.delivery\n"
        "import wechat_channel.menu, wechat_channel.config\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('rasa', 'sanic', 'rasa_sdk'))\n"
        "print(bad)\n"
    )
    root = pathlib.Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
    assert out.stdout.strip() == "[]"

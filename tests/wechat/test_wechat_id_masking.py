"""A full ID-card number typed (or spoken) in WeChat never reaches the bot, so it never
lands in the tracker store: only its last 4 characters are kept."""
import asyncio
import time
import uuid

import pytest

from wechat_channel.config import WeChatSettings
from channels.wechat import wechat_menu, wechat_replies
from wechat_channel.endpoint import WeChatEndpoint
from wechat_fakes import ACCOUNT, TOKEN, text_xml, wechat_signature


class RecordingBot:
    def __init__(self):
        self.texts = []

    async def __call__(self, text, sender_id, metadata):
        self.texts.append(text)
        return [{"recipient_id": sender_id, "text": "收到"}]


def signed(body_xml: str):
    timestamp, nonce = str(int(time.time())), str(uuid.uuid4().int % 10**9)
    query = {"signature": wechat_signature(TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
    return query, body_xml.encode("utf-8")


def voice_xml(openid: str, recognition: str) -> str:
    return (f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
            f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[voice]]></MsgType>"
            f"<MediaId><![CDATA[m1]]></MediaId><Format><![CDATA[amr]]></Format>"
            f"<Recognition><![CDATA[{recognition}]]></Recognition>"
            f"<MsgId>{uuid.uuid4().int % 10**12}</MsgId></xml>")


def dispatch(body_xml: str):
    bot = RecordingBot()
    settings = WeChatSettings(token=TOKEN)
    endpoint = WeChatEndpoint(settings, bot, wechat_replies(), menu=wechat_menu(settings))

    async def go():
        response = await endpoint.receive(*signed(body_xml))
        await endpoint.close()
        return response

    response = asyncio.run(go())
    assert response.status == 200
    return bot.texts


@pytest.mark.parametrize("typed, seen", [
    ("我的身份证号是511302198001011234", "我的身份证号是**************1234"),
    ("5113 0219 8001 0112 3X", "**************123X"),
    ("511302 19800101 123x 查进度", "**************123x 查进度"),
    ("５１１３０２１９８００１０１１２３４", "**************１２３４"),
])
def test_full_id_numbers_are_masked_before_the_bot_sees_them(typed, seen):
    assert dispatch(text_xml("o-user-1", typed)) == [seen]


def test_spoken_id_numbers_are_masked_too():
    assert dispatch(voice_xml("o-user-2", "身份证511302198001011234")) == ["身份证**************1234"]


@pytest.mark.parametrize("typed", ["NC2025000104", "1357", "热线12393", "51130219800101123"])
def test_application_numbers_suffixes_and_short_numbers_pass_unchanged(typed):
    assert dispatch(text_xml("o-user-3", typed)) == [typed]


@pytest.mark.parametrize("typed, seen", [
    ("／restart", "restart"),                                     # full-width slash: never a command
    ('/ask_materials{"disease": "高血压"}', 'ask_materials{"disease": "高血压"}'),
    ("sfz 5113\u00a00219\u00a08001\u00a00112\u00a034", "sfz **************1234"),
    ("身份证511302800101123", "身份证***********1123"),             # the old 15-digit form
    ("材料" * 400, "材料" * 250),                                   # cut to 500 characters
])
def test_typed_text_is_what_every_channel_lets_through(typed, seen):
    assert dispatch(text_xml("o-user-4", typed)) == [seen]

"""The REST and socket.io channels keep Rasa's names (same URLs) and mask ID numbers."""
import asyncio

import pytest
from rasa.core.channels.channel import UserMessage

from channels.inbound import handle
from channels.masked import MaskedRestInput, MaskedSocketIOInput, broken_engineio_request
from core.privacy import client_reference


def test_channels_keep_rasas_names_so_urls_do_not_change():
    assert MaskedRestInput.name() == "rest"
    assert MaskedSocketIOInput.name() == "socketio"


def test_handler_only_sees_masked_text():
    seen = []

    async def handler(message):
        seen.append(message.text)

    for text in ("身份证 51130219800101123X 查进度", "后四位123X"):
        asyncio.run(handle(handler, UserMessage(text, sender_id="s", input_channel="rest"), {}))
    assert seen == ["身份证 **************123X 查进度", "后四位123X"]


def test_rest_channel_ignores_the_clients_input_channel_and_metadata():
    class FakeRequest:
        json = {"sender": "s", "message": "你好", "input_channel": "wechat", "metadata": {"client": "me"}}
        headers = {}
        remote_addr = ""
        ip = "192.0.2.5"

    channel = MaskedRestInput()
    assert channel._extract_input_channel(FakeRequest()) == "rest"
    assert channel.get_metadata(FakeRequest()) == {"client": client_reference("ip", "192.0.2.5")}


@pytest.mark.parametrize("method, args, headers, refused", [
    ("GET", {"EIO": "4", "transport": "websocket"}, {"upgrade": "websocket"}, True),  # no key
    ("GET", {}, {"upgrade": "websocket", "sec-websocket-key": "not-base64!"}, True),
    ("GET", {}, {"upgrade": "WebSocket", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ=="}, False),
    ("POST", {"EIO": "4", "transport": "polling"}, {}, True),  # Engine.IO: a POST needs its session
    ("POST", {"sid": "abc"}, {}, False),
    ("GET", {"EIO": "4", "transport": "polling"}, {}, False),  # the handshake itself
])
def test_broken_engineio_requests_are_refused_before_engineio(method, args, headers, refused):
    assert (broken_engineio_request(method, args, headers) is not None) is refused

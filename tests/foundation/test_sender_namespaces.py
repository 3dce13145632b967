"""The REST and socket.io channels keep the client-chosen sender id in a namespace of
their own ("rest:…", "sio:…", channels/masked.py), so a client can never continue (or use
up the lookups of) a WeChat OpenID's or a widget visitor's conversation (issue 16).

Through one running stack with every channel: WeChat in safe mode behind the fake WeChat,
the widget's channel, REST and socket.io."""
import asyncio
import json
import pathlib
import sys
import urllib.error
import urllib.request
import uuid

import pytest

from channels.masked import REST_NAMESPACE, SOCKETIO_NAMESPACE
from tests.progress.progress_helpers import new_secrets

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "wechat"))
from wechat_fakes import FakeWeChat, start_wechat_stack, text_xml  # noqa: E402

pytestmark = pytest.mark.xdist_group("sender_namespaces")

ASKS_FOR_NUMBER = "申请编号"


@pytest.fixture(scope="module")
def wechat():
    with FakeWeChat() as fake:
        yield fake


@pytest.fixture(scope="module")
def stack(stack_factory, tmp_path_factory, wechat):
    directory = tmp_path_factory.mktemp("namespaces-stack")
    handle = start_wechat_stack(stack_factory, directory, wechat,
                                {**new_secrets(), "RASA_AUTH_TOKEN": uuid.uuid4().hex})
    yield handle
    handle.stack.stop()


def post(stack, channel: str, sender: str, text: str) -> list:
    request = urllib.request.Request(
        f"{stack.rasa_url}/webhooks/{channel}/webhook",
        data=json.dumps({"sender": sender, "message": text}).encode("utf-8"),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def user_texts(stack, conversation: str) -> list:
    """The user messages of the conversation with this tracker id (Rasa's HTTP API)."""
    url = f"{stack.rasa_url}/conversations/{conversation}/tracker?token={stack.environ['RASA_AUTH_TOKEN']}"
    with urllib.request.urlopen(url, timeout=30) as response:
        events = json.loads(response.read())["events"]
    return [event["text"] for event in events if event["event"] == "user"]


def wechat_says(wechat, openid: str, text: str) -> str:
    result = wechat.push(text_xml(openid, text), mode="safe")
    assert result.status == 200, result
    return result.content or ""


def texts(replies: list) -> str:
    return "\n".join(reply.get("text", "") for reply in replies)


def test_replies_name_the_clients_own_id_while_the_conversation_is_namespaced():
    """channels.inbound.handle(reply_to=…): what Rasa sends to the conversation's id goes to
    the id the client sent; anything addressed otherwise passes unchanged."""
    from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

    from channels.inbound import handle

    collector = CollectingOutputChannel()
    seen = []

    async def bot(message):
        seen.append(message.sender_id)
        await message.output_channel.send_response(message.sender_id, {"text": "答复"})
        await message.output_channel.send_response("someone-else", {"text": "别处"})

    message = UserMessage("你好", collector, REST_NAMESPACE + "abc", input_channel="rest")
    asyncio.run(handle(bot, message, {}, reply_to="abc"))
    assert seen == ["rest:abc"]
    assert [(m["recipient_id"], m["text"]) for m in collector.messages] == [("abc", "答复"), ("someone-else", "别处")]


def test_a_rest_client_naming_a_wechat_openid_starts_its_own_conversation(stack, wechat):
    openid = "oNS" + uuid.uuid4().hex[:25]  # an OpenID's form: 28 characters
    assert ASKS_FOR_NUMBER in wechat_says(wechat, openid, "查一下我的申请进度")

    replies = post(stack, "rest", openid, "NC2025000101")
    # the reply names the id the client sent (Rasa's REST wire format unchanged)
    assert replies and {reply["recipient_id"] for reply in replies} == {openid}
    # … but the message went to the REST namespace, never into the WeChat conversation
    assert user_texts(stack, openid) == ["查一下我的申请进度"]
    assert user_texts(stack, REST_NAMESPACE + openid) == ["NC2025000101"]
    # the WeChat lookup goes on where it was: the form still waits for the number
    assert "身份证" in wechat_says(wechat, openid, "NC2025000101")
    assert user_texts(stack, openid) == ["查一下我的申请进度", "NC2025000101"]


def test_a_rest_client_naming_a_widget_visitor_starts_its_own_conversation(stack):
    visitor = f"web-{uuid.uuid4().hex}"
    assert ASKS_FOR_NUMBER in texts(post(stack, "web", visitor, "查一下我的申请进度"))

    replies = post(stack, "rest", visitor, "算了")
    assert replies and {reply["recipient_id"] for reply in replies} == {visitor}
    assert user_texts(stack, visitor) == ["查一下我的申请进度"]
    assert user_texts(stack, REST_NAMESPACE + visitor) == ["算了"]
    # "算了" did not end the visitor's lookup
    assert "身份证" in texts(post(stack, "web", visitor, "NC2025000101"))


def test_socketio_sessions_have_their_own_namespace_and_still_get_their_replies(stack):
    import socketio

    session_id = uuid.uuid4().hex

    async def conversation():
        client = socketio.AsyncClient()
        replies = asyncio.Queue()
        client.on("bot_uttered", lambda data: replies.put_nowait(data))
        await client.connect(stack.rasa_url, socketio_path="/socket.io", transports=["websocket"])
        try:
            await client.emit("session_request", {"session_id": session_id})
            await client.emit("user_uttered", {"session_id": session_id, "message": "查一下我的申请进度"})
            received = [await asyncio.wait_for(replies.get(), 60)]
            await asyncio.sleep(1)  # a reply split into several messages
            while not replies.empty():
                received.append(replies.get_nowait())
            return received
        finally:
            await client.disconnect()

    received = asyncio.run(conversation())
    # the replies reached the client's room (its own session id, not the namespaced one)
    assert ASKS_FOR_NUMBER in "\n".join(reply.get("text", "") for reply in received)
    assert user_texts(stack, SOCKETIO_NAMESPACE + session_id) == ["查一下我的申请进度"]
    assert user_texts(stack, session_id) == []
    # a REST client naming the socket.io conversation, even with its prefix, gets its own
    post(stack, "rest", SOCKETIO_NAMESPACE + session_id, "算了")
    assert user_texts(stack, SOCKETIO_NAMESPACE + session_id) == ["查一下我的申请进度"]
    assert user_texts(stack, REST_NAMESPACE + SOCKETIO_NAMESPACE + session_id) == ["算了"]


def test_the_widgets_channel_refuses_a_namespaced_sender(stack):
    """The widget's ids have no ":" (channels/web.py), so no widget client reaches a REST
    or socket.io conversation either."""
    request = urllib.request.Request(
        f"{stack.rasa_url}/webhooks/web/webhook",
        data=json.dumps({"sender": REST_NAMESPACE + "web-" + uuid.uuid4().hex, "message": "你好"}).encode(),
        headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 400

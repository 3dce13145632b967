"""What every channel does on the way in, through the running stack (REST, socket.io, the
widget): typed "/" commands stay text while offered buttons work, only the server's
metadata is kept, text is capped and big bodies are refused, never a 5xx (issue 16)."""
import asyncio
import json
import urllib.error
import urllib.request
import uuid

import pytest

# all tests here share one started stack, so xdist keeps them on one worker (Makefile test-python)
pytestmark = pytest.mark.xdist_group("shared_stack")

TYPED_COMMANDS = ["／restart", "/restart", '／ask_materials{"disease": "高血压"}',
                  ' /ask_materials{"disease": "高血压"}']


def post(url: str, body) -> tuple:
    data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, None


def channel_url(stack, channel: str) -> str:
    return f"{stack.rasa_url}/webhooks/{channel}/webhook"


def new_sender(channel: str) -> str:
    return f"web-{uuid.uuid4()}" if channel == "web" else f"inbound-{uuid.uuid4().hex[:12]}"


def conversation_id(sender: str) -> str:
    """The tracker's id of a client's sender: REST senders (inbound-…) and socket.io
    sessions (sio-…) live in their channel's namespace (channels/masked.py)."""
    if sender.startswith("inbound-"):
        return "rest:" + sender
    return "sio:" + sender if sender.startswith("sio-") else sender


def tracker_events(stack, sender: str) -> list:
    url = (f"{stack.rasa_url}/conversations/{conversation_id(sender)}/tracker"
           f"?token={stack.environ['RASA_AUTH_TOKEN']}")
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())["events"]


def last_user_event(stack, sender: str) -> dict:
    return [event for event in tracker_events(stack, sender) if event["event"] == "user"][-1]


def assert_stayed_text(stack, sender: str):
    events = tracker_events(stack, sender)
    user = [event for event in events if event["event"] == "user"][-1]
    assert not user["text"].lstrip().startswith(("/", "／")), user["text"]
    assert not any(e.get("extractor") == "RegexMessageHandler" for e in user["parse_data"]["entities"])
    assert not any(event["event"] == "restart" for event in events)


@pytest.mark.parametrize("channel", ["rest", "web"])
def test_typed_slash_commands_stay_text(running_stack, channel):
    for typed in TYPED_COMMANDS:
        sender = new_sender(channel)
        status, replies = post(channel_url(running_stack, channel), {"sender": sender, "message": typed})
        assert status == 200 and replies, (typed, status)
        assert_stayed_text(running_stack, sender)


@pytest.mark.parametrize("channel", ["rest", "web"])
def test_a_button_the_bot_offered_still_works(running_stack, channel):
    sender = new_sender(channel)
    status, replies = post(channel_url(running_stack, channel), {"sender": sender, "message": "怎么申请"})
    payloads = [b["payload"] for r in replies for b in r.get("buttons", []) if b["payload"].startswith("/")]
    assert status == 200 and payloads, replies
    status, _ = post(channel_url(running_stack, channel), {"sender": sender, "message": payloads[-1]})
    user = last_user_event(running_stack, sender)
    assert status == 200 and user["text"] == payloads[-1]
    intent = payloads[-1][1:].split("{")[0]
    assert user["parse_data"]["intent"] == {"name": intent, "confidence": 1.0}
    # the same payload from a conversation that was never offered it is typed text
    other = new_sender(channel)
    post(channel_url(running_stack, channel), {"sender": other, "message": payloads[-1]})
    assert_stayed_text(running_stack, other)


def test_socketio_typed_commands_stay_text(running_stack):
    import socketio

    session_id = "sio-" + uuid.uuid4().hex[:12]

    async def conversation():
        client = socketio.AsyncClient()
        replies = asyncio.Queue()
        client.on("bot_uttered", lambda data: replies.put_nowait(data))
        await client.connect(running_stack.rasa_url, socketio_path="/socket.io", transports=["websocket"])
        try:
            await client.emit("session_request", {"session_id": session_id})
            await client.emit("user_uttered", {"session_id": session_id, "message": "／restart",
                                               "metadata": {"client": "chosen"}})
            await asyncio.wait_for(replies.get(), 30)
        finally:
            await client.disconnect()

    asyncio.run(conversation())
    assert_stayed_text(running_stack, session_id)
    assert last_user_event(running_stack, session_id)["metadata"]["client"] != "chosen"


@pytest.mark.parametrize("channel", ["rest", "web"])
def test_only_the_servers_metadata_is_kept(running_stack, channel):
    sender = new_sender(channel)
    status, _ = post(channel_url(running_stack, channel), {
        "sender": sender, "message": "你好", "input_channel": "wechat",
        "metadata": {"client": "chosen-by-me", "wechat": {"button": True}, "x": "y" * 1000}})
    user = last_user_event(running_stack, sender)
    assert status == 200 and user["input_channel"] == channel
    kept = set(user["metadata"]) - {"model_id", "assistant_id"}  # Rasa adds these two
    # the server's own: the client id it binds and the turn's request id (core/request_id)
    assert kept == {"client", "request_id"} and user["metadata"]["client"] != "chosen-by-me"
    assert len(user["metadata"]["client"]) == 32


@pytest.mark.parametrize("channel", ["rest", "web"])
def test_long_texts_are_cut_and_big_bodies_refused_never_a_server_error(running_stack, channel):
    url = channel_url(running_stack, channel)
    sender = new_sender(channel)
    status, replies = post(url, {"sender": sender, "message": "要带什么材料" * 1000})
    assert status == 200 and replies
    assert len(last_user_event(running_stack, sender)["text"]) == 500
    assert post(url, {"sender": new_sender(channel), "message": "材" * 40000})[0] == 413
    for garbage in (b"[" * 60000, b'{"sender": "\\ud800", "message": "\\udfff"}', b"\xff\xfe\x00",
                    json.dumps({"sender": new_sender(channel), "message": ["a"]}).encode()):
        status, _ = post(url, garbage)
        assert 400 <= status < 500, (garbage[:20], status)
    assert post(url, {"sender": new_sender(channel), "message": "你好"})[0] == 200

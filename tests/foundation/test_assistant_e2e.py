"""A newcomer's first conversation, through the real stack (Rasa + action server)."""
import re

import pytest

# all tests here share one started stack, so xdist keeps them on one worker (Makefile test-python)
pytestmark = pytest.mark.xdist_group("shared_stack")

CHINESE = re.compile(r"[\u4e00-\u9fff]")


def test_greeting_is_answered_in_chinese(running_stack):
    reply = running_stack.say_text("e2e-greet", "你好")
    assert CHINESE.search(reply), reply
    assert "小助手" in reply


def test_weather_question_is_out_of_scope_and_offers_12393(running_stack):
    reply = running_stack.say_text("e2e-oos", "今天天气怎么样")
    assert "12393" in reply
    assert "门诊慢特病" in reply  # says what it can do


def test_traditional_characters_are_understood(running_stack):
    reply = running_stack.say_text("e2e-trad", "你是機器人嗎")
    assert "不是人工" in reply


def test_http_api_is_closed_without_a_token(running_stack):
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(f"{running_stack.rasa_url}/conversations/e2e-greet/tracker", timeout=5)
    except urllib.error.HTTPError as error:
        # the API is on (the console needs /model/parse) but only behind RASA_AUTH_TOKEN
        assert error.code == 401
    else:
        raise AssertionError("tracker API must not be open without a token")


def test_full_id_number_typed_into_rest_channel_is_never_stored(running_stack):
    """People paste the whole 身份证号; only its last 4 characters may reach the tracker store."""
    import sqlite3

    full_id = "511302198001011234"
    running_stack.say("e2e-idmask", f"我的身份证号是{full_id}")
    database = running_stack.settings.state_dir / "rasa-tracker.db"
    with sqlite3.connect(str(database)) as connection:
        stored = [row[0] for row in connection.execute(
            "SELECT data FROM events WHERE sender_id = ?", ("rest:e2e-idmask",))]
    assert stored, "the conversation was not stored at all"
    assert not any(full_id in data for data in stored)
    assert any("**************1234" in data for data in stored)


def test_malformed_rest_bodies_get_400_not_500(running_stack):
    import urllib.error
    import urllib.request

    for body in (b"[]", b'{"sender": "x", "message": 5}', b"not json", b'{"sender": "x"}'):
        request = urllib.request.Request(
            f"{running_stack.rasa_url}/webhooks/rest/webhook", data=body,
            headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(request, timeout=10)
        except urllib.error.HTTPError as error:
            assert error.code == 400, (body, error.code)
        else:
            raise AssertionError(f"{body!r} was accepted")
    # and the channel still works afterwards
    assert running_stack.say_text("e2e-after-bad-body", "你好")


def test_socketio_channel_answers_and_masks_full_id_numbers(running_stack):
    """Rasa's socket.io channel (credentials.yml: channels.masked) still talks the
    standard protocol: session_request, user_uttered -> bot_uttered."""
    import asyncio
    import sqlite3
    import uuid

    import socketio

    session_id = "sio-" + uuid.uuid4().hex[:12]
    full_id = "51130219800101123X"

    async def conversation():
        client = socketio.AsyncClient()
        replies = asyncio.Queue()
        client.on("bot_uttered", lambda data: replies.put_nowait(data))
        await client.connect(running_stack.rasa_url, socketio_path="/socket.io", transports=["websocket"])
        try:
            await client.emit("session_request", {"session_id": session_id})
            await client.emit("user_uttered", {"session_id": session_id, "message": "你好"})
            greeting = await asyncio.wait_for(replies.get(), 30)
            await client.emit("user_uttered", {"session_id": session_id, "message": f"身份证{full_id}"})
            await asyncio.wait_for(replies.get(), 30)
            return greeting
        finally:
            await client.disconnect()

    greeting = asyncio.run(conversation())
    assert "小助手" in greeting.get("text", "")
    database = running_stack.settings.state_dir / "rasa-tracker.db"
    with sqlite3.connect(str(database)) as connection:
        stored = [row[0] for row in connection.execute(
            "SELECT data FROM events WHERE sender_id = ?", ("sio:" + session_id,))]
    assert stored and not any(full_id in data for data in stored)
    assert any("**************123X" in data for data in stored)

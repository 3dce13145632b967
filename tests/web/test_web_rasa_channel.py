"""The widget's Rasa input channel (channels/web.py): checks its input, keeps channel `web`."""
import json
import urllib.error
import urllib.request

import pytest

from core.privacy import mask_id_card_numbers
from channels.web import MAX_MESSAGE_CHARS, parse_request

# all tests here share one started stack, so xdist keeps them on one worker (Makefile test-python)
pytestmark = pytest.mark.xdist_group("shared_stack")


@pytest.mark.parametrize("body", [
    None, [], "text", {"message": "你好"}, {"sender": "short", "message": "你好"},
    {"sender": "web-../../etc/passwd", "message": "你好"},
    {"sender": "web-1234567890", "message": "   "}, {"sender": "web-1234567890", "message": 5},
    # a WeChat OpenID (or any other channel's id) must not reach that user's conversation
    {"sender": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "message": "你好"},
    {"sender": "o6_bmjrPTlm6_2sgVt7hMZOPfL2M", "message": "你好"},
    {"sender": "WEB-0F9C1D2E-AAAA", "message": "你好"},
])
def test_bad_requests_are_refused_with_a_reason(body):
    parsed, reason = parse_request(body)
    assert parsed is None and reason


def test_a_widget_request_is_accepted_and_long_text_is_capped():
    parsed, reason = parse_request({"sender": "web-0f9c1d2e-aaaa", "message": " 要" + "带" * 2000,
                                    "metadata": "not a dict"})
    assert reason is None
    assert parsed["sender"] == "web-0f9c1d2e-aaaa"
    assert len(parsed["message"]) == MAX_MESSAGE_CHARS and parsed["message"].startswith("要")
    assert parsed["metadata"] is None


@pytest.mark.parametrize("text, expected", [
    ("我的身份证号是51130219800101123x", "我的身份证号是**************123x"),
    ("5113 0219 8001 0112 34 查进度", "**************1234 查进度"),
    ("511302 19800101 1234。", "**************1234。"),
    # not full ID numbers: left alone
    ("后四位1234", "后四位1234"), ("编号NC2025000123", "编号NC2025000123"),
    ("电话13800138000", "电话13800138000"),
])
def test_full_id_numbers_are_masked_to_their_last_four(text, expected):
    assert mask_id_card_numbers(text) == expected
    parsed, _ = parse_request({"sender": "web-0f9c1d2e-aaaa", "message": text})
    assert parsed["message"] == expected


def test_the_console_sender_is_accepted():
    parsed, reason = parse_request({"sender": "agent-console-0123456789abcdef", "message": "材料"})
    assert reason is None and parsed["sender"] == "agent-console-0123456789abcdef"


def _post(url, data: bytes):
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read().decode("utf-8"))


def test_the_running_channel_answers_and_refuses_garbage(web_stack):
    url = f"{web_stack.rasa_url}/webhooks/web/webhook"
    sender = "web-3c9e0a1b-7d2f-4e6a-9b8c-0123456789ab"
    status, replies = _post(url, json.dumps({"sender": sender, "message": "你好"}).encode())
    assert status == 200 and any("小助手" in (r.get("text") or "") for r in replies)
    for garbage in (b"not json", b"[]", json.dumps({"sender": "x", "message": "hi"}).encode(),
                    json.dumps({"sender": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "message": "你好"}).encode()):
        status, body = _post(url, garbage)
        assert status == 400 and body["error"]


def test_a_full_id_number_never_reaches_the_tracker_store(web_stack):
    sender = "web-5a7d0e2c-1b3f-4c6e-8a9d-ab0123456789"
    status, _ = _post(f"{web_stack.rasa_url}/webhooks/web/webhook",
                      json.dumps({"sender": sender, "message": "身份证511302198001011234"}).encode())
    assert status == 200
    tracker_url = (f"{web_stack.rasa_url}/conversations/{sender}/tracker"
                   f"?token={web_stack.env['RASA_AUTH_TOKEN']}")
    with urllib.request.urlopen(tracker_url, timeout=10) as response:
        tracker = response.read().decode("utf-8")
    assert "511302198001011234" not in tracker and "51130219800101" not in tracker
    assert "**************1234" in tracker


def test_a_long_message_is_masked_before_it_is_cut():
    text = "要" * (MAX_MESSAGE_CHARS - 17) + "511302198001011234"
    parsed, _ = parse_request({"sender": "web-0f9c1d2e-aaaa", "message": text})
    assert "51130219800101123" not in parsed["message"]
    assert len(parsed["message"]) == MAX_MESSAGE_CHARS

"""The widget's Rasa input channel (web/rasa_channel.py): checks its input, keeps channel `web`."""
import json
import urllib.error
import urllib.request

import pytest

from web.rasa_channel import MAX_MESSAGE_CHARS, parse_request


@pytest.mark.parametrize("body", [
    None, [], "text", {"message": "你好"}, {"sender": "short", "message": "你好"},
    {"sender": "web-../../etc/passwd", "message": "你好"},
    {"sender": "web-1234567890", "message": "   "}, {"sender": "web-1234567890", "message": 5},
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


def _post(url, data: bytes):
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read().decode("utf-8"))


def test_the_running_channel_answers_and_refuses_garbage(web_stack):
    url = f"{web_stack.rasa_url}/webhooks/web/webhook"
    status, replies = _post(url, json.dumps({"sender": "web-channel-test-01", "message": "你好"}).encode())
    assert status == 200 and any("小助手" in (r.get("text") or "") for r in replies)
    for garbage in (b"not json", b"[]", json.dumps({"sender": "x", "message": "hi"}).encode()):
        status, body = _post(url, garbage)
        assert status == 400 and body["error"]

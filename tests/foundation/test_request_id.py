"""Request ids and timestamps in the logs (docs/deploy.md, "Request id and log format").

One id per turn, made at the channel or taken from a sane X-Request-Id (nginx's
$request_id), travels channel → Rasa → action server → progress service, and every one of
them logs it; web and progress log lines carry an ISO timestamp.
"""
import asyncio
import json
import logging
import re
import uuid

import pytest

from core import log_privacy, request_id
from core.progress_client import ProgressClient
from tests.foundation.ops_support import StubHttp, get_json, wait_for

ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"


@pytest.mark.parametrize("value", ["0123456789abcdef0123456789abcdef", "test-1234_abcd.ef:01"])
def test_a_sane_incoming_id_is_kept(value):
    assert request_id.sane(value) == value
    assert request_id.from_headers({"x-request-id": value}) == value


@pytest.mark.parametrize("value", [None, "", "short", "a" * 65, "has space 12345", "百分百12345678",
                                   "%(message)s1234", "x\r\nInjected: 1", b"\xff\xfe12345678", 12345678])
def test_anything_else_gets_a_new_id(value):
    assert request_id.sane(value) is None
    made = request_id.from_headers({"x-request-id": value})
    assert re.fullmatch(r"[a-z2-7]{26}", made) and made != value
    assert not any(re.search(r"\d{15}", request_id.new()) for _ in range(1000))  # never ID-like


def test_the_action_server_finds_the_turns_id_in_the_tracker():
    tracker = {"latest_message": {"text": "9999", "metadata": {"client": "c", "request_id": "rid-12345678"}},
               "events": []}
    assert request_id.from_tracker(tracker) == "rid-12345678"
    from_events = {"latest_message": {}, "events": [
        {"event": "user", "metadata": {"request_id": "older-12345678"}},
        {"event": "bot"}, {"event": "user", "metadata": {"request_id": "newer-12345678"}}, {"event": "action"}]}
    assert request_id.from_tracker(from_events) == "newer-12345678"
    assert request_id.from_tracker({"latest_message": {"metadata": {"request_id": "bad id"}}}) is None
    assert request_id.from_tracker("not a tracker") is None


def test_log_lines_carry_the_id_after_the_masking(caplog):
    log_privacy.install()
    request_id.install()  # after the masking, as every process does it
    logger = logging.getLogger("tests.request_id")
    token = request_id.set_current("abcdef0123456789")
    try:
        with caplog.at_level(logging.INFO, logger="tests.request_id"):
            logger.info("lookup for %s", "511302198001011234")
    finally:
        request_id.reset(token)
    with caplog.at_level(logging.INFO, logger="tests.request_id"):
        logger.info("no turn here")
    first, second = [record.getMessage() for record in caplog.records]
    assert first.endswith(" [req abcdef0123456789]") and "511302198001011234" not in first
    assert "1234" in first and "[req" not in second


def test_the_formatters_write_iso_timestamps_and_json():
    request_id.install()
    token = request_id.set_current("abcdef0123456789")
    try:
        record = logging.getLogger("tests.fmt").makeRecord("tests.fmt", logging.WARNING, __file__, 1,
                                                           "hello %s", ("world",), None)
    finally:
        request_id.reset(token)
    text = request_id.formatter({}).format(record)
    assert re.match(ISO + r"\.\d{3}\+00:00 WARNING tests\.fmt: hello world \[req abcdef0123456789\]$", text), text
    entry = json.loads(request_id.formatter({"LOG_FORMAT": "json"}).format(record))
    assert entry["level"] == "WARNING" and entry["request_id"] == "abcdef0123456789"
    assert re.match(ISO, entry["time"]) and entry["message"].startswith("hello world")


def test_the_progress_client_passes_the_id_on():
    stub = StubHttp()
    try:
        client = ProgressClient(f"http://127.0.0.1:{stub.port}", "key", timeout=5)

        async def lookup(turn):
            request_id.set_current(turn)
            return await client.lookup_async("NC2025000101", "1234", "sender")

        asyncio.run(lookup("turn-0123456789"))  # in a worker thread: the context goes along
        asyncio.run(lookup(""))
        sent = [headers for _, path, headers in stub.seen if path.startswith("/api/")]
        assert sent[0].get("X-Request-Id") == "turn-0123456789"
        assert "X-Request-Id" not in sent[1]
    finally:
        stub.stop()


@pytest.mark.xdist_group("shared_stack")
def test_one_turns_id_is_in_the_channel_action_and_progress_logs(running_stack):
    """A lookup turn sent with nginx's header: Rasa, the action server and the progress
    service each log a line with that id."""
    sender = f"rid-{uuid.uuid4().hex[:12]}"
    assert "身份证" in running_stack.say_text(sender, "帮我查NC2025000101的进度")
    turn = uuid.uuid4().hex
    url = f"{running_stack.rasa_url}/webhooks/rest/webhook"
    body = json.dumps({"sender": sender, "message": "9999"}).encode("utf-8")
    status, replies = get_json(url, {"Content-Type": "application/json", "X-Request-Id": turn}, body)
    assert status == 200 and "没查到" in "".join(reply.get("text", "") for reply in replies), replies
    log = running_stack.settings.state_dir / "stack.log"

    def lines_with_the_id():
        found = {}
        for line in log.read_text(encoding="utf-8").splitlines():
            match = re.match(r"\[(\w+)\s*\] (.*)$", line)
            if match and f"[req {turn}]" in line:
                found.setdefault(match.group(1), []).append(match.group(2))
        return found if {"rasa", "actions", "progress"} <= set(found) else None

    found = wait_for(lines_with_the_id, timeout=20)
    assert found, log.read_text(encoding="utf-8")[-4000:]
    assert any("turn on rest" in line for line in found["rasa"])
    assert any("running action_check_progress" in line for line in found["actions"])
    progress_line = next(line for line in found["progress"] if "GET /api/v1/applications/" in line)
    assert re.match(ISO, progress_line) and "NC2025000101" not in progress_line  # masked number
    # the id is stored with the turn, for whoever reads the conversation later
    users = []
    for conversation in ("rest:" + sender, sender):  # REST senders live in their namespace
        status, tracker = get_json(f"{running_stack.rasa_url}/conversations/{conversation}/tracker"
                                   f"?token={running_stack.environ['RASA_AUTH_TOKEN']}")
        users = users or [event for event in tracker["events"] if event.get("event") == "user"]
    assert users[-1]["metadata"]["request_id"] == turn, users[-1]


@pytest.mark.xdist_group("shared_stack")
def test_web_log_lines_have_timestamps(running_stack):
    log = running_stack.settings.state_dir / "stack.log"
    web = [line for line in log.read_text(encoding="utf-8").splitlines() if line.startswith("[web")]
    progress = [line for line in log.read_text(encoding="utf-8").splitlines() if line.startswith("[progress")]
    ours = [line for line in web + progress if re.search(r"\] (INFO|WARNING|ERROR) ", line)]
    assert not ours, ours[:3]  # no line of ours without its timestamp
    assert any(re.match(r"\[progress\s*\] " + ISO, line) for line in progress), progress[:5]

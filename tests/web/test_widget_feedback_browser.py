"""Feedback (👍/👎) in the help widget, in a real browser on the full stack (issue 19).

A visitor asks a knowledge question, taps 👎 under the answer, gives a reason, and the
rating is in the tracker store in core/unanswered.py's shape: the report of that stack
(tools/report_unanswered.py on its tracker DB) lists the question as `thumbs_down`. A 👍
becomes a thank-you; questions and walk steps get no rating; an answer can be rated once,
and only the latest one. The web channel's /feedback endpoint refuses what it must.
"""
import csv
import datetime as dt
import json
import os
import re
import subprocess
import urllib.error
import urllib.request
import uuid

import pytest
from playwright.sync_api import expect

from core.formats import CHINA_TZ
from core.unanswered import THUMBS_DOWN, conversation_ref
from tests.conftest import ROOT

# the shared stack, so xdist keeps these with the other tests that use it
pytestmark = pytest.mark.xdist_group("shared_stack")

REPLY_TIMEOUT = 30_000  # ms
LAUNCHER = "打开门诊慢特病在线咨询"
QUESTION = "申请要带哪些材料？"


def open_chat(page, url):
    page.goto(url)
    page.get_by_role("button", name=LAUNCHER).click()
    dialog = page.get_by_role("dialog", name="门诊慢特病在线咨询")
    expect(dialog).to_be_visible()
    return dialog


def ask(page, text):
    box = page.get_by_label("输入您的问题")
    box.fill(text)
    box.press("Enter")


def stored_sender(page) -> str:
    stored = json.loads(page.evaluate(
        "() => sessionStorage.getItem(Object.keys(sessionStorage).find(k => k.startsWith('mzmtb-widget:')))"))
    return stored["sender"]


def tracker_events(web_stack, sender):
    url = f"{web_stack.rasa_url}/conversations/{sender}/tracker?token={web_stack.env['RASA_AUTH_TOKEN']}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read().decode("utf-8"))["events"]


def ratings(events):
    return [e for e in events if e.get("event") == "user" and (e.get("metadata") or {}).get("feedback")]


def wait_for_ratings(page, web_stack, sender, count):
    for _ in range(50):
        found = ratings(tracker_events(web_stack, sender))
        if len(found) >= count:
            return found
        page.wait_for_timeout(200)
    return ratings(tracker_events(web_stack, sender))


def post_feedback(web_stack, body):
    request = urllib.request.Request(f"{web_stack.rasa_url}/webhooks/web/feedback",
                                     data=json.dumps(body).encode("utf-8"),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read().decode("utf-8"))


def say_web(web_stack, sender, text):
    request = urllib.request.Request(f"{web_stack.rasa_url}/webhooks/web/webhook",
                                     data=json.dumps({"sender": sender, "message": text}).encode("utf-8"),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read().decode("utf-8"))


def report_rows(web_stack, tmp_path, sender):
    out = tmp_path / "report.csv"
    since = (dt.datetime.now(CHINA_TZ).date() - dt.timedelta(days=1)).isoformat()
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-m", "tools.report_unanswered",
         "--endpoints", str(web_stack.handle.settings.endpoints), "--since", since, "--out", str(out)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    with out.open(encoding="utf-8-sig", newline="") as handle:
        return [row for row in csv.DictReader(handle) if row["conversation"] == conversation_ref(sender)]


def test_thumbs_down_with_a_reason_is_stored_and_reported(browser, web_stack, artifacts, tmp_path):
    from axe_playwright_python.sync_playwright import Axe

    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", has_touch=True)
    page = context.new_page()
    try:
        open_chat(page, web_stack.web_url + "/")
        expect(page.get_by_role("group", name="这个回答有帮助吗？")).to_have_count(0)  # not under the welcome
        ask(page, QUESTION)
        expect(page.locator(".mz-bot", has_text="诊断证明")).to_have_count(1, timeout=REPLY_TIMEOUT)
        rating = page.get_by_role("group", name="这个回答有帮助吗？")
        expect(rating).to_have_count(1)  # under the answer's last message only
        up, down = rating.get_by_role("button", name="有帮助"), rating.get_by_role("button", name="没帮助")
        for button in (up, down):
            box = button.bounding_box()
            assert box["width"] >= 44 and box["height"] >= 44, box

        down.tap()
        expect(rating).to_have_count(0)  # one tap: the pair is gone
        expect(page.get_by_text("谢谢您的反馈")).to_be_visible()
        reasons = page.get_by_role("group", name=re.compile("哪里不好"))
        expect(reasons.get_by_role("button", name="看不懂")).to_be_visible()
        expect(reasons.get_by_role("button", name="信息不对")).to_be_visible()
        expect(reasons.get_by_role("button", name="没回答我的问题")).to_be_focused()
        boxes = page.locator(".mz-reasons button, .mz-reason-input").evaluate_all(
            "nodes => nodes.map(n => { const r = n.getBoundingClientRect(); return [n.textContent, r.width, r.height]; })")
        assert not [box for box in boxes if box[1] < 44 or box[2] < 44], boxes
        results = Axe().run(page)
        serious = [v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]
        assert not serious, [(v["id"], [n["target"] for n in v["nodes"]]) for v in serious]
        page.screenshot(path=str(artifacts / "widget-feedback-reason.png"))

        # a typed reason, with an ID suffix and a long number that must not be stored as typed
        line = reasons.get_by_label(re.compile("其他原因"))
        expect(line).to_have_attribute("maxlength", "100")
        line.fill("<b>表格</b>在哪 尾号123X 电话13812345678")
        reasons.get_by_role("button", name="提交").click()
        expect(page.get_by_text("收到，我们会改进。")).to_be_visible()
        expect(page.locator(".mz-reasons")).to_have_count(0)
        expect(page.get_by_label("输入您的问题")).to_be_focused()

        sender = stored_sender(page)
        stored = wait_for_ratings(page, web_stack, sender, 2)
        assert [r["metadata"]["feedback"] for r in stored] == ["negative", "negative"], stored
        reason = stored[1]["metadata"]["feedback_reason"]
        assert "表格" in reason and "123X" not in reason and "13812345678" not in reason, reason
        assert all(r["input_channel"] == "web" and r["metadata"].get("client") for r in stored)
        assert not stored[0]["metadata"].get("feedback_reason")

        # the rating changed nothing in the dialogue: no bot turn after it, no fallback
        events = tracker_events(web_stack, sender)
        after = events[events.index(stored[0]):]
        assert not [e for e in after if e.get("event") in ("bot", "action", "slot")], after

        # the page remembers: after a reload the thank-you is there, no pair, no form
        page.reload()
        expect(page.get_by_text("收到，我们会改进。")).to_be_visible()
        expect(page.get_by_role("group", name="这个回答有帮助吗？")).to_have_count(0)

        # the next question is answered as usual and asks again
        ask(page, "高血压能办吗")
        expect(page.get_by_role("group", name="这个回答有帮助吗？")).to_have_count(1, timeout=REPLY_TIMEOUT)
        expect(page.locator(".mz-bot", has_text="「高血压」")).not_to_have_count(0)
        expect(page.locator(".mz-bot", has_text="您是想问")).to_have_count(0)
    finally:
        context.close()

    # the report of this stack lists the rated question as thumbs_down
    rows = report_rows(web_stack, tmp_path, sender)
    assert [(row["text"], row["outcome"], row["channel"]) for row in rows] == [
        (QUESTION, THUMBS_DOWN, "web")], rows
    assert rows[0]["next_text"] == "高血压能办吗"
    assert "表格" in rows[0]["reason"] and "13812345678" not in rows[0]["reason"]  # its reason, masked


def test_thumbs_up_only_on_the_latest_answer_and_not_on_walk_steps(browser, web_stack):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    try:
        open_chat(page, web_stack.web_url + "/")
        ask(page, "要带哪些材料")
        expect(page.get_by_role("group", name="这个回答有帮助吗？")).to_have_count(1, timeout=REPLY_TIMEOUT)

        # writing again: the earlier answer can no longer be rated; a walk step is not rated
        ask(page, "小程序上咋申请")
        expect(page.locator(".mz-bot").last).to_contain_text("第1步", timeout=REPLY_TIMEOUT)
        expect(page.get_by_role("group", name="这个回答有帮助吗？")).to_have_count(0)

        ask(page, "谁能申请")
        expect(page.get_by_role("group", name="这个回答有帮助吗？")).to_have_count(1, timeout=REPLY_TIMEOUT)
        page.get_by_role("button", name="有帮助").click()
        expect(page.get_by_role("button", name="有帮助")).to_have_count(0)
        expect(page.get_by_text("谢谢您的反馈")).to_be_visible()
        expect(page.locator(".mz-reasons")).to_have_count(0)  # a 👍 asks for nothing more
        sender = stored_sender(page)
        stored = wait_for_ratings(page, web_stack, sender, 1)
        assert [r["metadata"]["feedback"] for r in stored] == ["positive"]
    finally:
        context.close()


def test_the_feedback_endpoint_records_once_and_refuses_what_it_must(web_stack):
    sender = f"web-{uuid.uuid4()}"
    # nothing to rate yet, and nothing but a widget sender, a rating and a short reason
    assert post_feedback(web_stack, {"sender": sender, "rating": "negative"}) == (409, {"error": "nothing_to_rate"})
    assert post_feedback(web_stack, {"sender": "oWeChatOpenId", "rating": "negative"})[0] == 400
    assert post_feedback(web_stack, {"sender": sender, "rating": "meh"})[0] == 400
    assert post_feedback(web_stack, {"sender": sender, "rating": "negative", "reason": 5})[0] == 400

    replies = say_web(web_stack, sender, "要带哪些材料")
    marked = [reply for reply in replies if reply.get("feedback")]
    assert len(marked) == 1 and marked[0] is replies[-1] and marked[0]["feedback"]["thanks"] == "谢谢您的反馈"
    assert post_feedback(web_stack, {"sender": sender, "rating": "positive"}) == (200, {"status": "recorded"})
    assert post_feedback(web_stack, {"sender": sender, "rating": "negative"}) == (409, {"error": "already_rated"})
    assert post_feedback(web_stack, {"sender": sender, "rating": "negative", "reason": "看不懂"})[0] == 409

    # a question back (the ladder's first rung: "请换个说法" for gibberish) is no answer to rate
    replies = say_web(web_stack, sender, "qwerty asdf")
    assert not any(reply.get("feedback") for reply in replies), replies
    assert post_feedback(web_stack, {"sender": sender, "rating": "negative"}) == (409, {"error": "nothing_to_rate"})
    assert [r["metadata"]["feedback"] for r in ratings(tracker_events(web_stack, sender))] == ["positive"]

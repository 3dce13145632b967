"""The widget's part of status-change notifications (issue 19, docs/web.md "Status
changes"), through the running stack (Rasa + actions + progress stand-in + web) in a real
browser (Chromium via Playwright): a visitor looks up an application in the widget; the
agency pushes a status change to the progress service, which signs an event to the web
channel; the next page load in the same browser shows the change once (a later one does
not), another browser shows nothing; the browser keeps only an opaque token, the tracker
store never sees it; "取消通知" forgets it. Plus the routes' answers to garbage."""
import json
import random
import time
import urllib.error
import urllib.request

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from core.privacy import mask_application_no
from core.status_subscriptions import watches_table

pytestmark = pytest.mark.xdist_group("shared_stack")

REPLY_TIMEOUT = 30_000  # ms
LAUNCHER = "打开门诊慢特病在线咨询"
NAME, SUFFIX, DISEASE = "赵六顺", "2468", "糖尿病"
STORAGE = "(name) => Object.fromEntries(Object.keys(window[name]).map(k => [k, window[name].getItem(k)]))"


def post(url, body, headers=None):
    data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, method="POST", headers={
        "Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def push_status(stack, number, body):
    status, result = post(f"{stack.progress_url}/api/v1/applications/{number}/status", body,
                          {"X-API-Key": stack.env["PROGRESS_AGENCY_KEY"]})
    assert status == 200, result
    return result


def watch_rows(stack, number):
    engine = sa.create_engine(f"sqlite:///{stack.state_dir / 'status-subscriptions.db'}")
    try:
        with engine.connect() as db:
            return db.execute(sa.select(watches_table).where(
                watches_table.c.application_no == number)).fetchall()
    finally:
        engine.dispose()


def wait_for(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    return condition()


def ask(page, text):
    box = page.get_by_label("输入您的问题")
    box.fill(text)
    box.press("Enter")


def bot_said(page, text):
    expect(page.locator(".mz-bot", has_text=text)).not_to_have_count(0, timeout=REPLY_TIMEOUT)


def open_chat(page, url):
    page.goto(url)
    page.get_by_role("button", name=LAUNCHER).click()
    expect(page.get_by_role("dialog", name="门诊慢特病在线咨询")).to_be_visible()


def tokens_of(page):
    items = page.evaluate(STORAGE, "localStorage")
    return {key: value for key, value in items.items() if key.startswith("mzmtb-widget-watch:")}


@pytest.fixture
def application(web_stack):
    """A fresh application of the stand-in's, 已受理, so no other test sees its changes."""
    number = f"NC2026{random.randrange(10**6):06d}"
    push_status(web_stack, number, {
        "status": "accepted", "id_last4": SUFFIX, "applicant_name": NAME, "disease": DISEASE,
        "channel": "四川医保APP", "submitted_at": "2026-03-01 09:00",
        "status_updated_at": "2026-03-02 10:30"})
    return number


def test_a_returning_visitor_sees_a_change_once_and_nobody_else_does(browser, web_stack, application):
    url = web_stack.web_url + "/"
    masked = mask_application_no(application)
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    stranger = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    try:
        page = context.new_page()
        open_chat(page, url)
        ask(page, "查一下我的申请进度")
        bot_said(page, "申请编号")
        ask(page, application)
        bot_said(page, "最后4位")
        ask(page, SUFFIX)
        bot_said(page, "已受理")
        bot_said(page, "下次在这台设备上打开")
        # the browser keeps one opaque token, nothing else of the lookup
        kept = wait_for(lambda: tokens_of(page))
        assert len(kept) == 1, kept
        tokens = json.loads(next(iter(kept.values())))
        assert len(tokens) == 1 and 30 <= len(tokens[0]) <= 64
        local = json.dumps(page.evaluate(STORAGE, "localStorage"), ensure_ascii=False)
        for secret in (application, application[-4:], NAME, NAME[0], DISEASE, "已受理", SUFFIX):
            assert secret not in local, secret
        session = json.dumps(page.evaluate(STORAGE, "sessionStorage"), ensure_ascii=False)
        assert tokens[0] not in session  # not in the transcript either
        sender = json.loads(next(v for k, v in page.evaluate(STORAGE, "sessionStorage").items()
                                 if k.startswith("mzmtb-widget:")))["sender"]
        # the server keeps the token's hash only, with the status the visitor saw
        rows = watch_rows(web_stack, application)
        assert [(row.seen_status, row.status) for row in rows] == [("accepted", "accepted")]
        assert tokens[0] not in str(rows)
        # the tracker store: the marker, never the token
        tracker_url = (f"{web_stack.rasa_url}/conversations/{sender}/tracker"
                       f"?token={web_stack.env['RASA_AUTH_TOKEN']}")
        with urllib.request.urlopen(tracker_url, timeout=10) as response:
            tracker = response.read().decode("utf-8")
        assert tokens[0] not in tracker
        for secret in (application, NAME, "已受理"):  # the lookup is redacted once answered
            assert secret not in tracker, secret
        page.close()

        # the agency pushes a change; the progress service signs an event to the web channel
        push_status(web_stack, application, {"status": "expert_review",
                                             "status_updated_at": "2026-03-05 15:00"})
        assert wait_for(lambda: [row.status for row in watch_rows(web_stack, application)]
                        == ["expert_review"]), watch_rows(web_stack, application)

        # another browser: nothing
        other = stranger.new_page()
        open_chat(other, url)
        bot_said(other, "您好")
        expect(other.locator(".mz-bot", has_text="有新进展")).to_have_count(0)
        assert not tokens_of(other)

        # the next visit in the same browser: the change, once, at the top
        again = context.new_page()
        again.goto(url)
        line = again.locator(".mz-bot", has_text="有新进展")
        expect(line).to_have_count(1, timeout=REPLY_TIMEOUT)  # there before the panel opens
        again.get_by_role("button", name=LAUNCHER).click()
        expect(line).to_be_visible()
        text = line.inner_text()
        assert masked in text and "专家审核中" in text and "查进度" in text, text
        assert application not in text and NAME[0] not in text and DISEASE not in text
        first_bot = again.locator(".mz-bot").first.inner_text()
        assert "有新进展" in first_bot, first_bot
        bot_said(again, "您好")  # the welcome follows
        again.close()

        # and not again
        third = context.new_page()
        open_chat(third, url)
        bot_said(third, "您好")
        expect(third.locator(".mz-bot", has_text="有新进展")).to_have_count(0)
        assert json.loads(next(iter(tokens_of(third).values()))) == tokens

        # "取消通知": the widget forgets the token, the server deletes the watch
        ask(third, "取消通知")
        bot_said(third, "不再提示")
        assert wait_for(lambda: not tokens_of(third)), tokens_of(third)
        assert wait_for(lambda: not watch_rows(web_stack, application))
        third.close()
    finally:
        context.close()
        stranger.close()


@pytest.mark.parametrize("body", [
    b"", b"not json", b"[]", b"null", b'{"tokens": "x"}', b'{"tokens": [1, 2]}',
    json.dumps({"tokens": ["A" * 32] * 4}).encode(), json.dumps({"tokens": ["A" * 200]}).encode(),
    json.dumps({"tokens": ["<script>" * 4]}).encode(), json.dumps({"tokens": ["A" * 32], "cancel": 1}).encode(),
    b'{"tokens": [' + b"[" * 5000 + b"]" * 5000 + b"]}", json.dumps({"tokens": ["A" * 32], "x": "y" * 5000}).encode(),
    "{\"tokens\": [\"\udcff\"]}".encode("utf-8", "surrogatepass"),
])
def test_the_status_changes_route_answers_garbage_with_400(web_stack, body):
    status, answer = post(f"{web_stack.rasa_url}/webhooks/web/status-changes", body)
    assert status == 400, (status, answer)


def test_unknown_tokens_are_to_be_forgotten(web_stack):
    tokens = ["A" * 32, "b-_" * 11]
    assert post(f"{web_stack.rasa_url}/webhooks/web/status-changes", {"tokens": tokens}) == (
        200, {"messages": [], "forget": tokens})
    assert post(f"{web_stack.rasa_url}/webhooks/web/status-changes", {"tokens": []}) == (
        200, {"messages": [], "forget": []})


@pytest.mark.parametrize("headers", [
    {}, {"X-Progress-Timestamp": "1", "X-Progress-Signature": "0" * 64},
    {"X-Progress-Timestamp": "abc", "X-Progress-Signature": "zz"},
])
def test_an_unsigned_status_event_is_refused(web_stack, headers):
    body = {"application_no": "NC2025000123", "status": "approved",
            "status_updated_at": "2026-03-05 15:00", "event_id": "x"}
    status, _answer = post(f"{web_stack.rasa_url}/webhooks/web/status-events", body, headers)
    assert status == 403

"""Where the widget keeps the conversation (issue 16): the transcript, which holds a
lookup's masked name, disease and status, lives in sessionStorage and ends with the tab;
only the 大字 switch is kept in localStorage, and a transcript an older version left in
localStorage is deleted on load. In a real browser (Chromium via Playwright) on the stack."""
import json
import re

import pytest
from playwright.sync_api import expect

# the shared stack, so xdist keeps these with the other tests that use it
pytestmark = pytest.mark.xdist_group("shared_stack")

REPLY_TIMEOUT = 30_000  # ms
LAUNCHER = "打开门诊慢特病在线咨询"
SERVER = "() => document.querySelector('script[data-server]').getAttribute('data-server').replace(/\\/+$/, '')"
STORAGE = "(name) => Object.fromEntries(Object.keys(window[name]).map(k => [k, window[name].getItem(k)]))"


def storage(page, name: str) -> dict:
    return page.evaluate(STORAGE, name)


def widget_items(page, name: str) -> dict:
    return {key: value for key, value in storage(page, name).items() if key.startswith("mzmtb-widget")}


def ask(page, text):
    box = page.get_by_label("输入您的问题")
    box.fill(text)
    box.press("Enter")


def bot_said(page, text: str):
    expect(page.locator(".mz-bot", has_text=text)).not_to_have_count(0, timeout=REPLY_TIMEOUT)


def open_chat(page, url):
    page.goto(url)
    page.get_by_role("button", name=LAUNCHER).click()
    expect(page.get_by_role("dialog", name="门诊慢特病在线咨询")).to_be_visible()


def test_the_transcript_of_a_lookup_stays_in_the_tab_and_leaves_no_trace_in_local_storage(browser, web_stack):
    url = web_stack.web_url + "/"
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    try:
        # an older widget left a whole conversation in localStorage, with 大字 on
        page.goto(url)
        key = "mzmtb-widget:" + page.evaluate(SERVER)
        page.evaluate("([key, value]) => localStorage.setItem(key, value)", [key, json.dumps({
            "v": 1, "sender": "web-" + "0" * 32, "large": True, "open": True, "lastActive": 4102444800000,
            "noticeShown": True, "messages": [{"from": "user", "text": "旧的对话：高血压 张*丰"}]})])
        page.reload()
        # purged on load; only the font-size preference was taken over
        assert key not in storage(page, "localStorage")
        expect(page.get_by_role("button", name=LAUNCHER)).to_be_visible()
        expect(page.locator(".mz-user")).to_have_count(0)
        page.get_by_role("button", name=LAUNCHER).click()
        expect(page.get_by_role("button", name="大字")).to_have_attribute("aria-pressed", "true")
        assert "旧的对话" not in page.locator(".mz-log").inner_text()

        # a progress lookup
        ask(page, "查一下我的申请进度")
        bot_said(page, "申请编号")
        ask(page, web_stack.application_no)
        bot_said(page, "最后4位")
        ask(page, "123X")
        bot_said(page, "专家审核中")
        answer = page.locator(".mz-bot", has_text="专家审核中").last.inner_text()
        assert "高血压" in answer and web_stack.applicant_name not in answer

        # sessionStorage holds the transcript, localStorage nothing of it
        session = widget_items(page, "sessionStorage")
        assert list(session) == [key], session
        kept = json.loads(session[key])
        assert "专家审核中" in session[key] and "高血压" in session[key]
        assert re.match(r"^web-[0-9a-f-]{32,40}$", kept["sender"]) and "large" not in kept
        local = storage(page, "localStorage")
        assert not [k for k in local if k.startswith("mzmtb-widget:")], local
        for value in local.values():
            for secret in ("专家审核中", "高血压", "张", web_stack.application_no[-4:], kept["sender"]):
                assert secret not in value, (secret, value)
        # besides the 大字 preference only the opaque watch token of the lookup (the next visit
        # shows a status change, tests/web/test_widget_status_changes_stack.py)
        server = key.split(":", 1)[1]
        local = widget_items(page, "localStorage")
        assert set(local) == {"mzmtb-widget-prefs:" + server, "mzmtb-widget-watch:" + server}, local
        assert local["mzmtb-widget-prefs:" + server] == json.dumps({"large": True}, separators=(",", ":"))
        tokens = json.loads(local["mzmtb-widget-watch:" + server])
        assert len(tokens) == 1 and all(re.fullmatch(r"[A-Za-z0-9_-]{16,64}", t) for t in tokens), tokens

        # a reload in the same tab keeps the conversation
        page.reload()
        expect(page.get_by_role("dialog", name="门诊慢特病在线咨询")).to_be_visible()
        bot_said(page, "专家审核中")

        # another tab of the same browser starts empty (the 大字 switch is still on)
        other = context.new_page()
        open_chat(other, url)
        expect(other.locator(".mz-user")).to_have_count(0)
        assert "专家审核中" not in other.locator(".mz-log").inner_text()
        expect(other.get_by_role("button", name="大字")).to_have_attribute("aria-pressed", "true")
        assert json.loads(widget_items(other, "sessionStorage")[key])["sender"] != kept["sender"]
        other.close()
    finally:
        context.close()

    # a new browser (context) starts empty
    fresh = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    try:
        page = fresh.new_page()
        open_chat(page, url)
        expect(page.locator(".mz-user")).to_have_count(0)
        assert "专家审核中" not in page.locator(".mz-log").inner_text()
        assert not [v for v in storage(page, "localStorage").values() if "专家审核中" in v]
        session = widget_items(page, "sessionStorage")
        assert "专家审核中" not in json.dumps(session, ensure_ascii=False)
        assert json.loads(session[key])["sender"] != kept["sender"]
        expect(page.get_by_role("button", name="大字")).to_have_attribute("aria-pressed", "false")
    finally:
        fresh.close()

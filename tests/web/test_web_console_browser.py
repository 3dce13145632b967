"""The hotline-agent console in a real browser on the full stack (Rasa, actions, progress, web)."""

import pytest

from playwright.sync_api import expect

# all tests here share one started stack, so xdist keeps them on one worker (Makefile test-python)
pytestmark = pytest.mark.xdist_group("shared_stack")

ANSWER_TIMEOUT = 15_000
AGENT_USER = "li_agent"  # created by the web_stack fixture (tests/web/conftest.py)


def sign_in(page, url, password):
    page.goto(url + "/agent")
    page.get_by_label("用户名").fill(AGENT_USER)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()


def search(page, text):
    box = page.get_by_label("问题或申请编号")
    box.fill(text)
    box.press("Enter")
    card = page.locator("#results .result").first
    expect(card.locator(".query")).to_have_text(text, timeout=ANSWER_TIMEOUT)
    return card


def test_agent_signs_in_answers_a_question_and_an_application_and_signs_out(browser, web_stack, artifacts):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    try:
        # wrong password refused
        sign_in(page, web_stack.web_url, password="not-the-password")
        expect(page.get_by_role("alert").filter(has_text="用户名或密码不正确")).to_be_visible()
        expect(page.get_by_label("问题或申请编号")).to_be_hidden()

        # right one signs in
        sign_in(page, web_stack.web_url, web_stack.agent_password)
        expect(page.locator("#who-name")).to_have_text(AGENT_USER)

        # a question: the bot's answer in agent form, with its knowledge source and flag
        card = search(page, "申请门诊慢特病要带哪些材料")
        expect(card.locator(".answer-text")).to_contain_text("诊断证明", timeout=ANSWER_TIMEOUT)
        expect(card.locator(".source")).to_contain_text("南充门诊慢特病手机申请指南")
        # materials rest on the guide alone, not an official source (FACTS.md 2026-12)
        expect(card.locator(".badge")).to_contain_text("未核实")
        expect(card.get_by_role("button", name="复制")).to_be_visible()

        # an application number, typed the way people do: full status and history, no ID check
        card = search(page, "nc-2025 000123")
        expect(card.locator("table.application")).to_contain_text(web_stack.application_no)
        expect(card.locator("table.application")).to_contain_text("专家审核中")
        expect(card.locator("table.application")).to_contain_text(web_stack.applicant_name)
        history = card.locator("table.history tbody tr")
        expect(history).to_have_count(3)
        expect(history.nth(0)).to_contain_text("已提交")
        expect(history.nth(1)).to_contain_text("已受理")
        expect(history.nth(2)).to_contain_text("已转专家组")
        page.screenshot(path=str(artifacts / "console-results.png"), full_page=True)

        # every lookup is audit-logged: by the progress service (agent mode) and by the console
        progress_rows = web_stack.progress_audit_rows()
        assert (AGENT_USER, "NC********23", "found") in progress_rows
        console_rows = web_stack.console_audit_rows()
        assert (AGENT_USER, "application", "NC********23", "found") in console_rows
        assert any(row[:2] == (AGENT_USER, "question") for row in console_rows)
        assert not any(web_stack.application_no in " ".join(map(str, row)) for row in progress_rows + console_rows)

        # an unknown number says so
        card = search(page, "NC2099000001")
        expect(card).to_contain_text("没有这个申请编号")

        # user text with markup is shown as text, never run
        attack = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">材料'
        card = search(page, attack)
        expect(card.locator(".query")).to_have_text(attack)
        assert page.evaluate("() => window.__pwned") is None
        assert page.locator("#results img, #results script").count() == 0

        # sign-out: back to the sign-in form, and the API now refuses this browser
        page.get_by_role("button", name="退出登录").click()
        expect(page.get_by_role("button", name="登录")).to_be_visible()
        expect(page.locator("#results .result")).to_have_count(0)
        assert page.request.get(web_stack.web_url + "/agent/api/me").status == 401
        page.reload()
        expect(page.get_by_role("button", name="登录")).to_be_visible()
    finally:
        context.close()


def test_console_api_refuses_a_browser_without_a_session(browser, web_stack):
    context = browser.new_context()
    audited = len(web_stack.console_audit_rows())
    try:
        for method, path in [("get", "me"), ("post", "search"), ("post", "logout")]:
            options = {"data": {"q": web_stack.application_no}} if method == "post" else {}
            reply = getattr(context.request, method)(f"{web_stack.web_url}/agent/api/{path}", **options)
            assert reply.status == 401, (path, reply.status)
        assert len(web_stack.console_audit_rows()) == audited  # nothing was looked up
    finally:
        context.close()

"""Conversation codes through the running stack (issue 19): a person asks for a human over
REST, reads the code out, and the agent sees the conversation in the console."""
import re

import pytest
import requests
from playwright.sync_api import expect

from core.conversation_codes import ALPHABET
from tests.web.conftest import add_agent

# all tests here share one started stack, so xdist keeps them on one worker
pytestmark = pytest.mark.xdist_group("shared_stack")

CODE_IN_REPLY = re.compile(f"报这个号：([{ALPHABET}]{{6}})")
HOSTILE_AGENT = "code_prober"


def signed_in(web_stack, username, password):
    http = requests.Session()
    http.get(f"{web_stack.web_url}/agent", timeout=10)
    reply = http.post(f"{web_stack.web_url}/agent/api/login",
                      json={"username": username, "password": password},
                      headers={"X-CSRF-Token": http.cookies.get("agent_csrf")}, timeout=30)
    assert reply.status_code == 200, reply.text
    return http, reply.json()["csrf"]


def code_from(messages):
    text = "\n".join(message.get("text") or "" for message in messages)
    match = CODE_IN_REPLY.search(text)
    assert match, text
    return match.group(1), text


def test_a_caller_reads_out_the_code_and_the_agent_sees_the_conversation(web_stack):
    handle = web_stack.handle
    sender = "codes-rest-0001"
    handle.say(sender, "高血压要带哪些材料", timeout=60)
    code, text = code_from(handle.say(sender, "找人工", timeout=60))
    assert "12393" in text
    # asking again in the same conversation: the same code
    assert code_from(handle.say(sender, "转人工", timeout=60))[0] == code

    http, csrf = signed_in(web_stack, web_stack.agent_user, web_stack.agent_password)
    reply = http.post(f"{web_stack.web_url}/agent/api/conversation", json={"code": code.lower()},
                      headers={"X-CSRF-Token": csrf}, timeout=30)
    assert reply.status_code == 200, reply.text
    data = reply.json()
    assert data["kind"] == "conversation"
    said = [turn["text"] for turn in data["turns"] if turn["who"] == "user"]
    assert said[:2] == ["高血压要带哪些材料", "找人工"]
    assert any("12393" in turn["text"] for turn in data["turns"] if turn["who"] == "bot")
    assert data["lookup"] is False and sender not in reply.text
    audit = web_stack.console_audit_rows()[-1]
    assert audit[1:2] == ("conversation",) and audit[3] == "shown" and code not in audit[2]


def test_hostile_codes_through_the_stack_are_refused_never_a_server_error(web_stack):
    result = add_agent(web_stack.agent_db, HOSTILE_AGENT, web_stack.agent_password)
    assert result.returncode == 0, result.stderr
    http, csrf = signed_in(web_stack, HOSTILE_AGENT, web_stack.agent_password)
    statuses = []
    for value in ["' OR '1'='1", "K" * 100000, "码" * 3000, "ZZZZZZ", "\u202eAAAAAA", "%2e%2e/", None, 12]:
        reply = http.post(f"{web_stack.web_url}/agent/api/conversation", json={"code": value},
                          headers={"X-CSRF-Token": csrf}, timeout=30)
        statuses.append(reply.status_code)
    assert set(statuses) <= {404, 429} and statuses[0] == 404, statuses
    outcomes = [row[3] for row in web_stack.console_audit_rows() if row[0] == HOSTILE_AGENT]
    assert len(outcomes) == 8 and set(outcomes) == {"wrong_code"}


def test_the_console_page_shows_the_turns_as_text(browser, web_stack, artifacts):
    handle = web_stack.handle
    sender = "codes-rest-0002"
    handle.say(sender, "<img src=x onerror=alert(1)>要带哪些材料", timeout=60)
    code, _ = code_from(handle.say(sender, "找人工", timeout=60))
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(web_stack.web_url + "/agent")
        page.get_by_label("用户名").fill(web_stack.agent_user)
        page.get_by_label("密码", exact=True).fill(web_stack.agent_password)
        page.get_by_role("button", name="登录", exact=True).click()
        box = page.get_by_label("对话码", exact=True)
        box.fill(code)
        box.press("Enter")
        card = page.locator("#results .conversation").first
        expect(card.locator(".turn.user").first).to_contain_text("<img src=x", timeout=15_000)
        expect(card.locator(".turn.user").nth(1)).to_contain_text("找人工")
        assert page.locator("#results img, #results script").count() == 0
        page.screenshot(path=str(artifacts / "console-conversation-code.png"), full_page=True)
    finally:
        context.close()

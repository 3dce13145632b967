"""The help widget in a real browser (Debian's Chromium via Playwright) on the full stack.

A visitor opens the demo page, opens the chat, asks about materials, clicks a button the
bot offers, reloads and still sees the conversation, and switches to large text. The
same on a phone-sized screen, and with the keyboard only. Screenshots: test-artifacts/web/.
Bot replies with markup and `javascript:` links go through the real widget on a page of
another site, from a loopback stand-in for Rasa's `web` channel (no stack needed).
"""
import http.server
import json
import pathlib
import re
import threading
import urllib.request

import pytest

from playwright.sync_api import expect

from assistant.content import get_knowledge, privacy_notice
from core.retention import retention_days

# all tests here share one started stack, so xdist keeps them on one worker (Makefile test-python)
pytestmark = pytest.mark.xdist_group("shared_stack")

REPLY_TIMEOUT = 30_000  # ms; the first answer loads the model's caches
LAUNCHER = "打开门诊慢特病在线咨询"


def open_chat(page, url):
    page.goto(url)
    page.get_by_role("button", name=LAUNCHER).click()
    dialog = page.get_by_role("dialog", name="门诊慢特病在线咨询")
    expect(dialog).to_be_visible()
    return dialog


def bot_messages(page):
    return page.locator(".mz-bot")


def ask(page, text):
    box = page.get_by_label("输入您的问题")
    box.fill(text)
    box.press("Enter")


def test_visitor_asks_about_materials_clicks_a_button_and_keeps_the_conversation(browser, web_stack, artifacts):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    try:
        open_chat(page, web_stack.web_url + "/")
        expect(bot_messages(page).first).to_contain_text("门诊慢特病")  # welcome

        ask(page, "申请要带哪些材料？")
        expect(page.locator(".mz-user .mz-text").last).to_have_text(re.compile("申请要带哪些材料"))
        answer = bot_messages(page).nth(1)
        expect(answer).to_contain_text("诊断证明", timeout=REPLY_TIMEOUT)
        expect(answer).to_contain_text("病历")

        # a button: the click shows its title and sends its payload to the bot
        before = bot_messages(page).count()
        live = page.locator(".mz-choice:not([disabled])").first  # a button of the latest answer
        title = live.inner_text()
        live.click()
        expect(page.locator(".mz-user .mz-text").last).to_have_text(title)
        expect(bot_messages(page)).to_have_count(before + 1, timeout=REPLY_TIMEOUT)
        answered = bot_messages(page).last.inner_text()
        assert "连不上" not in answered and "答不上来" not in answered, answered  # the widget's own fallbacks
        page.screenshot(path=str(artifacts / "widget-desktop.png"))

        # the widget talked to Rasa's `web` channel under a random, stored session id
        stored = json.loads(page.evaluate(STORED))
        assert re.match(r"^web-[0-9a-f-]{32,40}$", stored["sender"])
        tracker_url = (f"{web_stack.rasa_url}/conversations/{stored['sender']}/tracker"
                       f"?token={web_stack.env['RASA_AUTH_TOKEN']}")
        with urllib.request.urlopen(tracker_url, timeout=10) as response:
            tracker = json.loads(response.read().decode("utf-8"))
        channels = {e.get("input_channel") for e in tracker["events"] if e.get("event") == "user"}
        assert channels == {"web"}

        # reload: same conversation, panel still open
        page.reload()
        expect(page.get_by_role("dialog", name="门诊慢特病在线咨询")).to_be_visible()
        expect(page.locator(".mz-user .mz-text").first).to_have_text(re.compile("申请要带哪些材料"))
        expect(page.locator(".mz-user .mz-text").last).to_have_text(title)
        expect(bot_messages(page).nth(1)).to_contain_text("诊断证明")

        # large text for older readers, remembered across reloads
        toggle = page.get_by_role("button", name="大字")
        size = lambda: page.locator(".mz-msg .mz-text").first.evaluate(
            "node => parseFloat(getComputedStyle(node).fontSize)")
        normal = size()
        expect(toggle).to_have_attribute("aria-pressed", "false")
        toggle.click()
        expect(toggle).to_have_attribute("aria-pressed", "true")
        assert size() >= normal * 1.25
        page.screenshot(path=str(artifacts / "widget-desktop-large.png"))
        page.reload()
        expect(page.get_by_role("button", name="大字")).to_have_attribute("aria-pressed", "true")
        assert size() >= normal * 1.25
    finally:
        context.close()


def test_widget_fills_a_phone_screen_and_works_with_the_keyboard(browser, web_stack, artifacts):
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                  is_mobile=True, has_touch=True, locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(web_stack.web_url + "/")
        launcher = page.get_by_role("button", name=LAUNCHER)
        expect(launcher).to_have_attribute("aria-expanded", "false")
        page.screenshot(path=str(artifacts / "widget-phone-closed.png"))

        # keyboard only: focus the launcher, Enter opens, focus lands in the text box
        launcher.focus()
        page.keyboard.press("Enter")
        dialog = page.get_by_role("dialog", name="门诊慢特病在线咨询")
        expect(dialog).to_be_visible()
        expect(page.locator(".mz-launcher")).to_have_attribute("aria-expanded", "true")
        box = page.get_by_label("输入您的问题")
        expect(box).to_be_focused()
        panel = dialog.bounding_box()
        assert panel["width"] >= 389 and panel["height"] >= 800, panel

        page.keyboard.type("申请要带哪些材料")
        page.keyboard.press("Enter")
        expect(bot_messages(page).nth(1)).to_contain_text("诊断证明", timeout=REPLY_TIMEOUT)
        page.screenshot(path=str(artifacts / "widget-phone-open.png"))

        # screen readers: the transcript is a live log; the close button has a label
        expect(page.get_by_role("log", name="对话记录")).to_have_attribute("aria-live", "polite")
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()
        expect(launcher).to_be_focused()
    finally:
        context.close()


def test_the_visitors_own_markup_is_shown_as_text(browser, web_stack):
    """What the visitor types is echoed as text (bot replies: test_server_text_is_never_run_as_html)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        open_chat(page, web_stack.web_url + "/")
        ask(page, '<img src=x onerror="window.__pwned=1">你好')
        expect(page.locator(".mz-user .mz-text").last).to_contain_text('<img src=x onerror="window.__pwned=1">')
        expect(bot_messages(page)).to_have_count(2, timeout=REPLY_TIMEOUT)
        assert page.evaluate("() => window.__pwned") is None
        assert page.locator("#mzmtb-help-widget img").count() == 0
    finally:
        context.close()


def test_rasa_unreachable_shows_the_hotline(browser, web_stack):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.route("**/webhooks/web/webhook", lambda route: route.abort())
    try:
        open_chat(page, web_stack.web_url + "/")
        ask(page, "申请要带哪些材料")
        expect(bot_messages(page).last).to_contain_text("12393", timeout=REPLY_TIMEOUT)
        expect(bot_messages(page).last).to_contain_text("连不上")
    finally:
        context.close()


def test_bot_buttons_and_links_are_clickable_and_send_the_payload(browser, web_stack):
    """Rasa's reply format (text + buttons) from a deterministic stand-in on the same route."""
    sent = []

    def fake_rasa(route):
        body = json.loads(route.request.post_data)
        sent.append(body)
        reply = [{"recipient_id": body["sender"],
                  "text": "材料清单见 [办事指南](https://example.org/guide)，人工请拨 12393。",
                  "buttons": [{"title": "申请表在哪拿", "payload": "/ask_application_form"}]}]
        route.fulfill(status=200, content_type="application/json",
                      headers={"Access-Control-Allow-Origin": "*"}, body=json.dumps(reply))

    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.route("**/webhooks/web/webhook", fake_rasa)
    try:
        open_chat(page, web_stack.web_url + "/")
        ask(page, "材料")
        reply = bot_messages(page).last
        expect(reply.get_by_role("link", name="办事指南")).to_have_attribute("href", "https://example.org/guide")
        expect(reply.get_by_role("link", name="12393")).to_have_attribute("href", "tel:12393")
        reply.get_by_role("button", name="申请表在哪拿").click()
        expect(page.locator(".mz-user .mz-text").last).to_have_text("申请表在哪拿")
        expect(bot_messages(page)).to_have_count(3)
        assert [body["message"] for body in sent] == ["材料", "/ask_application_form"]
        assert sent[0]["sender"] == sent[1]["sender"]
    finally:
        context.close()


STORED = "() => sessionStorage.getItem(Object.keys(sessionStorage).find(k => k.startsWith('mzmtb-widget:')))"


def test_public_pc_privacy_masked_suffix_clear_button_and_idle_expiry(browser, web_stack):
    """A shared PC: the ID suffix is never stored, 清除记录 wipes it all, 30 idle minutes too."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    try:
        open_chat(page, web_stack.web_url + "/")
        ask(page, "申请要带哪些材料")
        answer = 1 + len(get_knowledge().answer_topic("materials").messages)  # welcome + answer
        expect(bot_messages(page)).to_have_count(answer, timeout=REPLY_TIMEOUT)
        ask(page, "5678")  # an ID suffix, as the progress question asks for it
        expect(page.locator(".mz-user .mz-text").last).to_have_text("****")
        expect(bot_messages(page)).to_have_count(answer + 1, timeout=REPLY_TIMEOUT)
        raw = page.evaluate(STORED)
        assert "5678" not in raw and "申请要带哪些材料" in raw
        first_sender = json.loads(raw)["sender"]

        # a reload keeps the conversation
        page.reload()
        expect(page.locator(".mz-user .mz-text").first).to_have_text("申请要带哪些材料")

        # 清除记录: transcript gone (screen and storage), new session id
        page.get_by_role("button", name="清除记录").click()
        expect(page.locator(".mz-user")).to_have_count(0)
        expect(page.get_by_role("status")).to_have_text("对话记录已清除")
        stored = json.loads(page.evaluate(STORED))
        assert "申请要带哪些材料" not in json.dumps(stored, ensure_ascii=False)
        assert stored["sender"] != first_sender and stored["sender"].startswith("web-")
        page.reload()
        expect(page.locator(".mz-user")).to_have_count(0)

        # 30 minutes without a message: the next visitor starts afresh
        ask(page, "谁能申请")
        expect(page.locator(".mz-user")).to_have_count(1)
        # the answer first: its arrival marks the session active again
        first_line = get_knowledge().answer_topic("eligibility").messages[0].split("\n")[0][:10]
        expect(page.locator(".mz-bot", has_text=first_line)).not_to_have_count(0, timeout=REPLY_TIMEOUT)
        second_sender = json.loads(page.evaluate(STORED))["sender"]
        page.evaluate("""() => {
            const key = Object.keys(sessionStorage).find(k => k.startsWith('mzmtb-widget:'));
            const state = JSON.parse(sessionStorage.getItem(key));
            state.lastActive = Date.now() - 31 * 60 * 1000;
            sessionStorage.setItem(key, JSON.stringify(state));
        }""")
        page.reload()
        page.get_by_role("button", name=LAUNCHER).click()
        expect(page.get_by_role("dialog", name="门诊慢特病在线咨询")).to_be_visible()
        expect(page.locator(".mz-user")).to_have_count(0)
        assert json.loads(page.evaluate(STORED))["sender"] != second_sender
    finally:
        context.close()


def test_the_privacy_notice_shows_on_first_open_and_not_again(browser, web_stack):
    """PIPL: what is stored, for how long (the configured CONVERSATION_RETENTION_DAYS), who can
    see it. Shown once per conversation, as its first entry, when the panel is first opened;
    kept with the conversation (sessionStorage), so closing and opening or a reload do not
    show it again; a new conversation (清除记录, a new tab) does."""
    expected = privacy_notice(retention_days(web_stack.env))
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    notices = page.locator(".mz-notice")
    try:
        page.goto(web_stack.web_url + "/")
        expect(page.get_by_role("button", name=LAUNCHER)).to_be_visible()
        expect(notices).to_have_count(0)  # nothing until the visitor opens the chat
        page.get_by_role("button", name=LAUNCHER).click()
        notice = page.get_by_role("note", name="隐私提示")
        expect(notice).to_be_visible()
        expect(notice).to_have_text(expected)
        expect(page.locator(".mz-log > *").first).to_have_class(re.compile(r"\bmz-notice\b"))
        expect(bot_messages(page)).to_have_count(1)  # then the welcome
        # inserted as text: one paragraph, no markup of its own
        assert notice.locator("*").evaluate_all("nodes => nodes.map(n => n.tagName)") == ["P"]

        page.keyboard.press("Escape")  # closed and opened again
        page.get_by_role("button", name=LAUNCHER).click()
        expect(notices).to_have_count(1)
        ask(page, "要带哪些材料")
        expect(bot_messages(page).nth(1)).to_contain_text("诊断证明", timeout=REPLY_TIMEOUT)
        expect(notices).to_have_count(1)
        page.reload()  # the panel stays open, the transcript is shown again: one notice
        expect(page.get_by_role("dialog", name="门诊慢特病在线咨询")).to_be_visible()
        expect(page.locator(".mz-user")).to_have_count(1)
        expect(notices).to_have_count(1)
        stored = json.loads(page.evaluate(STORED))
        assert stored["noticeShown"] is True
        assert [message["from"] for message in stored["messages"]].count("notice") == 1
        # the transcript is not in localStorage (tests/web/test_widget_storage_browser.py)
        assert page.evaluate("() => Object.keys(localStorage).filter(k => k.startsWith('mzmtb-widget:'))") == []

        other = context.new_page()  # a second tab is a conversation of its own: told again
        other.goto(web_stack.web_url + "/")
        other.get_by_role("button", name=LAUNCHER).click()
        expect(other.locator(".mz-user")).to_have_count(0)
        expect(other.locator(".mz-notice")).to_have_count(1)
        other.close()

        # 清除记录 starts a new conversation (on a public PC maybe another person): told again
        page.get_by_role("button", name="清除记录").click()
        expect(page.locator(".mz-user")).to_have_count(0)
        expect(notices).to_have_count(1)
        expect(notices.first).to_have_text(expected)
    finally:
        context.close()


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_the_demo_page_shows_the_widget_at_either_name_without_console_errors(browser, web_stack, host):
    """README sends newcomers to http://localhost:8080/; the page must not depend on which
    name was typed (its CSP once blocked a widget script loaded from the other name)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        url = web_stack.web_url.replace("127.0.0.1", host) + "/"
        dialog = open_chat(page, url)
        expect(dialog).to_be_visible()
        ask(page, "要带哪些材料")
        expect(bot_messages(page).nth(1)).to_contain_text("诊断证明", timeout=REPLY_TIMEOUT)
        assert errors == [], errors
    finally:
        context.close()


def test_only_the_latest_buttons_can_be_tapped(browser, web_stack):
    """An old "下一步" tapped again must not move the walk on: earlier sets are disabled."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    try:
        open_chat(page, web_stack.web_url + "/")
        ask(page, "小程序上咋申请")
        expect(bot_messages(page).last).to_contain_text("第1步", timeout=REPLY_TIMEOUT)
        page.get_by_role("button", name="下一步").last.click()
        expect(page.get_by_label("输入您的问题")).to_be_focused()  # the keyboard stays in the dialog
        expect(bot_messages(page).last).to_contain_text("第2步", timeout=REPLY_TIMEOUT)
        next_buttons = page.get_by_role("button", name="下一步")
        expect(next_buttons).to_have_count(2)
        expect(next_buttons.first).to_be_disabled()   # the step 1 set
        expect(next_buttons.last).to_be_enabled()     # the step 2 set
        welcome = page.get_by_role("button", name="要带哪些材料")
        expect(welcome).to_be_disabled()
        before = bot_messages(page).count()
        next_buttons.first.click(force=True)  # a tap on the old one does nothing
        page.wait_for_timeout(500)
        expect(bot_messages(page)).to_have_count(before)
        # after a reload the same holds
        page.reload()
        expect(page.get_by_role("button", name="下一步").first).to_be_disabled()
        expect(page.get_by_role("button", name="下一步").last).to_be_enabled()
    finally:
        context.close()


SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}


@pytest.mark.parametrize("size", sorted(SIZES))
def test_text_size_tap_targets_focus_trap_and_accessibility_audit(browser, web_stack, artifacts, size):
    from axe_playwright_python.sync_playwright import Axe

    context = browser.new_context(viewport=SIZES[size], locale="zh-CN", has_touch=size == "phone")
    page = context.new_page()
    try:
        dialog = open_chat(page, web_stack.web_url + "/")
        expect(dialog).to_have_attribute("aria-modal", "true")
        ask(page, "要带哪些材料")
        expect(bot_messages(page).nth(1)).to_contain_text("诊断证明", timeout=REPLY_TIMEOUT)
        text_size = page.locator(".mz-msg .mz-text").first.evaluate(
            "node => parseFloat(getComputedStyle(node).fontSize)")
        assert text_size >= 18, text_size

        for mode in ("normal", "large"):
            if mode == "large":
                page.get_by_role("button", name="大字").click()
                larger = page.locator(".mz-msg .mz-text").first.evaluate(
                    "node => parseFloat(getComputedStyle(node).fontSize)")
                assert larger > text_size
            # every enabled control in the open panel is at least 44 px tall (and the close button wide)
            boxes = page.locator(".mz-panel button:not([disabled])").evaluate_all(
                "nodes => nodes.map(n => { const r = n.getBoundingClientRect();"
                " return [n.textContent, r.width, r.height]; })")
            small = [box for box in boxes if box[2] < 44 or box[1] < 44]
            assert not small, small
            # the header never takes the reading space (a title squeezed to one character a line)
            header = page.locator(".mz-header").bounding_box()
            assert header["height"] <= 0.25 * SIZES[size]["height"], header
            results = Axe().run(page)
            serious = [v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]
            assert not serious, [(v["id"], [n["target"] for n in v["nodes"]]) for v in serious]
            page.screenshot(path=str(artifacts / f"widget-{size}-{mode}.png"))

        # Tab never leaves the open dialog; closing returns focus to the launcher
        page.get_by_label("输入您的问题").focus()
        for _ in range(25):
            page.keyboard.press("Tab")
            inside = page.evaluate(
                "() => { const r = document.getElementById('mzmtb-help-widget').shadowRoot;"
                " return !!r.activeElement && r.getElementById('mz-panel').contains(r.activeElement); }")
            assert inside
        page.keyboard.press("Shift+Tab")
        page.keyboard.press("Escape")
        launcher = page.get_by_role("button", name=LAUNCHER)
        expect(launcher).to_be_focused()
    finally:
        context.close()


# --- bot replies with markup, through the real widget -------------------------------------
# The widget is embedded on other sites, which may send no Content-Security-Policy at all,
# so the widget itself must never turn server text into HTML or a script URL. The host
# page below has no CSP on purpose: with the demo page's CSP, an inline `onerror` or a
# `javascript:` link would be blocked by the browser and a widget regression would pass.

WIDGET_DIR = pathlib.Path(__file__).resolve().parents[2] / "web" / "static"
# channels/web.py SENDER_PATTERN, the widget's half of it (web-<uuid>)
WIDGET_SENDER = re.compile(r"^web-[0-9a-f-]{8,64}$")
HOSTILE_REPLY = [
    {"text": '<img src=x onerror="window.__pwned=1">审核结果<script>window.__pwned=2</script>'
             '<b>以短信为准</b>'},
    {"text": "[点这里办理](javascript:window.__pwned=3) 或 javascript:window.__pwned=4 "
             '或 <a href="javascript:window.__pwned=5">官方入口</a>',
     "image": "javascript:window.__pwned=6"},
    {"text": "请选择：",
     "buttons": [
         {"title": '<img src=x onerror="window.__pwned=7">下一步', "payload": "javascript:window.__pwned=8"},
         {"title": "打开网页", "type": "web_url", "url": "javascript:window.__pwned=9",
          "payload": "javascript:window.__pwned=9"},
     ]},
]


class _RasaWebChannelStandIn(http.server.BaseHTTPRequestHandler):
    """Rasa's `web` input channel as the widget sees it (channels/web.py): POST
    /webhooks/web/webhook with {"sender", "message"}, 400 on a bad body, a JSON list of
    {"recipient_id", "text", "buttons", "image"} back, CORS for any origin (`rasa run
    --cors "*"`). The first message gets HOSTILE_REPLY, every later one a plain text.
    GET serves a host page without CSP and the real widget files from web/static."""

    received: list = []
    rasa_url = ""

    def log_message(self, *args):  # quiet
        pass

    def _send(self, status, body: bytes, content_type: str, extra=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Access-Control-Allow-Origin", "*")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_OPTIONS(self):  # CORS preflight for the JSON POST
        self._send(204, b"", "text/plain", {"Access-Control-Allow-Methods": "POST, GET, OPTIONS",
                                            "Access-Control-Allow-Headers": "Content-Type"})

    def do_GET(self):
        if self.path == "/":
            page = ('<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>医保</title>'
                    '</head><body><h1>另一个网站</h1>'
                    f'<script src="/widget/widget.js" data-server="{self.rasa_url}" defer></script>'
                    '</body></html>')
            self._send(200, page.encode("utf-8"), "text/html; charset=utf-8")
        elif self.path in ("/widget/widget.js", "/widget/widget.css"):
            name = self.path.rsplit("/", 1)[1]
            kind = "application/javascript" if name.endswith(".js") else "text/css"
            self._send(200, (WIDGET_DIR / name).read_bytes(), kind + "; charset=utf-8")
        else:
            self._send(404, b"{}", "application/json")

    def do_POST(self):
        if self.path != "/webhooks/web/webhook":
            self._send(404, b"{}", "application/json")
            return
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        except ValueError:
            body = None
        if not (isinstance(body, dict) and isinstance(body.get("sender"), str)
                and WIDGET_SENDER.match(body["sender"]) and isinstance(body.get("message"), str)
                and body["message"].strip()):
            self._send(400, b'{"error": "bad request"}', "application/json")
            return
        type(self).received.append(body)
        replies = HOSTILE_REPLY if len(type(self).received) == 1 else [{"text": "收到。"}]
        payload = [{"recipient_id": body["sender"], **reply} for reply in replies]
        self._send(200, json.dumps(payload, ensure_ascii=False).encode("utf-8"), "application/json")


@pytest.fixture()
def widget_elsewhere():
    """(host page URL, messages the stand-in received): the page on one loopback origin,
    the Rasa stand-in on another, as a bureau page embedding the widget would be."""
    handler = type("StandIn", (_RasaWebChannelStandIn,), {"received": []})
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) for _ in range(2)]
    page_server, rasa_server = servers
    handler.rasa_url = f"http://127.0.0.1:{rasa_server.server_address[1]}"
    threads = [threading.Thread(target=server.serve_forever, daemon=True) for server in servers]
    for thread in threads:
        thread.start()
    try:
        yield f"http://127.0.0.1:{page_server.server_address[1]}/", handler.received
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def test_server_text_is_never_run_as_html(browser, widget_elsewhere):
    """A bot reply with <img onerror>, <script>, <b>, `javascript:` links and a button whose
    payload (and url) is `javascript:`: the real widget shows it all as text, runs nothing,
    makes no javascript: link, and a tapped button only sends its payload as a message."""
    url, received = widget_elsewhere
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    widget = "#mzmtb-help-widget"  # Playwright's CSS pierces the widget's open shadow root

    def assert_inert():
        assert page.evaluate("() => window.__pwned") is None
        assert dialogs == []
        assert page.url == url
        for tag in ("img", "script", "b", "iframe", "object"):
            assert page.locator(f"{widget} {tag}").count() == 0, tag
        hrefs = page.locator(f"{widget} a").evaluate_all("nodes => nodes.map(n => n.getAttribute('href'))")
        assert all(not href.strip().lower().startswith("javascript:") for href in hrefs), hrefs
        schemes = page.locator(f"{widget} a").evaluate_all("nodes => nodes.map(n => n.protocol)")
        assert set(schemes) <= {"http:", "https:", "tel:"}, schemes

    try:
        open_chat(page, url)
        ask(page, "结果怎么通知")
        expect(bot_messages(page)).to_have_count(1 + len(HOSTILE_REPLY), timeout=10_000)
        page.wait_for_timeout(300)  # an onerror of a broken image fires asynchronously
        assert_inert()
        first, second, third = (bot_messages(page).nth(i) for i in (1, 2, 3))
        expect(first.locator(".mz-text")).to_have_text(
            '<img src=x onerror="window.__pwned=1">审核结果<script>window.__pwned=2</script><b>以短信为准</b>')
        expect(second.locator(".mz-text")).to_contain_text("[点这里办理](javascript:window.__pwned=3)")
        expect(second.locator(".mz-text")).to_contain_text('<a href="javascript:window.__pwned=5">官方入口</a>')
        choice = third.get_by_role("button", name='<img src=x onerror="window.__pwned=7">下一步')
        expect(choice).to_be_visible()
        # the links in the text are not links at all, and clicking the words does nothing
        expect(second.get_by_role("link")).to_have_count(0)
        second.get_by_text("官方入口", exact=False).click()
        assert_inert()

        # a tapped button shows its title as text and sends its payload as a message; no URL is opened
        choice.click()
        expect(page.locator(".mz-user .mz-text").last).to_have_text('<img src=x onerror="window.__pwned=7">下一步')
        expect(bot_messages(page).last).to_have_text(re.compile("收到"), timeout=10_000)
        assert [body["message"] for body in received] == ["结果怎么通知", "javascript:window.__pwned=8"]
        assert_inert()

        # the stored transcript is rendered again after a reload: still text
        page.reload()
        expect(page.get_by_role("dialog", name="门诊慢特病在线咨询")).to_be_visible()
        expect(bot_messages(page).nth(1).locator(".mz-text")).to_contain_text("<script>window.__pwned=2</script>")
        page.wait_for_timeout(300)
        assert_inert()
    finally:
        context.close()

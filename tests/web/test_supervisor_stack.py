"""The supervisor page through the running stack (issue 19): a visitor's clarification and a
👎 (the widget's web channel, as a person would) appear grouped on the page with their week
count, in a real Chromium, and in the exported training candidates; an agent who is no
supervisor gets 403; every view and export is in the console's audit."""
import datetime as dt
import json
import os
import re
import subprocess
import sys
import urllib.request
import uuid

import pytest
import requests
import yaml
from playwright.sync_api import expect

from core.formats import CHINA_TZ
from core.unanswered import CLARIFICATION, THUMBS_DOWN
from tests.conftest import ROOT

# the shared stack, so xdist keeps these with the other tests that use it
pytestmark = pytest.mark.xdist_group("shared_stack")

SUPERVISOR = "wang_supervisor"
PASSWORD = "supervisor-pass-42"
REPLY_TIMEOUT = 30_000  # ms


def this_week() -> str:
    year, week, _ = dt.datetime.now(CHINA_TZ).isocalendar()
    return f"{year}-W{week:02d}"


def add_supervisor(web_stack):
    env = dict(os.environ, PASSWORD=PASSWORD, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-m", "web.agents", "--db", str(web_stack.agent_db), "add", "--role", "supervisor",
         SUPERVISOR], cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def signed_in(web_stack, username, password):
    http = requests.Session()
    http.get(f"{web_stack.web_url}/agent", timeout=10)
    reply = http.post(f"{web_stack.web_url}/agent/api/login", json={"username": username, "password": password},
                      headers={"X-CSRF-Token": http.cookies.get("agent_csrf")}, timeout=30)
    assert reply.status_code == 200, reply.text
    return http, reply.json()["csrf"]


def say_web(web_stack, sender, text):
    request = urllib.request.Request(f"{web_stack.rasa_url}/webhooks/web/webhook",
                                     data=json.dumps({"sender": sender, "message": text}).encode("utf-8"),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read().decode("utf-8"))


def rate_down(web_stack, sender, reason):
    request = urllib.request.Request(f"{web_stack.rasa_url}/webhooks/web/feedback",
                                     data=json.dumps({"sender": sender, "rating": "negative",
                                                      "reason": reason}).encode("utf-8"),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


def question_counts(web_stack, texts):
    """How often each text was asked in the default period, as the page says (0: not there)."""
    http, csrf = signed_in(web_stack, SUPERVISOR, PASSWORD)
    data = http.post(f"{web_stack.web_url}/agent/api/supervisor/questions", json={},
                     headers={"X-CSRF-Token": csrf}, timeout=60).json()
    found = {q["text"]: q["count"] for cluster in data["clusters"] for q in cluster["questions"]}
    return {text: found.get(text, 0) for text in texts}


@pytest.fixture(scope="module")
def visitor(web_stack):
    """A widget visitor: an unclear question (the bot asks back), then a knowledge answer
    rated 👎. Other tests of the shared stack ask the same, so the page's counts before
    are the baseline: each must be one more afterwards."""
    add_supervisor(web_stack)
    unclear, rated = "qwerty asdf", "要带哪些材料"  # gibberish: unclear to any model we train
    before = question_counts(web_stack, (unclear, rated))
    sender = f"web-{uuid.uuid4()}"
    replies = say_web(web_stack, sender, unclear)
    assert "请换个说法" in "\n".join(r.get("text") or "" for r in replies), replies
    replies = say_web(web_stack, sender, rated)
    assert any(reply.get("feedback") for reply in replies), replies
    assert rate_down(web_stack, sender, "看不懂 尾号123X") == 200
    after = question_counts(web_stack, (unclear, rated))
    assert after == {unclear: before[unclear] + 1, rated: before[rated] + 1}, (before, after)
    return {"sender": sender, "unclear": unclear, "rated": rated, "counts": after}


def cluster_with(data, text):
    found = [cluster for cluster in data["clusters"] if any(q["text"] == text for q in cluster["questions"])]
    assert len(found) == 1, (text, data["clusters"])
    return found[0]


def test_the_page_groups_the_visitors_questions_and_exports_them(browser, web_stack, visitor, artifacts, tmp_path):
    from axe_playwright_python.sync_playwright import Axe

    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN", accept_downloads=True)
    page = context.new_page()
    try:
        page.goto(web_stack.web_url + "/agent")
        page.get_by_label("用户名").fill(SUPERVISOR)
        page.get_by_label("密码", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="登录", exact=True).click()
        expect(page.get_by_label("问题或申请编号")).to_be_visible()
        # a supervisor finds the page from the console (an agent does not see the link)
        page.get_by_role("link", name="没答上的问题（主管）").click()
        expect(page.locator("#summary")).to_contain_text("次没答上", timeout=REPLY_TIMEOUT)

        unclear = page.locator(".cluster", has=page.get_by_label(visitor["unclear"] + "（", exact=False))
        expect(unclear).to_have_count(1)
        # the week table: this ISO week's column counts the question
        weeks = unclear.locator("table.weeks")
        header = weeks.locator("th").all_text_contents()
        assert this_week() in header, header
        count = int(weeks.locator("td").nth(header.index(this_week())).text_content())
        assert count >= visitor["counts"][visitor["unclear"]]
        expect(unclear.get_by_label(visitor["unclear"] + "（", exact=False)).to_have_accessible_name(
            re.compile(f"^{visitor['unclear']}（{visitor['counts'][visitor['unclear']]} 次"))
        expect(unclear.locator(".reasons")).to_contain_text("反问了")
        rated = page.locator(".cluster", has=page.get_by_label(visitor["rated"] + "（", exact=False))
        expect(rated.first.locator(".reasons")).to_contain_text("点了“没帮助”")

        results = Axe().run(page)
        serious = [v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]
        assert not serious, [(v["id"], [n["target"] for n in v["nodes"]]) for v in serious]
        page.screenshot(path=str(artifacts / "supervisor-page.png"), full_page=True)

        # select the unclear question on its own, and the whole cluster of the rated one
        unclear.get_by_label(visitor["unclear"] + "（", exact=False).check()
        rated.first.locator("input.pick-cluster").check()
        expect(page.locator("#selected-count")).to_contain_text("已选 1 组、1 个单独问题")
        with page.expect_download() as download:
            page.get_by_role("button", name="导出所选为训练候选（YAML）").click()
        path = tmp_path / "candidates.yml"
        download.value.save_as(str(path))
        assert download.value.suggested_filename.startswith("nlu-candidates_")
    finally:
        context.close()

    text = path.read_text(encoding="utf-8")
    document = yaml.safe_load(text)
    examples = {item["intent"]: item for item in document["nlu"]}
    texts = "".join(item["examples"] for item in document["nlu"])
    assert f"- {visitor['unclear']}\n" in texts and f"- {visitor['rated']}\n" in texts
    assert all(name.startswith("TO_REVIEW_") for name in examples)
    assert all(this_week() in item["metadata"]["weeks"] for item in document["nlu"])
    outcomes = set().union(*(item["metadata"]["outcomes"] for item in document["nlu"]))
    assert {CLARIFICATION, THUMBS_DOWN} <= outcomes
    assert visitor["sender"] not in text and "123X" not in text

    audit = [row for row in web_stack.console_audit_rows() if row[0] == SUPERVISOR]
    assert [row[1:2] + row[3:] for row in audit][-2:] == [("supervisor_view", "shown"), ("supervisor_export", "exported")]
    assert audit[-1][2].endswith("questions") and visitor["sender"] not in str(audit)


def test_the_export_is_the_reports_candidates_file(web_stack, visitor, tmp_path):
    """Every cluster exported from the page == `make report-unanswered CANDIDATES=1` on the
    same store (the header aside): one format, one grouping."""
    http, csrf = signed_in(web_stack, SUPERVISOR, PASSWORD)
    today = dt.datetime.now(CHINA_TZ).date()
    since = (today - dt.timedelta(days=1)).isoformat()
    data = http.post(f"{web_stack.web_url}/agent/api/supervisor/questions", json={"since": since},
                     headers={"X-CSRF-Token": csrf}, timeout=60).json()
    assert data["until"] == today.isoformat() and data["weeks"][-1] == this_week()
    cluster = cluster_with(data, visitor["unclear"])
    assert cluster["weeks"].get(this_week(), 0) >= 1 and cluster["outcomes"].get(CLARIFICATION, 0) >= 1
    exported = http.post(f"{web_stack.web_url}/agent/api/supervisor/export",
                         json={"since": since, "clusters": [c["id"] for c in data["clusters"]]},
                         headers={"X-CSRF-Token": csrf}, timeout=60)
    assert exported.status_code == 200 and "yaml" in exported.headers["Content-Type"]
    assert exported.headers["Content-Disposition"] == f'attachment; filename="nlu-candidates_{since}_{today}.yml"'

    out = tmp_path / "candidates.yml"
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-m", "tools.report_unanswered", "--endpoints",
         str(web_stack.handle.settings.endpoints), "--since", since, "--out", str(tmp_path / "r.csv"),
         "--candidates", str(out)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr

    def body(text):
        return "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    assert body(exported.text) == body(out.read_text(encoding="utf-8"))


def test_an_agent_gets_403_and_the_refusal_is_audited(web_stack, visitor):
    http, csrf = signed_in(web_stack, web_stack.agent_user, web_stack.agent_password)
    assert http.get(f"{web_stack.web_url}/agent/api/me", timeout=30).json()["role"] == "agent"
    assert http.get(f"{web_stack.web_url}/agent/supervisor", timeout=30).status_code == 403
    for path, body in (("questions", {}), ("export", {"keys": ["qwertyasdf"]})):
        reply = http.post(f"{web_stack.web_url}/agent/api/supervisor/{path}", json=body,
                          headers={"X-CSRF-Token": csrf}, timeout=30)
        assert reply.status_code == 403 and "主管" in reply.json()["error"]
        assert "qwerty" not in reply.text
    refused = [row for row in web_stack.console_audit_rows() if row[0] == web_stack.agent_user and row[1] == "supervisor"]
    assert [row[2:] for row in refused][-3:] == [("page", "forbidden"), ("questions", "forbidden"), ("export", "forbidden")]
    # without a session: the page (which asks to sign in), 401 from its API
    stranger = requests.Session()
    assert stranger.get(f"{web_stack.web_url}/agent/supervisor", timeout=30).status_code == 200
    assert stranger.post(f"{web_stack.web_url}/agent/api/supervisor/questions", json={}, timeout=30).status_code == 401


def test_what_a_client_can_send_is_refused_never_a_server_error(web_stack, visitor):
    http, csrf = signed_in(web_stack, SUPERVISOR, PASSWORD)
    url = f"{web_stack.web_url}/agent/api/supervisor/"
    assert http.post(url + "questions", json={}, timeout=30).status_code == 403  # no CSRF token
    cases = [("questions", {"since": "x"}), ("questions", {"since": ["2026-01-01"]}),
             ("questions", {"since": "2020-01-01", "until": "2026-01-01"}), ("questions", {"until": "9999-99-99"}),
             ("export", {}), ("export", {"keys": "qwertyasdf"}), ("export", {"keys": [1, 2]}),
             ("export", {"keys": ["k" * 501]}), ("export", {"clusters": ["x"] * 5001})]
    for path, body in cases:
        reply = http.post(url + path, json=body, headers={"X-CSRF-Token": csrf}, timeout=60)
        assert reply.status_code == 400, (path, body, reply.status_code, reply.text[:200])
    for raw in (b"not json", b"[1,2]", b"\xff\xfe"):
        reply = http.post(url + "questions", data=raw, headers={"X-CSRF-Token": csrf,
                                                               "Content-Type": "application/json"}, timeout=60)
        assert reply.status_code == 200 and reply.json()["kind"] == "questions"  # the default period
    # a selection matching nothing: an empty candidates file, still the format
    reply = http.post(url + "export", json={"keys": ["nothing-like-this"]}, headers={"X-CSRF-Token": csrf}, timeout=60)
    assert reply.status_code == 200 and yaml.safe_load(reply.text) == {"version": "3.1", "nlu": []}

"""End to end: `make import-progress`, then conversations through the REST channel
of a running stack (Rasa, action server, progress service), on SQLite and PostgreSQL.
"""
import json
import os
import re
import time
import urllib.request
import uuid

import pytest

from assistant.content import texts
from progress_helpers import EXAMPLE_CSV, database, new_secrets, run_import

# all tests here share one started stack, so xdist keeps them on one worker (Makefile test-python)
pytestmark = pytest.mark.xdist_group("progress_stacks")

LOCKOUT_WINDOW = 12  # seconds; short so the expiry can be waited for
NO_MATCH = "没查到这条申请"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stack(request, stack_factory, tmp_path_factory):
    directory = tmp_path_factory.mktemp(f"progress-{request.param}")
    with database(request.param, directory) as url:
        secrets_env = new_secrets()
        done = run_import(EXAMPLE_CSV, url, secrets_env, use_make=True)
        assert done.returncode == 0, done.stdout + done.stderr
        environ = {**os.environ, **secrets_env, "PROGRESS_DATABASE_URL": url,
                   "PROGRESS_LOCKOUT_WINDOW_SECONDS": str(LOCKOUT_WINDOW),
                   # as behind the trusted proxy (docs/security.md): it names the client
                   "SANIC_REAL_IP_HEADER": "x-real-ip"}
        environ.pop("PROGRESS_SERVICE_URL", None)
        handle = stack_factory(environ=environ, state_dir=directory)
        yield handle
        handle.stack.stop()  # before the PostgreSQL schema is dropped


def new_user() -> str:
    return "progress-test-" + uuid.uuid4().hex[:8]


STATUS_CASES = [
    # number, suffix, label, what the reply must also say
    ("NC2025000101", "1234", "已提交", ["张*", "等医保部门受理"]),
    ("NC2025000102", "5678", "已受理", ["李*明", "组织专家审核", "短信"]),
    ("NC2025000103", "246X", "专家审核中", ["欧阳*华", "专家正在审核"]),
    ("NC2025000104", "1357", "需补充材料", ["诊断证明书", "以通知和官方要求为准", "12393"]),
    ("NC2025000105", "8642", "审核通过", ["2025年3月5日至2026年3月4日", "医保定点的医院和药店"]),
    ("NC2025000106", "9753", "未通过", ["不满足该病种认定标准", "以官方规定为准", "12393"]),
    ("NC2025000107", "1111", "已撤回", ["能否重新申请", "以官方规定为准", "12393"]),
]


@pytest.mark.parametrize("number, suffix, label, details", STATUS_CASES, ids=[c[2] for c in STATUS_CASES])
def test_each_status_with_the_number_in_the_first_message(stack, number, suffix, label, details):
    user = new_user()
    asked = stack.say_text(user, f"帮我查{number}的进度")
    assert "身份证" in asked and "后4位" in asked.replace("最后4位", "后4位")
    answer = stack.say_text(user, suffix)
    assert label in answer
    for detail in details:
        assert detail in answer
    for full_name in ("张三", "李小明", "欧阳明华", "王芳", "赵建国", "孙丽", "周强"):
        assert full_name not in answer


def test_number_given_when_asked(stack):
    user = new_user()
    assert "申请编号" in stack.say_text(user, "我想查一下申请进度")
    assert "身份证" in stack.say_text(user, "NC2025000102")
    assert "已受理" in stack.say_text(user, "5678")


def test_not_understood_while_asked_asks_again_with_the_hint_and_keeps_the_lookup(stack):
    user = new_user()
    stack.say_text(user, "我想查一下申请进度")
    again = stack.say_text(user, "没看懂")
    assert "再说一遍" in again and "申请编号" in again and "APP或小程序" in again
    assert "身份证" in stack.say_text(user, "NC2025000102")
    assert "身份证" in stack.say_text(user, "啥意思")
    assert "已受理" in stack.say_text(user, "5678")


def test_full_width_lower_case_spaces_and_dashes(stack):
    user = new_user()
    assert "身份证" in stack.say_text(user, "帮我查ｎｃ－２０２５ ０００ １０３的进度")
    assert "专家审核中" in stack.say_text(user, "２４６ｘ")
    user = new_user()
    stack.say_text(user, "查进度")
    assert "身份证" in stack.say_text(user, "nc 2025-000-105")
    assert "审核通过" in stack.say_text(user, "后四位是8642")


def test_wrong_suffix_and_unknown_number_get_one_and_the_same_answer(stack):
    wrong_user, unknown_user = new_user(), new_user()
    stack.say_text(wrong_user, "帮我查NC2025000101的进度")
    wrong = stack.say(wrong_user, "9999")
    stack.say_text(unknown_user, "帮我查NC2099123456的进度")
    unknown = stack.say(unknown_user, "1234")
    assert NO_MATCH in wrong[0]["text"]
    assert wrong[0]["text"] == unknown[0]["text"]
    # and the number is asked for again
    assert "申请编号" in wrong[-1]["text"]
    assert "身份证" in stack.say_text(wrong_user, "NC2025000101")
    assert "已提交" in stack.say_text(wrong_user, "1234")


def test_a_number_is_not_rejected_by_a_guessed_format(stack):
    """The real format is unknown: whatever plausibly is a number goes to the service, and
    a miss is "没查到" with its possible reasons, not "格式不对"."""
    user = new_user()
    stack.say_text(user, "查进度")
    assert "身份证" in stack.say_text(user, "编号是 2025-0001-99")  # an unusual form is taken
    miss = stack.say_text(user, "1357")
    assert texts("progress_replies").render("no_match") in miss and "核对后重新输入" not in miss
    assert "身份证" in stack.say_text(user, "NC2025000104")
    reply = stack.say_text(user, "13 57 9")
    assert "4个字符" in reply
    assert "需补充材料" in stack.say_text(user, "1357")


def test_three_answers_without_a_number_end_the_lookup_with_the_hotline(stack):
    user = new_user()
    stack.say_text(user, "查进度")
    not_recognised = texts("progress_replies").render("bad_application_no")
    reply = stack.say_text(user, "12")  # no number in it: asked again
    assert not_recognised in reply and "格式不对" not in reply
    assert not_recognised in stack.say_text(user, "3")
    final = stack.say_text(user, "45")
    assert "3次" in final and "12393" in final
    assert "申请编号" in stack.say_text(user, "查进度")  # a fresh start


@pytest.mark.parametrize("quit_text", ["算了", "不查了"])
def test_quitting_at_any_time(stack, quit_text):
    user = new_user()
    stack.say_text(user, "帮我查NC2025000101的进度")  # now asking for the suffix
    assert "不查了" in stack.say_text(user, quit_text)
    # a new lookup starts from the beginning: the old number was forgotten
    assert "申请编号" in stack.say_text(user, "查进度")
    assert "不查了" in stack.say_text(user, quit_text)


def test_three_failed_attempts_explain_and_offer_the_hotline(stack):
    user = new_user()
    stack.say_text(user, "帮我查NC2025000106的进度")
    assert NO_MATCH in stack.say_text(user, "0001")
    stack.say_text(user, "NC2025000106")
    assert NO_MATCH in stack.say_text(user, "0002")
    stack.say_text(user, "NC2025000106")
    final = stack.say_text(user, "0003")
    assert "3次" in final and "12393" in final
    assert "申请编号" not in final.split("12393")[-1]  # not asked again
    # the conversation goes on normally
    assert "申请编号" in stack.say_text(user, "查进度")


def test_lockout_says_when_to_retry_and_expires(stack):
    user = new_user()
    number = "NC2025000107"  # withdrawn, suffix 1111
    stack.say_text(user, f"帮我查{number}的进度")
    assert NO_MATCH in stack.say_text(user, "0000")
    stack.say_text(user, number)
    assert NO_MATCH in stack.say_text(user, "0001")
    stack.say_text(user, number)
    assert "3次" in stack.say_text(user, "0002")  # the bot's own limit per conversation
    stack.say_text(user, f"帮我查{number}的进度")  # the user starts again
    assert NO_MATCH in stack.say_text(user, "0003")
    stack.say_text(user, number)
    assert NO_MATCH in stack.say_text(user, "0004")  # 5th failure for this number and sender
    stack.say_text(user, number)
    locked = stack.say_text(user, "1111")  # the right suffix, refused while locked
    assert "暂停" in locked and "12393" in locked and "已撤回" not in locked
    assert re.search(r"\d{2}:\d{2} 以后再试", locked)
    time.sleep(LOCKOUT_WINDOW + 1)
    stack.say_text(user, f"帮我查{number}的进度")
    assert "已撤回" in stack.say_text(user, "1111")


def say_from(stack, address: str, user: str, text: str) -> str:
    """A message through the REST channel from a client at `address` (set by the proxy)."""
    request = urllib.request.Request(
        f"{stack.rasa_url}/webhooks/rest/webhook",
        data=json.dumps({"sender": user, "message": text}).encode("utf-8"),
        headers={"Content-Type": "application/json", "X-Real-IP": address})
    with urllib.request.urlopen(request, timeout=30) as response:
        return "\n".join(m.get("text", "") for m in json.loads(response.read()))


def test_the_lockout_follows_the_client_not_the_sender_id_and_spares_the_owner(stack):
    """A new sender id per guess does not reset the count (the client chooses it, not its
    address), and a stranger's failures never lock the owner out (issue 16)."""
    number = "NC2025000102"  # accepted, suffix 5678
    stranger = "203.0.113.7"
    for guess in ("0001", "0002", "0003", "0004", "0005"):
        user = new_user()
        say_from(stack, stranger, user, f"帮我查{number}的进度")
        assert NO_MATCH in say_from(stack, stranger, user, guess)
    user = new_user()
    say_from(stack, stranger, user, f"帮我查{number}的进度")
    locked = say_from(stack, stranger, user, "5678")  # even the right suffix, from a fresh id
    assert "暂停" in locked and "已受理" not in locked
    owner = new_user()
    say_from(stack, "198.51.100.20", owner, f"帮我查{number}的进度")
    assert "已受理" in say_from(stack, "198.51.100.20", owner, "5678")


def test_logs_hold_no_numbers_names_or_suffixes(stack):
    user = new_user()
    stack.say_text(user, "帮我查NC2025000104的进度")
    stack.say_text(user, "1357")
    log = (stack.settings.state_dir / "stack.log").read_text(encoding="utf-8")
    assert "NC********04" in log  # the lookup was logged, masked
    for secret in ("NC2025000104", "2025000104", "王芳", "X-Id-Last4: 1357"):
        assert secret not in log


def test_service_stopped_gets_the_hotline_and_the_conversation_continues(stack):
    # stops this stack's progress service and starts it again, so no test depends on order
    stack.stack.stop_service("progress")
    try:
        user = new_user()
        stack.say_text(user, "帮我查NC2025000101的进度")
        started = time.monotonic()
        reply = stack.say_text(user, "1234")
        assert time.monotonic() - started < 3.0
        assert "12393" in reply and "连不上" in reply
        assert "申请编号" in stack.say_text(user, "查进度")
    finally:
        assert stack.stack.start_service("progress"), "the progress service did not come back"
    # back: the same person's lookup now works
    assert "身份证" in stack.say_text(user, "NC2025000101")
    assert "已提交" in stack.say_text(user, "1234")

"""Status-change notifications end to end (issue 19, "Done when"): the stack `make run`
starts (trained model, action server, progress stand-in, Rasa with the WeChat channel) and
the fake WeChat. A person looks up their application in WeChat, picks "通知我"; the agency
pushes a status change to the progress service, which signs an event to the channel; the
person gets one message, nobody else does, a redelivered event sends nothing more, and
"取消通知" stops it. A closed 48 h window (45015) falls back to the template message.
"""
import json
import re
import time
import urllib.error
import urllib.request
import uuid

import pytest
import sqlalchemy as sa

from core import status_events
from core.status_subscriptions import SubscriptionStore, claims_table
from tests.progress.progress_helpers import EXAMPLE_CSV, new_secrets, run_import
from wechat_fakes import FakeWeChat, start_wechat_stack, text_xml

# one started stack for the module, so xdist keeps these tests on one worker
pytestmark = pytest.mark.xdist_group("wechat_status_stack")

EVENTS_SECRET = "e2e-status-events-secret"
TEMPLATE_ID = "TPL-e2e-status"


@pytest.fixture(scope="module")
def wechat():
    with FakeWeChat() as fake:
        yield fake


@pytest.fixture(scope="module")
def stack(stack_factory, tmp_path_factory, wechat):
    directory = tmp_path_factory.mktemp("wechat-status-stack")
    secrets_env = new_secrets()
    done = run_import(EXAMPLE_CSV, f"sqlite:///{directory / 'progress.db'}", secrets_env)
    assert done.returncode == 0, done.stdout + done.stderr
    handle = start_wechat_stack(stack_factory, directory, wechat, secrets_env, {
        "PROGRESS_EVENTS_SECRET": EVENTS_SECRET, "WECHAT_STATUS_TEMPLATE_ID": TEMPLATE_ID})
    handle.agency_key = secrets_env["PROGRESS_AGENCY_KEY"]
    handle.subscriptions = SubscriptionStore(f"sqlite:///{directory / 'status-subscriptions.db'}")
    yield handle
    handle.subscriptions.close()
    handle.stack.stop()


def new_openid() -> str:
    return "oSTS" + uuid.uuid4().hex[:24]


def visible(text):
    return re.sub(r"<[^>]+>", "", text)


def say(wechat, openid, text):
    result = wechat.push(text_xml(openid, text), mode="safe")
    assert result.status == 200, result
    return visible(result.content or "")


def look_up_and_subscribe(wechat, openid, number, suffix):
    assert "身份证" in say(wechat, openid, f"帮我查下{number}的进度")
    answer = say(wechat, openid, suffix)
    assert "状态有变化时通知我？" in answer, answer
    choice = {line.split(".", 1)[1].strip(): line.split(".", 1)[0].strip()
              for line in answer.splitlines() if line[:1].isdigit() and "." in line}
    assert "通知我" in choice, answer
    confirmed = say(wechat, openid, choice["通知我"])
    assert "取消通知" in confirmed, confirmed


def push_status(stack, number, status, note=None):
    """The agency's system: POST /api/v1/applications/{no}/status with its key."""
    body = {"status": status, **({"note": note} if note else {})}
    request = urllib.request.Request(
        f"http://127.0.0.1:{stack.settings.progress_port}/api/v1/applications/{number}/status",
        data=json.dumps(body).encode(), method="POST",
        headers={"X-API-Key": stack.agency_key, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=15) as response:
        result = json.loads(response.read())
    assert result["status_changed"], result
    return result


def outcomes(stack, number, count, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [o for o in stack.subscriptions.outcomes(number) if o != "claimed"]
        if len(found) >= count:
            return found
        time.sleep(0.1)
    return stack.subscriptions.outcomes(number)


def test_a_pushed_change_reaches_the_subscriber_exactly_once_and_nobody_else(stack, wechat):
    alice, bob = new_openid(), new_openid()
    look_up_and_subscribe(wechat, alice, "NC2025000102", "5678")  # 已受理
    look_up_and_subscribe(wechat, bob, "NC2025000103", "246X")  # another number
    push_status(stack, "NC2025000102", "expert_review")
    told = wechat.wait_for_messages(alice, 1, timeout=20)
    assert len(told) == 1, told
    assert "NC********02" in told[0] and "专家审核中" in told[0] and "查进度" in told[0]
    assert "NC2025000102" not in told[0] and "李" not in told[0]
    assert outcomes(stack, "NC2025000102", 1) == ["sent"]

    # the progress service's event, delivered again (same status, same time): nothing more
    assert stack.subscriptions.subscribers("NC2025000102")[0].status == "expert_review"
    with stack.subscriptions.engine.connect() as db:
        updated_at = db.execute(sa.select(claims_table.c.updated_at).where(
            claims_table.c.application_no == "NC2025000102")).scalar_one()
    body = status_events.event_body("NC2025000102", "expert_review", updated_at)
    redelivery = urllib.request.Request(
        f"http://127.0.0.1:{stack.settings.rasa_port}/webhooks/wechat/status-events", data=body,
        method="POST", headers=status_events.signed_headers(EVENTS_SECRET, body, time.time()))
    with urllib.request.urlopen(redelivery, timeout=15) as response:
        assert response.status == 202
    time.sleep(2.0)
    assert len(wechat.messages_to(alice)) == 1
    assert wechat.messages_to(bob) == [] and wechat.templates_to(bob) == []
    assert wechat.templates_to(alice) == []


def test_cancel_stops_the_notifications(stack, wechat):
    carol = new_openid()
    look_up_and_subscribe(wechat, carol, "NC2025000101", "1234")  # 已提交
    assert "已取消" in say(wechat, carol, "取消通知")
    push_status(stack, "NC2025000101", "accepted")
    time.sleep(3.0)
    assert wechat.messages_to(carol) == [] and wechat.templates_to(carol) == []
    assert stack.subscriptions.subscriptions_of(carol) == []


def test_a_closed_window_falls_back_to_the_template(stack, wechat):
    dave = new_openid()
    look_up_and_subscribe(wechat, dave, "NC2025000104", "1357")  # 需补充材料
    wechat.send_errors = [45015]
    try:
        push_status(stack, "NC2025000104", "approved")
        templates = wechat.wait_for_templates(dave, 1, timeout=20)
    finally:
        wechat.send_errors = []
    assert templates == [{"keyword1": "NC********04", "keyword2": "审核通过",
                          "remark": "回复“查进度”看详情"}]
    assert wechat.messages_to(dave) == []
    assert outcomes(stack, "NC2025000104", 1) == ["template"]
    # a final status: the subscription has ended
    assert stack.subscriptions.subscriptions_of(dave) == []


def test_the_events_route_is_not_behind_a_bad_signature(stack):
    body = status_events.event_body("NC2025000102", "approved", "t")
    request = urllib.request.Request(
        f"http://127.0.0.1:{stack.settings.rasa_port}/webhooks/wechat/status-events", data=body,
        method="POST", headers=status_events.signed_headers("wrong", body, time.time()))
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=15)
    assert refused.value.code == 403

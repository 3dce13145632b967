"""WeChat at load (issue 17): 32 people typing at once to the stack `make run` starts,
through the fake WeChat with the real deadline (4.5 s in the channel, 5 s and up to three
tries on WeChat's side, each try signed anew with the same MsgId, as WeChat does).

Every message must be answered exactly once: passively within the deadline, or late
through the customer-service API; never both, never by a second run of the bot (a second
run shows as a walk step skipped or a reply arriving after the conversation ended). How
many went which way is measured and printed (`-s`), never asserted: the machine is shared.
"""
import concurrent.futures
import re
import statistics
import time
import uuid

import pytest

from tests.progress.progress_helpers import EXAMPLE_CSV, new_secrets, run_import
from wechat_fakes import FakeWeChat, start_wechat_stack, text_xml

pytestmark = pytest.mark.xdist_group("wechat_load")

USERS = 32
WECHAT_TIMEOUT = 5.0  # WeChat drops a try after 5 s and sends the same message again
TRIES = 3
LATE_WAIT = 90.0  # how long a person waits for a late answer before we call it lost

# (what the person types, what the answer must contain); "{window}" is the number the
# channel offered for 去窗口办, read from the answer before it
SCRIPT = [
    ("办慢特病要准备啥子材料", "诊断证明"),
    ("高血压能申请不", "高血压"),
    ("怎么申请", "去窗口办"),
    ("{window}", "第1步 / 共4步"),
    ("下一步", "第2步 / 共4步"),
    ("查进度NC2025000101", "身份证"),
    ("1234", "已提交"),
]


@pytest.fixture(scope="module")
def wechat():
    with FakeWeChat() as fake:
        yield fake


@pytest.fixture(scope="module")
def stack(stack_factory, tmp_path_factory, wechat):
    directory = tmp_path_factory.mktemp("wechat-load")
    secrets_env = new_secrets()
    done = run_import(EXAMPLE_CSV, f"sqlite:///{directory / 'progress.db'}", secrets_env)
    assert done.returncode == 0, done.stdout + done.stderr
    # the production reply deadline (4.5 s): nothing set
    handle = start_wechat_stack(stack_factory, directory, wechat, secrets_env)
    yield handle
    handle.stack.stop()


def visible(text):
    return re.sub(r"<[^>]+>", "", text or "")


def window_number(offer: str) -> str:
    for line in visible(offer).splitlines():
        if "去窗口办" in line and "." in line:
            return line.split(".", 1)[0].strip()
    return "去窗口办"  # typed as words if no number was offered


def converse(wechat, openid):
    """One person's conversation; per message (answer text, how it came, seconds, tries)."""
    results = []
    previous = ""
    for text, _ in SCRIPT:
        if text == "{window}":
            text = window_number(previous)
        body = text_xml(openid, text, msg_id=str(uuid.uuid4().int % 10**18))
        late_before = len(wechat.messages_to(openid))
        started = time.monotonic()
        passive, tries = None, 0
        for tries in range(1, TRIES + 1):
            result = wechat.push(body, mode="safe", timeout=WECHAT_TIMEOUT)
            if result.status is not None:
                assert result.status == 200, result
                passive = result.content
                break
        if passive:
            answer, how = visible(passive), "passive"
        else:  # nothing in time: the answer must come through the customer-service API
            late = wechat.wait_for_messages(openid, late_before + 1, timeout=LATE_WAIT)
            answer, how = "\n".join(late[late_before:]), "late"
        results.append((answer, how, time.monotonic() - started, tries, len(wechat.messages_to(openid))))
        previous = answer
    return results


def test_32_people_at_once_each_message_answered_exactly_once(stack, wechat):
    users = ["oLOAD" + uuid.uuid4().hex[:23] for _ in range(USERS)]
    with concurrent.futures.ThreadPoolExecutor(USERS) as pool:
        conversations = dict(zip(users, pool.map(lambda user: converse(wechat, user), users)))
    time.sleep(8)  # anything still coming now would be a second answer

    problems = []
    for user, results in conversations.items():
        for (typed, expected), (answer, how, *_) in zip(SCRIPT, results):
            if expected not in answer:
                problems.append(f"{user[:9]} {typed!r} ({how}): {answer[:60]!r}")
        # every customer-service message was read as the answer to a message that had no
        # passive one; one arriving after the conversation ended answered something twice
        extra = wechat.messages_to(user)[results[-1][4]:]
        if extra:
            problems.append(f"{user[:9]}: {len(extra)} message(s) after the end: {extra[0][:60]!r}")
        steps = re.findall(r"第(\d)步 / 共4步", "\n".join(result[0] for result in results))
        if steps != ["1", "2"]:
            problems.append(f"{user[:9]}: walk steps {steps} (a retry ran the bot again?)")
    assert not problems, "\n".join(problems[:20])

    every = [result for results in conversations.values() for result in results]
    seconds = sorted(result[2] for result in every)
    passive = sum(1 for result in every if result[1] == "passive")
    retried = sum(1 for result in every if result[3] > 1)
    print(f"\nWeChat at {USERS} users: {len(every)} messages, {passive} answered passively, "
          f"{len(every) - passive} late through customer service, {retried} needed a retry; "
          f"answer time p50 {statistics.median(seconds):.2f} s, "
          f"p99 {seconds[int(len(seconds) * 0.99) - 1]:.2f} s, max {seconds[-1]:.2f} s")

"""Deadline, WeChat's retries, the customer-service API and passive-only accounts."""
import time

from wechat_fakes import event_xml, text_xml

OPENID = "oSlowUser000000000000000001"
FAST = {"reply_deadline": 0.5}  # scaled-down timings; defaults stay 4.5 s / 5 s


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def held(server, openid=OPENID):
    return server.run(server.channel.endpoint.state.held(openid))


def test_slow_turn_with_real_timings_runs_once_and_answers_once_by_customer_service(
        channel_for, fake_wechat):
    """The bot takes 6 s; WeChat tries 3 times, 5 s apart, each dropped after 5 s."""
    server, agent = channel_for(mode="safe")  # default deadline 4.5 s
    agent.delays["慢问题"] = 6.0
    started = time.monotonic()
    results = fake_wechat.push_with_retries(text_xml(OPENID, "慢问题"), mode="safe",
                                            attempts=3, interval=5.0, timeout=5.0)
    assert [r.status for r in results] == [200, 200, 200]
    assert [r.body for r in results] == [b"success"] * 3
    assert 4.0 < results[0].elapsed < 5.0  # answered before WeChat gives up
    assert results[1].elapsed < 1.0 and results[2].elapsed < 1.0  # retries join, no new wait
    assert agent.texts() == ["慢问题"]  # one bot run
    assert fake_wechat.wait_for_messages(OPENID, 1) == ["答复：慢问题"]
    time.sleep(0.3)
    assert fake_wechat.messages_to(OPENID) == ["答复：慢问题"]  # exactly once
    assert time.monotonic() - started < 13


def test_fast_answer_is_passive_and_never_uses_the_api(channel_for, fake_wechat):
    _, agent = channel_for(mode="safe", **FAST)
    agent.delays["快"] = 0.2
    result = fake_wechat.push(text_xml(OPENID, "快"), mode="safe")
    assert result.content == "答复：快"
    assert fake_wechat.send_calls == [] and fake_wechat.token_calls == 0


def test_retry_during_the_wait_joins_and_gets_the_answer_once(channel_for, fake_wechat):
    """Attempts overlap (WeChat gave up on the first before our deadline)."""
    _, agent = channel_for(mode="safe", reply_deadline=2.0)
    agent.delays["重叠"] = 0.8
    results = fake_wechat.push_with_retries(text_xml(OPENID, "重叠"), mode="safe",
                                            attempts=3, interval=0.3, timeout=0.3)
    assert agent.texts() == ["重叠"]
    passive = [r.content for r in results if r.content]
    if not passive:  # every attempt was dropped: the answer comes by customer service
        fake_wechat.wait_for_messages(OPENID, 1)
    time.sleep(0.3)  # room for a (wrong) second delivery
    delivered = passive + fake_wechat.messages_to(OPENID)
    assert delivered == ["答复：重叠"], (results, delivered)


def test_retries_of_an_answered_message_get_the_same_reply(channel_for, fake_wechat):
    _, agent = channel_for(mode="safe", **FAST)
    message = text_xml(OPENID, "重发")
    first, second = fake_wechat.push(message, mode="safe"), fake_wechat.push(message, mode="safe")
    assert first.content == second.content == "答复：重发"
    assert agent.texts() == ["重发"]


def test_event_retries_are_deduplicated_by_sender_and_time(channel_for, fake_wechat):
    _, agent = channel_for(mode="safe", **FAST)
    click = event_xml(OPENID, "CLICK", "APPLY_WHO", create_time=int(time.time()))
    for _ in range(3):
        fake_wechat.push(click, mode="safe")
    assert agent.texts() == ["/ask_eligibility"]


def test_passive_only_mode_holds_the_late_answer_for_the_next_message(channel_for, fake_wechat):
    server, agent = channel_for(mode="safe", passive_only="true", **FAST)
    agent.delays["慢问题"] = 1.0
    # WeChat waits up to 2 s per attempt here: our 0.5 s deadline answers well within it
    results = fake_wechat.push_with_retries(text_xml(OPENID, "慢问题"), mode="safe",
                                            attempts=3, interval=0.6, timeout=2.0)
    assert [r.body for r in results] == [b"success"] * 3
    assert agent.texts() == ["慢问题"]
    wait_until(lambda: held(server))  # the bot finished; the answer waits, no API call
    reply = fake_wechat.push(text_xml(OPENID, "第二个问题"), mode="safe").content
    assert reply == "【您上一个问题的回复】\n答复：慢问题\n\n答复：第二个问题"
    assert fake_wechat.send_calls == [] and fake_wechat.token_calls == 0
    # delivered once: the message after that carries only its own answer
    assert fake_wechat.push(text_xml(OPENID, "第三个"), mode="safe").content == "答复：第三个"


def test_48001_switches_to_passive_only(channel_for, fake_wechat):
    server, agent = channel_for(mode="safe", **FAST)
    fake_wechat.no_permission = True
    agent.delays["慢问题"] = 0.8
    assert fake_wechat.push(text_xml(OPENID, "慢问题"), mode="safe").body == b"success"
    wait_until(lambda: held(server))
    assert len(fake_wechat.send_calls) == 1  # tried once, got 48001
    reply = fake_wechat.push(text_xml(OPENID, "下一个"), mode="safe").content
    assert reply == "【您上一个问题的回复】\n答复：慢问题\n\n答复：下一个"
    # later late answers do not try the API again
    agent.delays["又慢"] = 0.8
    fake_wechat.push(text_xml(OPENID, "又慢"), mode="safe")
    wait_until(lambda: held(server))
    assert len(fake_wechat.send_calls) == 1
    assert "答复：又慢" in fake_wechat.push(text_xml(OPENID, "再问"), mode="safe").content


def test_quota_and_window_errors_hold_the_answer(channel_for, fake_wechat):
    server, agent = channel_for(mode="safe", **FAST)
    for code in (45047, 45015):
        fake_wechat.send_errors.append(code)
        agent.delays[f"慢{code}"] = 0.8
        fake_wechat.push(text_xml(OPENID, f"慢{code}"), mode="safe")
        wait_until(lambda: held(server))
        assert fake_wechat.sent == []
        reply = fake_wechat.push(text_xml(OPENID, f"接着{code}"), mode="safe").content
        assert reply.startswith(f"【您上一个问题的回复】\n答复：慢{code}")
    # the account still may use the API: the next late answer goes out normally
    agent.delays["慢"] = 0.8
    fake_wechat.push(text_xml(OPENID, "慢"), mode="safe")
    assert fake_wechat.wait_for_messages(OPENID, 1) == ["答复：慢"]


def test_expired_token_is_refreshed_and_the_send_retried_once(channel_for, fake_wechat):
    _, agent = channel_for(mode="safe", **FAST)
    agent.delays["慢一"] = agent.delays["慢二"] = 0.8
    fake_wechat.push(text_xml(OPENID, "慢一"), mode="safe")
    assert fake_wechat.wait_for_messages(OPENID, 1) == ["答复：慢一"]
    assert fake_wechat.token_calls == 1
    fake_wechat.invalidate_tokens()  # WeChat now answers 40001 to the cached token
    fake_wechat.push(text_xml(OPENID, "慢二"), mode="safe")
    assert fake_wechat.wait_for_messages(OPENID, 2) == ["答复：慢一", "答复：慢二"]
    assert fake_wechat.token_calls == 2
    assert [call["token"] for call in fake_wechat.send_calls] == ["TOKEN-1", "TOKEN-1", "TOKEN-2"]


def test_long_answer_is_split_and_the_rest_sent_by_customer_service(channel_for, fake_wechat):
    _, agent = channel_for(mode="safe", **FAST)
    paragraphs = [f"第{i}段：门诊慢特病申请材料说明，请按顺序准备好。" * 6 for i in range(12)]
    agent.responses["长"] = [{"text": "\n".join(paragraphs)}]
    first = fake_wechat.push(text_xml(OPENID, "长"), mode="safe").content
    assert len(first.encode("utf-8")) <= 2048 and first.startswith("第0段")
    rest = fake_wechat.wait_for_messages(OPENID, 2)
    time.sleep(0.3)
    rest = fake_wechat.messages_to(OPENID)
    assert all(len(chunk.encode("utf-8")) <= 2048 for chunk in rest)
    assert "\n".join([first] + rest) == "\n".join(paragraphs)


def test_long_answer_in_passive_only_mode_continues_on_request(channel_for, fake_wechat):
    _, agent = channel_for(mode="safe", passive_only="1", **FAST)
    paragraphs = [f"第{i}段：" + "说明" * 100 for i in range(6)]  # ~3.6 KB
    agent.responses["长"] = [{"text": "\n".join(paragraphs)}]
    first = fake_wechat.push(text_xml(OPENID, "长"), mode="safe").content
    assert first.endswith("（未完，回复“继续”看下一段）") and len(first.encode()) <= 2048
    second = fake_wechat.push(text_xml(OPENID, "继续"), mode="safe").content
    assert second.startswith("（接上条）\n")
    assert agent.texts() == ["长"]  # "继续" did not go to the bot
    shown = first.replace("\n（未完，回复“继续”看下一段）", "") + "\n" + second[len("（接上条）\n"):]
    assert shown == "\n".join(paragraphs)


def test_a_very_long_answer_in_passive_only_mode_needs_several_continues(channel_for, fake_wechat):
    _, agent = channel_for(mode="plain", passive_only="1", **FAST)
    paragraphs = [f"第{i}段：" + "说明" * 100 for i in range(12)]  # ~7.3 KB: four replies
    agent.responses["很长"] = [{"text": "\n".join(paragraphs)}]
    shown = [fake_wechat.push(text_xml(OPENID, "很长")).content]
    while shown[-1].endswith("（未完，回复“继续”看下一段）"):
        assert len(shown) < 8
        shown.append(fake_wechat.push(text_xml(OPENID, "继续")).content)
    assert len(shown) == 4 and all(len(s.encode()) <= 2048 for s in shown)
    body = "\n".join(s.replace("\n（未完，回复“继续”看下一段）", "").replace("（接上条）\n", "")
                     for s in shown)
    assert body == "\n".join(paragraphs)
    assert agent.texts() == ["很长"]

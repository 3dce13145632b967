"""WeChat feedback (issue 19) through the fake WeChat and the real channel, with a stand-in
agent that has a real (in-memory) tracker store and lock store.

After a knowledge answer the bot adds "这个回答有帮助吗？" with two numbered lines that come
after the answer's own (1-3 the answer's suggestions, 4 有帮助, 5 没帮助). Tapping 5 never
runs the bot: the channel appends the rating to the conversation, in the shape the report
reads, and thanks; the answer's own lines stay valid, the rating's do not.
(The report through a running stack: tests/web/test_widget_feedback_browser.py.)
"""
import re

from rasa.core.lock_store import InMemoryLockStore
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from actions.reply import feedback_question
from core.feedback import OFFER, OFFER_KEY
from core.unanswered import THUMBS_DOWN, unanswered_rows
from wechat_fakes import text_xml

OPENID = "oFeedback0000000000000000001"
QUESTION = "要带什么材料"
ANSWER_BUTTONS = [{"title": "申请表在哪拿", "payload": "/ask_application_form"},
                  {"title": "材料怎么拍怎么传", "payload": "/ask_upload_quality"},
                  {"title": "在哪里申请", "payload": "/ask_channel"}]


def with_store(server, agent, offered=True):
    """Give the stand-in agent Rasa's stores and a conversation whose latest answer was
    (or was not) offered for rating, as action_answer_topic leaves it."""
    agent.domain = Domain.empty()
    agent.tracker_store = InMemoryTrackerStore(agent.domain)
    agent.lock_store = InMemoryLockStore()
    question = feedback_question()
    events = [ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen"),
              UserUttered(QUESTION, {"name": "ask_materials", "confidence": 0.93}, input_channel="wechat"),
              ActionExecuted("action_answer_topic"),
              BotUttered("请带病历和诊断证明。", data={"buttons": ANSWER_BUTTONS})]
    if offered:
        events.append(BotUttered(question["text"], data={"buttons": question["buttons"]},
                                 metadata={OFFER_KEY: OFFER}))
    events.append(ActionExecuted("action_listen"))
    server.run(agent.tracker_store.save(DialogueStateTracker.from_events(OPENID, events)))
    agent.responses[QUESTION] = [{"text": "请带病历和诊断证明。", "buttons": ANSWER_BUTTONS},
                                 {"text": question["text"], "buttons": question["buttons"]}]


def stored(server, agent):
    tracker = server.run(agent.tracker_store.retrieve(OPENID))
    return [event.as_dict() for event in tracker.events]


def say(fake_wechat, text):
    result = fake_wechat.push(text_xml(OPENID, text), mode="safe", openid=OPENID)
    assert result.status == 200, result
    return re.sub(r"<[^>]+>", "", result.content or "")


def test_the_rating_comes_after_the_answers_own_numbers(channel_for, fake_wechat):
    server, agent = channel_for(mode="safe")
    with_store(server, agent)
    reply = say(fake_wechat, QUESTION)
    assert reply.endswith("1. 申请表在哪拿\n2. 材料怎么拍怎么传\n3. 在哪里申请\n\n"
                          "这个回答有帮助吗？\n\n4. 有帮助\n5. 没帮助"), reply


def test_a_thumbs_down_is_stored_without_a_bot_run_and_thanked(channel_for, fake_wechat):
    server, agent = channel_for(mode="safe")
    with_store(server, agent)
    say(fake_wechat, QUESTION)
    runs = len(agent.runs)

    assert say(fake_wechat, "5") == "谢谢您的反馈"
    assert len(agent.runs) == runs  # the bot never saw the rating
    events = stored(server, agent)
    rating = events[-1]
    assert rating["event"] == "user" and rating["input_channel"] == "wechat"
    assert rating["metadata"]["feedback"] == "negative" and rating["metadata"]["wechat"]["button"] is True
    rows = list(unanswered_rows(OPENID, events))
    assert [(row.text, row.outcome, row.channel) for row in rows] == [(QUESTION, THUMBS_DOWN, "wechat")]

    # the answer's own numbers still pick its suggestions; the rating's are gone
    say(fake_wechat, "2")
    assert agent.texts()[-1] == "/ask_upload_quality"
    say(fake_wechat, "5")
    assert agent.texts()[-1] == "5"  # typed text now, for the bot
    assert [e["metadata"]["feedback"] for e in stored(server, agent)
            if e["event"] == "user" and (e.get("metadata") or {}).get("feedback")] == ["negative"]


def test_a_thumbs_up_is_thanked_and_counts_once(channel_for, fake_wechat):
    server, agent = channel_for(mode="safe")
    with_store(server, agent)
    say(fake_wechat, QUESTION)
    assert say(fake_wechat, "有帮助") == "谢谢您的反馈"  # the title works as the number does
    ratings = [e for e in stored(server, agent) if e["event"] == "user" and (e.get("metadata") or {}).get("feedback")]
    assert [r["metadata"]["feedback"] for r in ratings] == ["positive"]
    assert not list(unanswered_rows(OPENID, stored(server, agent)))  # a 👍 is never a row


def test_a_rating_of_an_answer_that_was_not_offered_is_thanked_but_not_stored(channel_for, fake_wechat):
    server, agent = channel_for(mode="safe")
    with_store(server, agent, offered=False)
    say(fake_wechat, QUESTION)  # the stand-in offers the lines; the stored answer has no offer
    before = stored(server, agent)
    assert say(fake_wechat, "5") == "谢谢您的反馈"
    assert stored(server, agent) == before


def test_without_a_store_the_person_is_still_thanked(channel_for, fake_wechat):
    server, agent = channel_for(mode="safe")
    agent.responses[QUESTION] = [{"text": "答案", "buttons": feedback_question()["buttons"]}]
    say(fake_wechat, QUESTION)
    assert say(fake_wechat, "2") == "谢谢您的反馈"
    assert agent.texts() == [QUESTION]

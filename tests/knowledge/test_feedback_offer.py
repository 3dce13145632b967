"""Feedback (issue 19), the action side and what may be recorded, without a model:
which answers are offered for rating on which channel (actions/reply.py via
action_answer_topic), the widget's wording on the marked message (channels/web.py), what
core/feedback.py allows, and the event channels/feedback.py appends."""
import asyncio
import time

import pytest
from rasa.core.lock_store import InMemoryLockStore
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.answers import ActionAnswerTopic
from actions.fallback import ActionFallbackLadder
from actions.reply import numbered_length
from channels.feedback import RECORDED, record_rating
from channels.web import WebOutputChannel, parse_feedback
from core import feedback
from core.unanswered import THUMBS_DOWN, unanswered_rows

NOW = time.time()


def user_event(text, intent, channel, at=NOW):
    return {"event": "user", "text": text, "input_channel": channel, "timestamp": at,
            "parse_data": {"intent": {"name": intent, "confidence": 0.9}, "entities": [], "text": text}}


def offer_event(at=NOW):
    return {"event": "bot", "text": "这个回答有帮助吗？", "timestamp": at, "metadata": {"feedback": "offer"}}


def tracker(text, intent, channel, history=()):
    latest = user_event(text, intent, channel)
    return Tracker(sender_id="t", slots={}, latest_message=latest["parse_data"], events=[*history, latest],
                   paused=False, followup_action=None, active_loop={}, latest_action_name="action_listen")


def run(action, tracker_):
    dispatcher = CollectingDispatcher()
    action.run(dispatcher, tracker_, {})
    return dispatcher.messages


def offers(messages):
    return [m for m in messages if m.get("feedback") == "offer"]


# --- which answers, which channels -----------------------------------------------------------
def test_the_widget_gets_the_marker_on_the_answers_last_message():
    messages = run(ActionAnswerTopic(), tracker("谁能申请", "ask_eligibility", "web"))
    assert offers(messages) == [messages[-1]] and messages[-1]["text"]
    assert not any(m.get("custom") for m in messages)  # the marker is no custom message


def test_wechat_gets_a_numbered_question_after_the_answer_once_per_session():
    messages = run(ActionAnswerTopic(), tracker("谁能申请", "ask_eligibility", "wechat"))
    question = messages[-1]
    assert offers(messages) == [question] and question["text"] == "这个回答有帮助吗？"
    assert [(b["title"], b["payload"]) for b in question["buttons"]] == [
        ("有帮助", "/feedback_positive"), ("没帮助", "/feedback_negative")]
    assert numbered_length(messages) <= 200  # the whole reply stays within the reading limit
    # asked already in this session: not again; a new session asks again
    asked = [user_event("谁能申请", "ask_eligibility", "wechat"), offer_event()]
    again = run(ActionAnswerTopic(), tracker("谁能申请", "ask_eligibility", "wechat", history=asked))
    assert not offers(again) and again[-1]["text"] != "这个回答有帮助吗？"
    new_session = [*asked, {"event": "session_started"}]
    assert offers(run(ActionAnswerTopic(), tracker("谁能申请", "ask_eligibility", "wechat", history=new_session)))


def test_wechat_is_not_asked_when_the_reply_would_get_too_long():
    messages = run(ActionAnswerTopic(), tracker("要带什么材料", "ask_materials", "wechat"))
    assert not offers(messages), numbered_length(messages)


@pytest.mark.parametrize("channel", ["rest", "socketio", "cmdline"])
def test_other_channels_are_not_asked(channel):
    assert not offers(run(ActionAnswerTopic(), tracker("谁能申请", "ask_eligibility", channel)))


@pytest.mark.parametrize("channel", ["web", "wechat"])
def test_no_rating_for_the_way_to_a_person_or_a_question_back(channel):
    assert not offers(run(ActionAnswerTopic(), tracker("找人工", "ask_human", channel)))
    assert not offers(run(ActionFallbackLadder(), tracker("那个东西", "nlu_fallback", channel)))


def test_the_web_channel_gives_the_marked_message_the_wording_from_knowledge():
    channel = WebOutputChannel()
    asyncio.run(channel.send_text_message("s", "答案\n\n第二段", feedback="offer"))  # split in two
    asyncio.run(channel.send_text_with_buttons("s", "别的", [{"title": "a", "payload": "/a"}]))
    asyncio.run(channel.send_text_with_buttons("s", "再问", [{"title": "b", "payload": "/b"}], feedback="offer"))
    first, second, third, fourth = channel.messages
    assert "feedback" not in first and "feedback" not in third
    assert fourth["feedback"] == second["feedback"] and fourth["buttons"]
    wording = second["feedback"]
    assert wording["up"] == "有帮助" and wording["down"] == "没帮助" and wording["thanks"] == "谢谢您的反馈"
    assert wording["reasons"] == ["没回答我的问题", "看不懂", "信息不对"] and wording["max_reason_chars"] == 100


def test_a_feedback_request_is_checked_and_its_reason_masked():
    sender = "web-0f8e2a4c-1b2d-4e5f-8a9b-0c1d2e3f4a5b"
    parsed, _ = parse_feedback({"sender": sender, "rating": "negative",
                                "reason": "／看不懂 511302199001011234 " + "长" * 200})
    assert parsed["reason"].startswith("看不懂 **************1234") and len(parsed["reason"]) == 100
    assert parse_feedback({"sender": sender, "rating": "positive", "reason": "x"})[0]["reason"] == ""
    for bad in ({"sender": "agent-console-0123456789abcdef", "rating": "positive"},
                {"sender": sender, "rating": "neutral"}, {"sender": sender, "rating": "negative", "reason": []},
                [], None):
        assert parse_feedback(bad)[0] is None, bad


# --- what may be rated --------------------------------------------------------------------------
def session(*events):
    return [{"event": "session_started", "timestamp": NOW}, *events]


def rating(value, reason="", at=NOW):
    return {"event": "user", "text": "", "timestamp": at,
            "metadata": {"client": "c", **feedback.rating_metadata(value, reason)}}


def allowed(events, value="negative", reason=False, now=NOW):
    return feedback.rating_allowed(events, value, reason, now, 60)


def test_only_the_latest_offered_answer_once_then_one_reason():
    answered = session(user_event("谁能申请", "ask_eligibility", "web"), offer_event())
    assert allowed(answered) == feedback.ALLOWED
    assert allowed(session(user_event("那个东西", "nlu_fallback", "web"))) == feedback.NOTHING_TO_RATE
    assert allowed([]) == feedback.NOTHING_TO_RATE
    # an older answer: the latest turn was not offered
    assert allowed([*answered, user_event("qwerty", "nlu_fallback", "web")]) == feedback.NOTHING_TO_RATE
    down = [*answered, rating("negative")]
    assert allowed(down) == feedback.ALREADY_RATED
    assert allowed(down, reason=True) == feedback.ALLOWED  # the reason after the 👎
    assert allowed([*down, rating("negative", "看不懂")], reason=True) == feedback.ALREADY_RATED
    assert allowed([*answered, rating("positive")], reason=True) == feedback.ALREADY_RATED
    # a new session: nothing left to rate
    assert allowed([*answered, {"event": "session_started"}]) == feedback.NOTHING_TO_RATE
    assert allowed(answered, now=NOW + 61 * 60) == feedback.SESSION_EXPIRED


def test_the_reason_is_typed_text_on_one_line_and_capped():
    assert feedback.reason_text("/restart\n看不懂") == "restart 看不懂"
    assert len(feedback.reason_text("字" * 300)) == feedback.MAX_REASON_CHARS
    assert feedback.reason_text(None) == ""
    assert feedback.rating_metadata("positive", "ignored") == {"feedback": "positive"}
    with pytest.raises(ValueError):
        feedback.rating_metadata("meh")


# --- the event, through Rasa's stores --------------------------------------------------------
class Agent:
    def __init__(self):
        self.domain = Domain.empty()
        self.tracker_store = InMemoryTrackerStore(self.domain)
        self.lock_store = InMemoryLockStore()


def test_the_recorded_event_is_the_reports_shape_and_changes_no_dialogue_state():
    agent = Agent()
    events = [ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen"),
              UserUttered("谁能申请", {"name": "ask_eligibility", "confidence": 0.9}, input_channel="web"),
              ActionExecuted("action_answer_topic"),
              BotUttered("答案", metadata={"feedback": "offer"}), ActionExecuted("action_listen")]

    async def go():
        await agent.tracker_store.save(DialogueStateTracker.from_events("s", events))
        first = await record_rating(agent, "s", "web", "negative", metadata={"client": "c"})
        second = await record_rating(agent, "s", "web", "negative", "看不懂", {"client": "c"})
        third = await record_rating(agent, "s", "web", "positive")
        return first, second, third, await agent.tracker_store.retrieve("s")

    first, second, third, stored = asyncio.run(go())
    assert (first, second, third) == (RECORDED, RECORDED, feedback.ALREADY_RATED)
    dicts = [event.as_dict() for event in stored.events]
    added = dicts[len(events):]
    assert [e["metadata"] for e in added] == [
        {"client": "c", "feedback": "negative"},
        {"client": "c", "feedback": "negative", "feedback_reason": "看不懂"}]
    assert all(e["event"] == "user" for e in added)  # nothing else: no action, no slot, no bot
    rows = list(unanswered_rows("s", dicts))
    assert [(row.text, row.outcome) for row in rows] == [("谁能申请", THUMBS_DOWN)]

"""The human route carries a conversation code for the hotline (issue 19), driven with the
trackers Rasa would send (as tests/knowledge/test_actions.py)."""
import re

import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.answers import ActionAnswerTopic
from actions.fallback import ActionFallbackLadder
from core.conversation_codes import ALPHABET, CodeStore
from core.defaults import KNOWLEDGE_DIR

CODE = re.compile(f"[{ALPHABET}]{{6}}")
RANKING = [{"name": "nlu_fallback", "confidence": 0.5}, {"name": "ask_materials", "confidence": 0.3},
           {"name": "ask_fees", "confidence": 0.2}]
LADDER_HISTORY_ASKED = [
    {"event": "user", "text": "那个东西", "parse_data": {"intent": {"name": "nlu_fallback"}}},
    {"event": "action", "name": "action_fallback_ladder"},
    {"event": "slot", "name": "fallback_stage", "value": "asked"},
    {"event": "action", "name": "action_listen"},
]


def tracker(text, intent, sender="web-" + "a1" * 16, channel="web", history=()):
    latest = {"event": "user", "text": text, "input_channel": channel,
              "parse_data": {"intent": {"name": intent, "confidence": 0.9}, "entities": [],
                             "intent_ranking": RANKING if intent == "nlu_fallback" else [], "text": text}}
    return Tracker(sender_id=sender, slots={}, latest_message=latest["parse_data"],
                   events=[*history, latest], paused=False, followup_action=None,
                   active_loop={}, latest_action_name="action_listen")


def texts_of(action, tracker_):
    dispatcher = CollectingDispatcher()
    action.run(dispatcher, tracker_, {})
    return [message.get("text") or "" for message in dispatcher.messages]


def test_asking_for_a_person_gives_a_code_and_the_hotline_in_one_short_message(tmp_path):
    store = CodeStore(f"sqlite:///{tmp_path / 'codes.db'}", key="k")
    texts = texts_of(ActionAnswerTopic(codes=lambda: store), tracker("找人工", "ask_human"))
    line = texts[-1]
    code = store.issue("web-" + "a1" * 16).code  # the conversation's code, said again
    assert code in line and "12393" in line and "24小时" in line
    assert len(line) <= 120
    assert store.find(code).sender_id == "web-" + "a1" * 16


def test_the_same_conversation_asking_again_gets_the_same_code_on_every_route(tmp_path):
    store = CodeStore(f"sqlite:///{tmp_path / 'codes.db'}", key="k")
    first = texts_of(ActionAnswerTopic(codes=lambda: store), tracker("找人工", "ask_human"))[-1]
    ladder = texts_of(ActionFallbackLadder(codes=lambda: store),
                      tracker("就是那个", "nlu_fallback", history=LADDER_HISTORY_ASKED))
    code = CODE.search(first.split("：", 1)[1]).group(0)
    assert code in ladder[-1] and "12393" in ladder[-1]
    other = texts_of(ActionAnswerTopic(codes=lambda: store), tracker("找人工", "ask_human", sender="web-" + "b2" * 16))
    assert code not in other[-1]


def test_every_channel_gets_the_code_and_wechat_still_gets_the_handover_marker(tmp_path):
    store = CodeStore(f"sqlite:///{tmp_path / 'codes.db'}", key="k")
    for channel in ("web", "rest", "wechat", "socketio"):
        dispatcher = CollectingDispatcher()
        ActionAnswerTopic(codes=lambda: store).run(dispatcher, tracker("找人工", "ask_human", channel=channel,
                                                                        sender=f"s-{channel}"), {})
        text = "\n".join(m.get("text") or "" for m in dispatcher.messages)
        assert "打12393时报这个号" in text, channel
        custom = [m["custom"] for m in dispatcher.messages if m.get("custom")]
        assert custom == ([{"handover": "human"}] if channel == "wechat" else []), channel


def test_other_answers_and_the_ladders_first_question_issue_no_code(tmp_path):
    store = CodeStore(f"sqlite:///{tmp_path / 'codes.db'}", key="k")
    texts = texts_of(ActionAnswerTopic(codes=lambda: store), tracker("要带什么材料", "ask_materials"))
    assert not any("报这个号" in text for text in texts)
    texts = texts_of(ActionFallbackLadder(codes=lambda: store), tracker("那个东西", "nlu_fallback"))
    assert not any("报这个号" in text for text in texts)
    with store.engine.connect() as db:
        assert db.exec_driver_sql("SELECT COUNT(*) FROM conversation_codes").scalar() == 0


def test_without_the_store_the_human_route_still_answers_with_the_hotline():
    def broken():
        raise OSError("database is down")

    texts = texts_of(ActionAnswerTopic(codes=broken), tracker("找人工", "ask_human"))
    assert "12393" in "\n".join(texts) and not any("报这个号" in text for text in texts)
    texts = texts_of(ActionFallbackLadder(codes=broken), tracker("就是那个", "nlu_fallback",
                                                                 history=LADDER_HISTORY_ASKED))
    assert "12393" in "\n".join(texts)


def test_the_wording_lives_in_knowledge_with_the_hotline_as_a_variable():
    document = yaml.safe_load((KNOWLEDGE_DIR / "channel_texts.yml").read_text(encoding="utf-8"))
    template = document["conversation_code"]
    assert "{hotline}" in template and "{code}" in template and "12393" not in template
    for name, value in document.items():
        if name.startswith("console_code"):
            assert "12393" not in value, name

"""The answering and fallback actions, driven with the trackers Rasa would send."""
import pathlib

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.answers import ActionAnswerTopic
from actions.fallback import ActionFallbackLadder
from assistant.knowledge import KnowledgeBase


def user_event(text, intent, channel="rest", entities=(), ranking=()):
    return {
        "event": "user", "text": text, "input_channel": channel,
        "parse_data": {"intent": {"name": intent, "confidence": 0.9}, "entities": list(entities),
                       "intent_ranking": list(ranking), "text": text},
    }


def tracker(text, intent, *, slots=None, entities=(), channel="rest", ranking=(), history=()):
    latest = user_event(text, intent, channel, entities, ranking)
    return Tracker(
        sender_id="test", slots=dict(slots or {}), latest_message=latest["parse_data"],
        events=[*history, latest], paused=False, followup_action=None,
        active_loop={}, latest_action_name="action_listen",
    )


def disease(value, start=0):
    return {"entity": "disease", "value": value, "start": start, "end": start + len(value)}


def run(action, tracker_):
    dispatcher = CollectingDispatcher()
    events = action.run(dispatcher, tracker_, {})
    return dispatcher.messages, events


def text_of(messages):
    return "\n".join(message.get("text") or "" for message in messages)


def slot_events(events):
    return {event["name"]: event["value"] for event in events if event.get("event") == "slot"}


def test_disease_question_answers_the_canonical_disease():
    messages, events = run(ActionAnswerTopic(), tracker("血压高能办吗", "ask_disease_coverage",
                                                        entities=[disease("高血压")]))
    assert "「高血压」" in text_of(messages)
    assert slot_events(events)["knowledge_topic"] == "disease_coverage"


def test_follow_up_materials_use_the_remembered_disease():
    messages, _ = run(ActionAnswerTopic(), tracker("那要什么材料", "ask_materials",
                                                   slots={"disease": ["高血压"]}))
    assert "申请「高血压」" in text_of(messages)
    assert "诊断证明书" in text_of(messages)


def test_that_disease_then_continues_the_previous_question():
    messages, events = run(ActionAnswerTopic(), tracker(
        "那糖尿病呢", "inform_disease", entities=[disease("糖尿病", 1)],
        slots={"disease": ["糖尿病"], "knowledge_topic": "materials"}))
    assert "申请「糖尿病」" in text_of(messages)
    assert slot_events(events)["knowledge_topic"] == "materials"


def test_several_diseases_in_one_message_are_each_answered():
    messages, _ = run(ActionAnswerTopic(), tracker(
        "高血压和冠心病都能办吗", "ask_disease_coverage",
        entities=[disease("冠心病", 4), disease("高血压", 0)]))
    text = text_of(messages)
    assert text.index("「高血压」") < text.index("「冠心病」")
    assert "1. " in text and "2. " in text


def test_unknown_disease_is_not_confused_with_the_previous_one():
    messages, events = run(ActionAnswerTopic(), tracker(
        "我妈得了白癜风能办不", "ask_disease_coverage", slots={"disease": ["高血压"]}))
    text = text_of(messages)
    assert "“白癜风”不在我知道的病种里" in text and "12393" in text
    assert "高血压" not in text
    assert slot_events(events)["disease"] is None


def test_which_diseases_lists_the_catalogue_even_after_a_disease_question():
    messages, _ = run(ActionAnswerTopic(), tracker("那哪些病可以办", "ask_disease_coverage",
                                                   slots={"disease": ["高血压"]}))
    text = text_of(messages)
    assert "国家公布的门诊慢特病（到外省看病也能直接结算）" in text and "冠心病" in text
    follow_up, _ = run(ActionAnswerTopic(), tracker("这个病能办不", "ask_disease_coverage",
                                                    slots={"disease": ["高血压"]}))
    assert "「高血压」" in text_of(follow_up)


def test_general_materials_without_any_disease():
    messages, _ = run(ActionAnswerTopic(), tracker("材料", "ask_materials"))
    text = text_of(messages)
    assert text.startswith("申请一般要准备")
    assert "南充市门诊慢特病病种待遇认定申请表" in text


def test_buttons_on_the_web_and_typed_suggestions_on_text_only_channels():
    for channel in ("web", "socketio", "rest", "wechat"):
        web, _ = run(ActionAnswerTopic(), tracker("在哪里申请", "ask_channel", channel=channel))
        assert web[-1]["buttons"] and all(len(b["title"]) <= 10 for b in web[-1]["buttons"]), channel
    plain, _ = run(ActionAnswerTopic(), tracker("在哪里申请", "ask_channel", channel="cmdline"))
    assert not plain[-1]["buttons"]
    assert "您可以接着问：“手机上怎么申请”" in plain[-1]["text"]


def test_unverified_topic_carries_the_caveat_and_verified_does_not():
    unverified, _ = run(ActionAnswerTopic(), tracker("人脸识别不过", "ask_real_name"))
    assert "以南充市医保部门最新官方指引为准，可拨打 12393" in text_of(unverified)
    # the human route rests on the national hotline only (a confirmed source)
    verified, _ = run(ActionAnswerTopic(), tracker("电话多少", "ask_human"))
    assert "以南充市医保部门最新官方指引为准" not in text_of(verified)


RANKING = [{"name": "nlu_fallback", "confidence": 0.55}, {"name": "affirm", "confidence": 0.4},
           {"name": "ask_materials", "confidence": 0.3}, {"name": "ask_channel", "confidence": 0.2}]


def test_fallback_first_asks_between_the_two_best_guesses():
    messages, events = run(ActionFallbackLadder(), tracker("那个东西", "nlu_fallback", ranking=RANKING))
    assert "您是想问“要准备哪些材料”，还是“在哪里申请”" in messages[0]["text"]
    assert [b["payload"] for b in messages[0]["buttons"]] == ["/ask_materials", "/ask_channel", "/ask_human"]
    assert slot_events(events)["fallback_stage"] == "asked"


def test_fallback_twice_in_a_row_offers_the_human_route():
    history = [
        user_event("那个东西", "nlu_fallback", ranking=RANKING),
        {"event": "action", "name": "action_fallback_ladder"},
        {"event": "slot", "name": "fallback_stage", "value": "asked"},
        {"event": "action", "name": "action_listen"},
    ]
    messages, events = run(ActionFallbackLadder(), tracker("就是那个", "nlu_fallback",
                                                           ranking=RANKING, history=history))
    assert "12393" in messages[0]["text"] and "医保经办大厅" in messages[0]["text"]
    assert "您是想问" not in messages[0]["text"]
    assert slot_events(events)["fallback_stage"] is None


def test_fallback_after_an_answered_question_starts_again_with_the_question():
    history = [
        user_event("那个东西", "nlu_fallback", ranking=RANKING),
        {"event": "slot", "name": "fallback_stage", "value": "asked"},
        user_event("/ask_materials", "ask_materials"),
        {"event": "action", "name": "action_answer_topic"},
    ]
    messages, _ = run(ActionFallbackLadder(), tracker("嗯", "nlu_fallback", ranking=RANKING, history=history))
    assert "您是想问" in messages[0]["text"]


def test_dialogue_fallback_reverts_the_message():
    _, events = run(ActionFallbackLadder(), tracker("要得", "affirm", ranking=[
        {"name": "affirm", "confidence": 0.9}, {"name": "ask_materials", "confidence": 0.05}]))
    assert events[0]["event"] == "rewind"


def test_when_knowledge_cannot_load_the_reply_still_gives_the_hotline_from_contacts(monkeypatch):
    import yaml

    import actions.answers
    import actions.fallback

    contacts = yaml.safe_load(
        (pathlib.Path(__file__).resolve().parents[2] / "knowledge" / "contacts.yml").read_text(encoding="utf-8"))
    hotline = f"{contacts['hotline']['name']} {contacts['hotline']['number']}"

    def broken():
        raise RuntimeError("knowledge/ unreadable")

    monkeypatch.setattr(actions.answers, "get_knowledge", broken)
    monkeypatch.setattr(actions.fallback, "get_knowledge", broken)
    answer, _ = run(ActionAnswerTopic(), tracker("材料", "ask_materials"))
    handoff, _ = run(ActionFallbackLadder(), tracker("就是那个", "nlu_fallback", ranking=RANKING))
    for messages in (answer, handoff):
        assert hotline in text_of(messages) and "{" not in text_of(messages)


def test_punctuation_only_asks_for_words_and_offers_the_hotline():
    fallback_only = [{"name": "nlu_fallback", "confidence": 1.0}]
    for text in ("？？？", "...", "😀"):
        messages, events = run(ActionFallbackLadder(), tracker(text, "nlu_fallback", ranking=fallback_only))
        assert "请直接打字告诉我您想问什么" in messages[0]["text"] and "12393" in messages[0]["text"]
        assert "还是没弄明白" not in messages[0]["text"]
        assert slot_events(events) == {"fallback_stage": None}  # the ladder's stage is kept


def test_with_no_guess_to_offer_the_first_rung_asks_for_other_words_then_the_human_route():
    # "qwerty asdf": the content guard leaves only nlu_fallback; greet has no title either
    kb = KnowledgeBase.load(pathlib.Path(__file__).resolve().parents[2] / "knowledge")
    for ranking in ([{"name": "nlu_fallback", "confidence": 1.0}],
                    [{"name": "nlu_fallback", "confidence": 0.3}, {"name": "greet", "confidence": 0.2}]):
        messages, events = run(ActionFallbackLadder(), tracker("qwerty asdf", "nlu_fallback", ranking=ranking))
        assert [m["text"] for m in messages] == kb.rephrase().messages
        assert "还是没弄明白" not in messages[0]["text"]
        assert slot_events(events) == {"fallback_stage": "asked"}
        history = [user_event("qwerty asdf", "nlu_fallback", ranking=ranking),
                   {"event": "action", "name": "action_fallback_ladder"}, *events,
                   {"event": "action", "name": "action_listen"}]
        second, _ = run(ActionFallbackLadder(), tracker("asdf", "nlu_fallback", ranking=ranking,
                                                        slots={"fallback_stage": "asked"}, history=history))
        assert "还是没弄明白" in second[0]["text"] and "12393" in second[0]["text"]


def test_punctuation_between_two_unclear_messages_does_not_restart_the_ladder():
    history = [
        user_event("那个东西", "nlu_fallback", ranking=RANKING),
        {"event": "action", "name": "action_fallback_ladder"},
        {"event": "slot", "name": "fallback_stage", "value": "asked"},
        {"event": "action", "name": "action_listen"},
    ]
    punctuation = tracker("？？？", "nlu_fallback", ranking=[{"name": "nlu_fallback", "confidence": 1.0}],
                          slots={"fallback_stage": "asked"}, history=history)
    _, events = run(ActionFallbackLadder(), punctuation)
    assert slot_events(events) == {"fallback_stage": "asked"}
    history += [user_event("？？？", "nlu_fallback"),
                {"event": "action", "name": "action_fallback_ladder"}, *events,
                {"event": "action", "name": "action_listen"}]
    messages, _ = run(ActionFallbackLadder(), tracker("就是那个", "nlu_fallback", ranking=RANKING,
                                                      slots={"fallback_stage": "asked"}, history=history))
    assert "12393" in messages[0]["text"] and "您是想问" not in messages[0]["text"]


def test_human_request_carries_the_handover_marker_only_on_wechat():
    # WeChat may hand the user to 客服 (wechat_channel: transfer_customer_service); the text
    # with the hotline is always there, and other channels get only the text
    for channel, marked in (("wechat", True), ("rest", False), ("web", False)):
        messages, _ = run(ActionAnswerTopic(), tracker("找人工", "ask_human", channel=channel))
        assert "12393" in text_of(messages)
        custom = [m["custom"] for m in messages if m.get("custom")]
        assert custom == ([{"handover": "human"}] if marked else []), channel
    messages, _ = run(ActionAnswerTopic(), tracker("要带什么材料", "ask_materials", channel="wechat"))
    assert not any(m.get("custom") for m in messages)


def test_the_ladders_human_route_is_handed_to_a_person_where_the_channel_can():
    history = [
        user_event("那个东西", "nlu_fallback", ranking=RANKING),
        {"event": "action", "name": "action_fallback_ladder"},
        {"event": "slot", "name": "fallback_stage", "value": "asked"},
        {"event": "action", "name": "action_listen"},
    ]
    for channel, marked in (("wechat", True), ("web", False)):
        messages, _ = run(ActionFallbackLadder(), tracker("就是那个", "nlu_fallback", ranking=RANKING,
                                                          history=history, channel=channel))
        assert "12393" in text_of(messages)
        custom = [m["custom"] for m in messages if m.get("custom")]
        assert custom == ([{"handover": "human"}] if marked else []), channel
    # the first unclear message is a question, never a hand-over
    messages, _ = run(ActionFallbackLadder(), tracker("那个东西", "nlu_fallback", ranking=RANKING,
                                                      channel="wechat"))
    assert not any(m.get("custom") for m in messages)

"""One disease matcher (assistant/disease_match.py) for the bot and the agent console.

For the same words, the bot's answer (action_answer_topic) and the console's knowledge
entry (web/knowledge_view.py) name the same diseases and say the same text (the console
leaves out the caveat line: it shows 未核实 instead). First with the parses the trained
model gives (recorded below, no Rasa needed), then through the real stack: the bot over
REST and the console's own search path, both asking the running Rasa.
"""
import asyncio
import itertools

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.answers import ActionAnswerTopic
from assistant.content import get_knowledge
from assistant.disease_match import disease_like_phrases, match_question
from assistant.knowledge import visible_length
from assistant.presentation import reply_problems
from core.progress_client import ProgressClient
from web.clients import RasaClient
from web.console import Console
from web.knowledge_view import entry_for

KB = get_knowledge()
HOTLINE = KB.contacts["hotline"]["number"]
UNKNOWN = "“{}”不在我知道的病种里"
CATALOGUE = "国家公布的门诊慢特病（"


def disease(value, start, typed=None):
    """A `disease` entity as Rasa returns it; `typed`: the words, when the synonym mapper
    replaced them by the canonical value ("血糖高" -> 糖尿病)."""
    return {"entity": "disease", "value": value, "start": start, "end": start + len(typed or value)}


# (words, intent and `disease` entities as the trained model parses them, known, unknown)
TABLE = [
    ("糖尿病能申请慢特病吗", "ask_disease_coverage", [disease("糖尿病", 0)], ["糖尿病"], []),
    ("高血压", "inform_disease", [disease("高血压", 0)], ["高血压"], []),
    ("血压高要什么材料", "ask_materials", [disease("高血压", 0)], ["高血压"], []),
    ("肝移植后一直吃药能办吗", "ask_disease_coverage",
     [disease("器官移植术后抗排异治疗", 0)], ["器官移植术后抗排异治疗"], []),
    # the NLU found no entity: the catalogue's aliases in the text still count, for both
    ("肝移植后一直吃药能办吗", "ask_disease_coverage", [], ["器官移植术后抗排异治疗"], []),
    ("尿毒症透析要什么材料", "ask_materials", [disease("尿毒症透析", 0)], ["尿毒症透析"], []),
    ("帕金森", "inform_disease", [disease("帕金森病", 0)], ["帕金森病"], []),
    ("帕金森能办吗", "ask_disease_coverage", [disease("帕金森病", 0)], ["帕金森病"], []),
    ("高血压和冠心病都能办吗", "ask_disease_coverage",
     [disease("冠心病", 4), disease("高血压", 0)], ["高血压", "冠心病"], []),
    ("我血糖高，还有血压高，能办吗", "ask_disease_coverage", [], ["糖尿病", "高血压"], []),
    ("白癜风能办吗", "ask_disease_coverage", [], [], ["白癜风"]),
    ("发烧能申请慢特病吗", "ask_disease_coverage", [], [], ["发烧"]),
    ("发烧要什么材料", "ask_materials", [], [], ["发烧"]),
    ("我妈感冒发烧了能办门特不", "ask_disease_coverage", [], [], ["感冒", "发烧"]),
    ("哪些病能办", "ask_disease_coverage", [], [], []),
    ("要带哪些材料", "ask_materials", [], [], []),
    ("谁能申请", "ask_eligibility", [], [], []),
    # who may apply, naming a disease: answered for that disease
    ("高血压的人能申请吗", "ask_eligibility", [disease("高血压", 0)], ["高血压"], []),
    ("发烧的人能申请吗", "ask_eligibility", [], [], ["发烧"]),
    ("得了白癜风符合申请条件吗", "ask_eligibility", [], [], ["白癜风"]),
    # issue 14: a known and an unknown disease in one message are both answered
    ("我有高血压和痛风", "ask_disease_coverage", [disease("高血压", 2)], ["高血压"], ["痛风"]),
    ("我有高血压和痛风", "ask_disease_coverage", [], ["高血压"], ["痛风"]),
    ("痛风和糖尿病要什么材料", "ask_materials", [disease("糖尿病", 3)], ["糖尿病"], ["痛风"]),
    # … a cancer the catalogue does not list is answered as 恶性肿瘤门诊放化疗
    ("胰腺癌能申请不", "ask_disease_coverage", [], ["恶性肿瘤门诊放化疗"], []),
    ("白血病能办不", "ask_disease_coverage", [], ["恶性肿瘤门诊放化疗"], []),
    ("淋巴瘤要什么材料", "ask_materials", [], ["恶性肿瘤门诊放化疗"], []),
    ("子宫肌瘤能办吗", "ask_disease_coverage", [], [], ["子宫肌瘤"]),
    # … and a symptom alias still finds the disease
    ("血糖高能办吗", "ask_disease_coverage", [disease("糖尿病", 0, "血糖高")], ["糖尿病"], []),
    ("乙肝能申请吗", "ask_disease_coverage", [disease("慢性病毒性肝炎", 0, "乙肝")], ["慢性病毒性肝炎"], []),
]
IDS = [f"{text}-{'nlu' if entities else 'text'}" for text, _, entities, _, _ in TABLE]


def bot_answer(text, intent, entities, slots=None):
    message = {"intent": {"name": intent, "confidence": 0.95}, "entities": list(entities), "text": text}
    tracker = Tracker(sender_id="match-test", slots=dict(slots or {}), latest_message=message,
                      events=[{"event": "user", "text": text, "input_channel": "rest", "parse_data": message}],
                      paused=False, followup_action=None, active_loop={}, latest_action_name="action_listen")
    dispatcher = CollectingDispatcher()
    events = ActionAnswerTopic().run(dispatcher, tracker, {})
    return [m.get("text") or "" for m in dispatcher.messages], events


def without_caveat(lines):
    caveat = KB.caveat()
    return [line for line in "\n".join(lines).split("\n") if line.strip() and line.strip() != caveat]


@pytest.mark.parametrize("text, intent, entities, known, unknown", TABLE, ids=IDS)
def test_bot_and_console_answer_the_same_words_alike(text, intent, entities, known, unknown):
    match = match_question(KB, intent, text, entities)
    assert (list(match.diseases), list(match.unknown)) == (known, unknown)

    bot, _ = bot_answer(text, intent, entities)
    console = entry_for(intent, entities, text)
    assert console is not None
    assert (console["diseases"], console["unknown"]) == (known, unknown)
    assert without_caveat(bot) == console["text"].split("\n"), (bot, console["text"])
    for name in known:
        assert f"「{name}」" in console["text"]
    for name in unknown:
        assert UNKNOWN.format(name) in console["text"] or f"“{name}”" in console["text"]


@pytest.mark.parametrize("text, intent", [
    ("发烧能申请慢特病吗", "ask_disease_coverage"), ("发高烧能办门特不", "ask_disease_coverage"),
    ("感冒能办慢特病吗", "ask_disease_coverage"), ("拉肚子能申请吗", "ask_disease_coverage"),
    ("发烧的人能申请吗", "ask_eligibility"), ("发烧符合条件吗", "ask_eligibility"),
])
def test_an_everyday_illness_gets_the_plain_not_in_the_list_answer(text, intent):
    """Neither the catalogue nor the general eligibility answer, and no policy claim: the
    same two lines every unknown name gets, both from knowledge/topics.yml
    (disease_coverage: unknown + check_list)."""
    bot, events = bot_answer(text, intent, [], slots={"disease": ["高血压"]})
    reply = "\n".join(bot)
    name = disease_like_phrases(text)[0]
    variants = KB.topics["disease_coverage"]["variants"]
    assert reply == "\n".join([
        KB._render(variants["unknown"], name=name), KB._render(variants["check_list"])])
    assert CATALOGUE not in reply and "高血压" not in reply and HOTLINE in reply
    assert {"event": "slot", "name": "disease", "value": None, "timestamp": None} in events


def test_who_may_apply_without_a_disease_keeps_the_general_answer():
    """"谁能申请" after a disease question: the eligibility answer, not the old disease."""
    bot, events = bot_answer("那谁能申请", "ask_eligibility", [], slots={"disease": ["高血压"]})
    assert "\n".join(bot) == "\n".join(KB.answer_topic("eligibility").messages)
    assert {"event": "slot", "name": "knowledge_topic", "value": "eligibility", "timestamp": None} in events


def test_the_conversation_context_is_the_bots_alone():
    """The bot remembers the previous disease and topic; the console has no conversation."""
    bot, _ = bot_answer("那要什么材料", "ask_materials", [], slots={"disease": ["高血压"]})
    assert "申请「高血压」" in "\n".join(bot)
    assert "「高血压」" not in entry_for("ask_materials", [], "那要什么材料")["text"]
    follow, _ = bot_answer("那糖尿病呢", "inform_disease", [disease("糖尿病", 1)],
                           slots={"disease": ["糖尿病"], "knowledge_topic": "materials"})
    assert "申请「糖尿病」" in "\n".join(follow)


def test_a_disease_found_only_in_the_text_is_remembered_for_the_follow_up():
    _, events = bot_answer("肝移植后一直吃药能办吗", "ask_disease_coverage", [])
    assert {"event": "slot", "name": "disease", "value": ["器官移植术后抗排异治疗"],
            "timestamp": None} in events


# --- through the real stack --------------------------------------------------------------
WORDS = ["糖尿病能申请慢特病吗", "高血压", "肝移植后一直吃药能办吗", "尿毒症透析要什么材料", "帕金森",
         "帕金森能办吗", "白癜风能办吗", "发烧能申请慢特病吗", "发烧的人能申请吗", "发烧要什么材料",
         "高血压的人能申请吗", "哪些病能办"]
_senders = itertools.count()


@pytest.mark.xdist_group("shared_stack")
@pytest.mark.parametrize("text", WORDS)
def test_bot_and_console_agree_through_the_running_stack(running_stack, text):
    """The console's search path (Rasa's NLU parse, then the knowledge entry) and the bot's
    reply over REST for the same words, each from a fresh conversation."""
    rasa = RasaClient(running_stack.rasa_url, running_stack.environ["RASA_AUTH_TOKEN"], timeout=30)
    console = Console(rasa, ProgressClient("http://127.0.0.1:9", "", 1.0), agent_secret="")
    entry = asyncio.run(console.question(text))
    bot = [m.get("text") or "" for m in running_stack.say(f"match-e2e-{next(_senders)}", text)]
    assert entry["kind"] == "answer", entry
    assert without_caveat(bot) == entry["text"].split("\n"), (bot, entry)
    if text.startswith(("发烧", "白癜风")):
        name = text[:2] if text.startswith("发烧") else "白癜风"
        assert UNKNOWN.format(name) in entry["text"] and CATALOGUE not in entry["text"]


@pytest.mark.parametrize("intent", ["ask_other_place", "ask_materials"])
def test_the_console_leaves_out_either_caveat_and_shows_the_flag(intent):
    """The console shows 未核实 instead of the caveat, the one for readers outside 南充 too."""
    entry = entry_for(intent, [], "")
    assert entry is not None and entry["verified"] is False
    assert "为准" not in entry["text"] and "0817" not in entry["text"]


# --- issue 14: known + unknown together, cancers by name, symptom aliases -----------------
COVERAGE = KB.topics["disease_coverage"]["variants"]
MATERIALS = KB.topics["materials"]["variants"]
CANCER = "恶性肿瘤门诊放化疗"


def reply_for(text, intent="ask_disease_coverage", entities=(), slots=None):
    bot, events = bot_answer(text, intent, entities, slots=slots)
    assert reply_problems(bot, HOTLINE) == [], bot  # one hedge, one hotline, ≤200 a message
    assert all(visible_length(message) <= 200 for message in bot)
    return "\n".join(bot), events


def disease_slot(value):
    return {"event": "slot", "name": "disease", "value": value, "timestamp": None}


def test_a_known_and_an_unknown_disease_are_both_answered():
    """"我有高血压和痛风": 高血压 gets its answer, 痛风 its own not-in-the-list line."""
    match = match_question(KB, "ask_disease_coverage", "我有高血压和痛风", [disease("高血压", 2)])
    assert (match.diseases, match.unknown) == (("高血压",), ("痛风",))
    reply, events = reply_for("我有高血压和痛风", entities=[disease("高血压", 2)])
    assert "1. " + KB._render(COVERAGE["verified_line"], name="高血压") in reply
    assert "2. " + KB._render(COVERAGE["unknown"], name="痛风") in reply
    assert reply.endswith(KB._render(COVERAGE["check_list"]))  # one next step: check the list
    assert disease_slot(["高血压"]) in events  # "那要什么材料" next is about 高血压


def test_materials_for_a_known_and_an_unknown_disease():
    reply, _ = reply_for("痛风和糖尿病要什么材料", "ask_materials", [disease("糖尿病", 3)])
    assert "申请「糖尿病」" in reply
    assert KB._render(MATERIALS["unknown_note"], name="痛风") in reply


@pytest.mark.parametrize("text, entities", [
    ("那痛风呢", []),
    ("那痛风和冠心病呢", [disease("冠心病", 4)]),
])
def test_a_remembered_disease_is_not_answered_when_the_message_names_one(text, entities):
    """After "高血压能办吗", a message naming any disease (known or not) is about that one."""
    slots = {"disease": ["高血压"], "knowledge_topic": "disease_coverage"}
    match = match_question(KB, "inform_disease", text, entities, previous_topic="disease_coverage",
                           remembered=["高血压"])
    assert "高血压" not in match.diseases and match.unknown == ("痛风",)
    reply, events = reply_for(text, "inform_disease", entities, slots=slots)
    assert "高血压" not in reply and KB._render(COVERAGE["unknown"], name="痛风") in reply
    # only unknown names: the remembered disease is forgotten; else the new ones are kept
    assert disease_slot(list(match.diseases) or None) in events


def test_the_remembered_disease_still_answers_a_follow_up_without_a_name():
    match = match_question(KB, "ask_materials", "那要什么材料", [], remembered=["高血压"])
    assert match.diseases == ("高血压",) and match.unknown == () and match.said == ()


@pytest.mark.parametrize("name", ["胰腺癌", "白血病", "淋巴瘤", "骨肉瘤", "恶性黑色素瘤"])
def test_a_cancer_the_catalogue_does_not_list_is_answered_as_the_cancer_entry(name):
    match = match_question(KB, "ask_disease_coverage", f"{name}能申请不", [], remembered=["高血压"])
    assert (match.diseases, match.unknown, match.named_here) == ((CANCER,), (), True)
    reply, events = reply_for(f"{name}能申请不", slots={"disease": ["高血压"]})
    assert KB._render(COVERAGE["covered_line"], name=name, disease=CANCER) in reply
    assert KB._render(COVERAGE["verified_line"], name=CANCER) in reply
    assert UNKNOWN.format(name) not in reply and "「高血压」" not in reply
    # the match is our reading, not the catalogue's: the one next step is to check the list
    assert reply.endswith(KB._render(COVERAGE["check_list"]))
    assert disease_slot([CANCER]) in events
    materials, _ = reply_for(f"{name}要什么材料", "ask_materials")
    assert KB._render(MATERIALS["covered_line"], name=name, disease=CANCER) in materials
    assert f"申请「{CANCER}」" in materials


def test_a_cancer_the_catalogue_lists_is_matched_directly():
    """肺癌 is an alias of the cancer entry: no line explaining the match."""
    match = match_question(KB, "ask_disease_coverage", "肺癌能办吗", [])
    assert match.diseases == (CANCER,)
    reply, _ = reply_for("肺癌能办吗")
    assert "属于恶性肿瘤" not in reply and "肺癌" not in reply
    assert reply.endswith(KB._render(COVERAGE["footer"]))


@pytest.mark.parametrize("name", ["子宫肌瘤", "脂肪瘤", "肿瘤"])
def test_a_plain_tumour_is_answered_conditionally(name):
    """"…瘤" may be benign (子宫肌瘤): not in the list, and only *if* malignant the cancer entry."""
    match = match_question(KB, "ask_disease_coverage", f"{name}能办吗", [], remembered=["高血压"])
    assert (match.diseases, match.unknown, match.forget_remembered) == ((), (name,), True)
    reply, events = reply_for(f"{name}能办吗", slots={"disease": ["高血压"]})
    assert reply == "\n".join([KB._render(COVERAGE["covered_maybe"], name=name, disease=CANCER),
                               KB._render(COVERAGE["check_list"])])
    assert "属于恶性肿瘤" not in reply and disease_slot(None) in events
    materials, _ = reply_for(f"{name}要什么材料", "ask_materials")
    assert KB._render(MATERIALS["covered_maybe"], name=name, disease=CANCER) in materials
    assert f"申请「{CANCER}」" not in materials


@pytest.mark.parametrize("name", ["良性肿瘤", "恶性贫血", "白癜风"])
def test_no_tumour_or_a_benign_one_is_a_plain_unknown_name(name):
    reply, _ = reply_for(f"{name}能办吗")
    assert reply == "\n".join([KB._render(COVERAGE["unknown"], name=name), KB._render(COVERAGE["check_list"])])


@pytest.mark.parametrize("text, entities, name", [
    ("血糖高能办吗", [disease("糖尿病", 0, "血糖高")], "糖尿病"),
    ("血糖高能办吗", [], "糖尿病"),
    ("我高血糖能申请不", [], "糖尿病"),
    ("乙肝能申请吗", [disease("慢性病毒性肝炎", 0, "乙肝")], "慢性病毒性肝炎"),
    ("丙肝能办吗", [], "慢性病毒性肝炎"),
    ("血压高能办吗", [disease("高血压", 0, "血压高")], "高血压"),
])
def test_a_symptom_alias_finds_the_disease_and_says_a_diagnosis_is_needed(text, entities, name):
    match = match_question(KB, "ask_disease_coverage", text, entities)
    assert match.diseases == (name,)
    line = KB._render(COVERAGE["loose_line"], name=name)
    reply, _ = reply_for(text, entities=entities)
    assert reply.count(line) == 1 and f"「{name}」" in reply
    materials, _ = reply_for(text.replace("能办吗", "要什么材料").replace("能申请吗", "要什么材料"),
                             "ask_materials", entities)
    assert KB._render(MATERIALS["loose_line"], name=name) in materials and f"申请「{name}」" in materials


@pytest.mark.parametrize("text, entities", [
    ("糖尿病能办吗", [disease("糖尿病", 0)]),
    ("慢性乙肝能办吗", [disease("慢性病毒性肝炎", 0, "慢性乙肝")]),
    ("我血糖高，确诊了糖尿病", []),  # the diagnosis is named as well
    ("那要什么材料", []),  # remembered: the line was said when the word was
])
def test_the_diagnosis_line_is_only_for_a_symptom_alias(text, entities):
    match = match_question(KB, "ask_disease_coverage", text, entities, remembered=["糖尿病"])
    answer = KB.answer_topic("disease_coverage", match.diseases, match.unknown, match.said)
    assert answer.diseases and "要有医院确诊的" not in "\n".join(answer.messages)

"""knowledge/ as an operator edits it: validation, rendering, reloading. No Rasa needed."""
import pathlib
import shutil
import time

import pytest
import yaml

from assistant import contacts
from assistant.content import get_knowledge, texts
from assistant.disease_match import disease_like_phrases
from assistant.knowledge import KnowledgeBase, visible_length
from assistant.knowledge_checks import invented_numbers, source_texts, validate

ROOT = pathlib.Path(__file__).resolve().parents[2]
KNOWLEDGE = ROOT / "knowledge"
CAVEAT = "以南充市医保部门最新官方指引为准"


@pytest.fixture()
def kb():
    return KnowledgeBase.load(KNOWLEDGE)


@pytest.fixture()
def editable(tmp_path):
    """A copy of knowledge/ an individual test may break."""
    target = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, target)
    return target


def edit(directory: pathlib.Path, name: str, change) -> None:
    path = directory / name
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(document)
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")


def errors_for(directory: pathlib.Path):
    return [p for p in validate(KnowledgeBase.load(directory), ROOT / "domain") if p.startswith("ERROR")]


def test_the_shipped_knowledge_is_valid(kb):
    assert [p for p in validate(kb, ROOT / "domain") if p.startswith("ERROR")] == []


def test_every_entry_names_a_known_source_and_verified_flag(kb):
    entries = list(kb.topics.values()) + kb.channels + [kb.contacts["hotline"], kb.contacts["window"]]
    entries += (yaml.safe_load((KNOWLEDGE / "diseases.yml").read_text(encoding="utf-8")))["diseases"]
    for entry in entries:
        assert entry["source"] in kb.sources
        assert isinstance(entry["verified"], bool)


def test_alias_claimed_by_two_diseases_is_rejected(editable):
    edit(editable, "diseases.yml", lambda d: d["diseases"][1]["aliases"].append("血压高"))
    assert any("血压高" in e and "more than one" in e for e in errors_for(editable))


def test_unknown_source_id_is_rejected(editable):
    def change(document):
        document["topics"]["materials"]["source"] = "some_blog"
    edit(editable, "topics.yml", change)
    assert any("some_blog" in e for e in errors_for(editable))


def test_missing_verified_flag_is_rejected(editable):
    edit(editable, "diseases.yml", lambda d: d["diseases"][0].pop("verified"))
    assert any("高血压" in e and "verified" in e for e in errors_for(editable))


def test_topic_without_an_intent_and_intent_without_a_topic_are_rejected(editable):
    def change(document):
        document["topics"]["orphan"] = {"answer": "孤儿", "source": "guide", "verified": True}
    edit(editable, "topics.yml", change)
    edit(editable, "intents.yml", lambda d: d["intents"].update({"ask_materials": {"topic": "nope", "title": "材料"}}))
    errors = errors_for(editable)
    assert any("orphan" in e for e in errors)
    assert any("ask_materials" in e and "nope" in e for e in errors)


def test_too_long_answer_and_unknown_placeholder_are_rejected(editable):
    def change(document):
        document["topics"]["eligibility"]["answer"] = "很长的回答" * 70
        document["topics"]["rejected"]["answer"] = "请拨打 {hotlne}"
    edit(editable, "topics.yml", change)
    errors = errors_for(editable)
    assert any("rejected" in e and "hotlne" in e for e in errors)
    edit(editable, "topics.yml", lambda d: d["topics"]["rejected"].update({"answer": "请拨打 {hotline}"}))
    assert any("eligibility" in e and "characters" in e for e in errors_for(editable))


def test_every_message_is_short_enough_for_older_readers(kb):
    everything = [d.name for d in kb.diseases]
    for topic in kb.topics:
        for answer in (kb.answer_topic(topic), kb.answer_topic(topic, everything[:4], ["白癜风"])):
            for message in answer.messages:
                assert visible_length(message) <= 300, (topic, message)


def test_caveat_only_on_unverified_topics(kb):
    for topic_id, topic in kb.topics.items():
        text = "\n".join(kb.answer_topic(topic_id).messages)
        assert (CAVEAT in text) == (not topic["verified"]), topic_id
        assert "12393" in kb.caveat()


def test_no_invented_numbers_in_answers(kb):
    """Ratios, limits and time limits are not in the sources: no % or amounts or day
    counts, in digits or in Chinese numerals (the shared guard; validate-knowledge runs it
    over every rendered text, test_invented_numbers_are_found_in_every_kind_of_text)."""
    sources = source_texts(kb)
    for topic_id in kb.topics:
        for diseases in ([], ["高血压"], ["冠心病"]):
            text = "\n".join(kb.answer_topic(topic_id, diseases).messages)
            assert invented_numbers(text, sources) == [], (topic_id, text)
    reimbursement = "\n".join(kb.answer_topic("reimbursement").messages)
    # unverified (FACTS.md: ratios are not confirmed): the one standard caveat with 12393
    assert "最新官方指引为准" in reimbursement and "12393" in reimbursement


@pytest.mark.parametrize("text, invented", [
    ("审核一般需要15个工作日。", ["15个工作日"]),
    ("审核一般需要十五个工作日。", ["十五个工作日"]),
    ("审核一般需要１５个工作日。", ["１５个工作日"]),
    ("报销比例为 70%，起付线三百元。", ["70%", "三百元"]),
    ("报销比例为百分之七十，年度限额两万元。", ["百分之七十", "两万元"]),
    ("能报七成。", ["七成"]),
    ("认定有效期两年，到期前一个月续办。", ["两年", "一个月"]),
    ("有效期半年。", ["半年"]),
    ("结果一般两周内出来。", ["两周"]),
    ("四川目前有四十七种门诊慢特病。", ["四十七种门诊慢特病"]),
    ("全省共62个病种。", ["62个病种"]),
])
def test_the_guard_finds_numbers_in_digits_and_chinese_numerals(text, invented):
    assert invented_numbers(text) == invented


@pytest.mark.parametrize("text", [
    "申请一般要准备这4样：", "身份证号的最后4位", "【微信小程序】第1步 / 共8步", "点一种方式，我带您一步步办。",
    "二级及以上医保定点医疗机构", "同时满足这两条，就能申请", "请稍后再发一次", "拨打 12393，外地先拨区号0817",
])
def test_step_numbers_counts_of_things_and_the_hotline_are_not_policy_numbers(text):
    assert invented_numbers(text) == []


def test_a_number_the_sources_give_is_allowed(kb):
    sources = source_texts(kb)
    assert any("2023 年" in text for text in sources)  # the national notice
    for text in ("国家医保局2023年的通知", "二〇二三年国家公布的名单", "国家公布的5种病"):
        assert invented_numbers(text) != []
        assert invented_numbers(text, sources) == [], text
    assert invented_numbers("国家医保局2024年的通知", sources) == ["2024年"]



@pytest.mark.parametrize("name, key, label", [
    ("topics.yml", "materials", "topics.yml materials"),
    ("progress_replies.yml", "submitted", "progress_replies.yml submitted"),
    ("responses.yml", "utter_thanks", "responses.yml utter_thanks"),
    ("channel_texts.yml", "plain_buttons", "channel_texts.yml plain_buttons"),
    ("guide_steps.yml", None, "guide_steps.yml miniprogram step 1"),
])
def test_invented_numbers_are_found_in_every_kind_of_text(editable, name, key, label):
    """`make validate-knowledge` runs the guard over every rendered reply: a Chinese-numeral
    time limit in any knowledge file is an error."""
    from tools.validate_knowledge import validate_all

    path = editable / name
    if name == "topics.yml":
        edit(editable, name, lambda d: d["topics"]["materials"].update(
            {"answer": d["topics"]["materials"]["answer"] + "审核一般需要十五个工作日。"}))
    elif name == "guide_steps.yml":
        text = path.read_text(encoding="utf-8")
        old = "打开微信，在顶部搜索框搜“四川医保公共服务平台”。"
        assert text.count(old) == 1
        path.write_text(text.replace(old, old + "审核一般需要十五个工作日。"), encoding="utf-8")
    else:
        edit(editable, name, lambda d: d.update({key: d[key] + "审核一般需要十五个工作日。"}))
    errors = [p for p in validate_all(editable, ROOT / "domain", ROOT) if p.startswith("ERROR")]
    assert any(label in e and "十五个工作日" in e for e in errors), errors
    assert all("十五个工作日" in e for e in errors), errors


def test_the_shipped_texts_pass_the_guard_and_the_console_lockout_matches_its_text():
    from tools.validate_knowledge import SERVICE_NUMBERS, validate_all
    from web.app import LOGIN_WINDOW_SECONDS

    assert [p for p in validate_all() if p.startswith("ERROR")] == []
    assert SERVICE_NUMBERS["channel_texts.yml console_too_many_failures"] == [f"{LOGIN_WINDOW_SECONDS // 60} 分钟"]
    assert texts("channel_texts").templates["console_too_many_failures"].count(
        f"{LOGIN_WINDOW_SECONDS // 60} 分钟") == 1


def test_verified_and_unverified_diseases_are_phrased_differently(kb):
    confirmed = "\n".join(kb.answer_topic("disease_coverage", ["高血压"]).messages)
    assert "「高血压」在国家公布的门诊慢特病名单里，到外省看这个病也能直接结算" in confirmed
    unconfirmed = "\n".join(kb.answer_topic("disease_coverage", ["冠心病"]).messages)
    assert "没能核实" in unconfirmed and "以官方目录为准" in unconfirmed


def test_several_diseases_are_each_answered(kb):
    text = "\n".join(kb.answer_topic("disease_coverage", ["高血压", "冠心病"], ["白癜风"]).messages)
    assert "1. 「高血压」" in text and "2. 「冠心病」" in text and "3. “白癜风”不在我知道的病种里" in text


def test_unknown_disease_points_to_the_official_list_and_12393(kb):
    text = "\n".join(kb.answer_topic("disease_coverage", [], ["白癜风"]).messages)
    assert "“白癜风”不在我知道的病种里" in text and "12393" in text


def test_disease_materials_include_the_general_list(kb):
    text = "\n".join(kb.answer_topic("materials", ["糖尿病"]).messages)
    assert "申请「糖尿病」" in text
    for item in kb.topics["materials"]["items"]:
        assert item in text


def test_aliases_map_to_canonical_names(kb):
    assert kb.canonical("血压高") == "高血压"
    assert kb.canonical("高血糖") == "糖尿病"
    assert kb.canonical("透析") == "尿毒症透析"
    assert kb.canonical("高血壓") == "高血压"  # traditional input is normalised first
    assert kb.canonical("白癜风") is None


def test_longest_name_wins_when_recognising_in_text(kb):
    assert kb.recognise_diseases("尿毒症透析要什么材料") == ["尿毒症透析"]
    assert kb.recognise_diseases("我血糖高，还有血压高") == ["糖尿病", "高血压"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("我妈得了白癜风能办不", ["白癜风"]),
        ("我屋头老汉儿有痛风可以申请慢特病不", ["痛风"]),
        ("那这个病能报不", []),
        ("哪些病可以办", []),
        ("我妈能不能申请", []),
        ("門診慢特病要什麼材料", []),
    ],
)
def test_disease_like_phrases(text, expected):
    assert disease_like_phrases(text) == expected


def test_operator_edit_shows_up_without_restart_and_broken_edit_keeps_last_good(editable):
    first = get_knowledge(editable)
    assert "补一句测试" not in first.answer_topic("human").messages[0]

    def change(document):
        document["topics"]["human"]["answer"] += "\n补一句测试。"
    time.sleep(0.01)
    edit(editable, "topics.yml", change)
    assert "补一句测试" in get_knowledge(editable).answer_topic("human").messages[0]

    (editable / "topics.yml").write_text("topics: [unclosed", encoding="utf-8")
    still = get_knowledge(editable)
    assert "补一句测试" in still.answer_topic("human").messages[0]


def test_fallback_question_offers_two_titled_guesses_and_a_human_route(kb):
    answer = kb.fallback_question(["nlu_fallback", "greet", "ask_materials", "ask_channel", "ask_human"])
    assert "您是想问" in answer.messages[0]
    assert [b["payload"] for b in answer.buttons] == ["/ask_materials", "/ask_channel", "/ask_human"]
    assert answer.buttons[-1]["title"] == "都不是"
    assert kb.fallback_question(["greet", "thanks"]) is None
    handoff = kb.handoff().messages[0]
    assert "12393" in handoff and "医保经办大厅" in handoff


def _line_with(text, word):
    return next(line for line in text.splitlines() if word in line)


def test_disease_list_separates_verified_from_unverified_diseases(kb):
    text = "\n".join(kb.answer_topic("disease_coverage").messages)
    verified = [d.name for d in kb.diseases if d.verified]
    unverified = [d.name for d in kb.diseases if not d.verified]
    assert verified and unverified
    national = _line_with(text, "高血压")
    others = _line_with(text, "冠心病")
    assert national != others
    assert all(name in national for name in verified)
    assert not any(name in national for name in unverified)
    assert all(name in others for name in unverified) and "未核实" in others
    assert "以四川省、南充市现行官方目录为准" in text
    assert all(visible_length(message) <= 300 for message in kb.answer_topic("disease_coverage").messages)


def test_a_disease_edited_to_unverified_moves_out_of_the_national_list(editable):
    def demote(document):
        for entry in document["diseases"]:
            if entry["name"] == "糖尿病":
                entry["verified"] = False
    edit(editable, "diseases.yml", demote)
    text = "\n".join(KnowledgeBase.load(editable).answer_topic("disease_coverage").messages)
    assert "糖尿病" not in _line_with(text, "高血压")
    assert "糖尿病" in _line_with(text, "未核实")


def test_verified_topics_say_only_what_the_guide_says(kb):
    upload = "\n".join(kb.answer_topic("upload_quality").messages)
    assert "签字" not in upload  # the guide asks for clear, complete, unobstructed files only
    advice = _line_with(upload, "光线")
    assert "不是官方要求" in advice
    rejected = kb.topics["rejected"]
    assert "常见原因" not in rejected["answer"]  # no reasons the sources do not give
    if not rejected["verified"]:
        assert CAVEAT in "\n".join(kb.answer_topic("rejected").messages)


def test_hotline_texts_come_from_contacts_yml(editable, monkeypatch):
    edit(editable, "contacts.yml", lambda d: d["hotline"].update({"number": "99999", "name": "测试热线"}))
    assert contacts.with_contacts("拨打{hotline_name} {hotline}", editable) == "拨打测试热线 99999"
    (editable / "topics.yml").write_text("topics: [broken", encoding="utf-8")  # rest unusable
    fresh = editable.parent / "fresh"
    shutil.copytree(editable, fresh)
    assert contacts.contact_context(fresh)["hotline"] == "99999"
    (fresh / "contacts.yml").unlink()  # the last good version stays in service
    assert contacts.contact_context(fresh)["hotline"] == "99999"
    never_read = editable.parent / "never_read"
    shutil.copytree(fresh, never_read)  # no contacts.yml, never read before: the default
    assert contacts.contact_context(never_read)["hotline"] == "12393"


def test_channel_answer_on_wechat_has_only_the_buttons_numbered():
    """On WeChat the buttons become "1. …" lines and a reply "2" picks the second button;
    the channel list itself must not invite "选2"."""
    answer = KnowledgeBase.load(ROOT / "knowledge").answer_topic("channels")
    text = "\n".join(answer.messages)
    assert sum(line.startswith("· ") for line in text.splitlines()) == 3
    assert not any(line.strip()[:2] in ("1.", "2.", "3.") for line in text.splitlines())
    assert "选1" not in text and "选2" not in text


# --- issue 14: cancers by name, symptom aliases (knowledge/diseases.yml) -----------------
CANCER = "恶性肿瘤门诊放化疗"


def test_a_cancer_name_is_covered_by_the_cancer_entry_a_plain_tumour_only_maybe(kb):
    for name in ("胰腺癌", "白血病", "淋巴瘤", "骨肉瘤", "恶性黑色素瘤"):
        assert kb.covering(name) == (CANCER, True), name
    for name in ("子宫肌瘤", "脂肪瘤", "肿瘤"):
        assert kb.covering(name) == (CANCER, False), name
    for name in ("良性肿瘤", "恶性贫血", "白癜风", "痛风"):
        assert kb.covering(name) is None, name
    # the catalogue's own names are matched directly, never through `covers`
    assert kb.canonical("肺癌") == CANCER and kb.covering("肺癌") is None
    assert kb.recognise_diseases("胰腺癌能办不") == []


def test_a_loose_alias_still_finds_its_disease(kb):
    for word, name in (("血糖高", "糖尿病"), ("高血糖", "糖尿病"), ("乙肝", "慢性病毒性肝炎"),
                       ("丙肝", "慢性病毒性肝炎"), ("血压高", "高血压")):
        assert kb.canonical(word) == name and kb.is_loose(word), word
    for word in ("糖尿病", "2型糖尿病", "慢性乙肝", "高血压", "肺癌", "白癜风"):
        assert not kb.is_loose(word), word


def test_known_and_unknown_diseases_render_together_with_their_lines(kb):
    """What the matcher hands over for "我有高血压和痛风" / "胰腺癌" / "血糖高"."""
    variants = kb.topics["disease_coverage"]["variants"]
    text = "\n".join(kb.answer_topic("disease_coverage", ["高血压"], ["痛风"], [("高血压", "高血压")]).messages)
    assert "1. 「高血压」" in text and "2. “痛风”不在我知道的病种里" in text
    text = "\n".join(kb.answer_topic("disease_coverage", [CANCER], [], [(CANCER, "胰腺癌")]).messages)
    assert "“胰腺癌”属于恶性肿瘤" in text and text.count("为准") == 1 and text.count("12393") == 1
    assert kb._render(variants["covered_line"], name="胰腺癌", disease=CANCER) in text
    text = "\n".join(kb.answer_topic("disease_coverage", ["糖尿病"], [], [("糖尿病", "血糖高")]).messages)
    assert "要有医院确诊的糖尿病诊断" in text
    # the same disease named without its words (remembered): no such lines
    text = "\n".join(kb.answer_topic("disease_coverage", ["糖尿病", CANCER]).messages)
    assert "属于恶性肿瘤" not in text and "确诊" not in text
    text = "\n".join(kb.answer_topic("materials", ["糖尿病"], [], [("糖尿病", "血糖高")]).messages)
    assert "申请「糖尿病」" in text and "要有医院确诊的糖尿病诊断" in text
    text = "\n".join(kb.answer_topic("materials", [], ["子宫肌瘤"]).messages)
    assert "“子宫肌瘤”如果是恶性肿瘤" in text and f"申请「{CANCER}」" not in text


@pytest.mark.parametrize("diseases, unknown, said", [
    ([CANCER, "糖尿病"], ["子宫肌瘤", "痛风"], [(CANCER, "胰腺癌"), (CANCER, "白血病"), ("糖尿病", "血糖高")]),
    (["高血压", "慢性病毒性肝炎"], ["白癜风"], [("高血压", "血压高"), ("慢性病毒性肝炎", "乙肝")]),
])
def test_the_new_lines_keep_the_reading_rules(kb, diseases, unknown, said):
    from assistant.presentation import reply_problems
    for topic in ("disease_coverage", "materials"):
        messages = kb.answer_topic(topic, diseases, unknown, said).messages
        assert reply_problems(messages, "12393") == [], messages
        assert all(visible_length(message) <= 200 for message in messages)
    for topic in ("disease_coverage", "materials"):
        for key in ("covered_line", "covered_maybe", "loose_line"):
            line = kb._render(kb.topics[topic]["variants"][key], name="胰腺癌", disease=CANCER)
            assert visible_length(line) <= 60 and "为准" not in line and "12393" not in line


@pytest.mark.parametrize("change, expected", [
    (lambda entry: entry.update(loose_aliases=["血糖偏高"]), "loose alias '血糖偏高' is not one of its aliases"),
    (lambda entry: entry.update(loose_aliases="血糖高"), "loose_aliases must be a list"),
    (lambda entry: entry.update(covers={"endings": ["癌"], "suffixes": ["瘤"]}), "covers.suffixes is not one of"),
    (lambda entry: entry.update(covers={"endings": []}), "covers.endings must be a non-empty list"),
    (lambda entry: entry.update(covers={"endings": ["*癌"]}), "covers.endings must be a non-empty list"),
    (lambda entry: entry.update(covers={"sure_prefixes": ["恶性"]}), "covers needs endings or maybe_endings"),
    (lambda entry: entry.update(covers={"endings": ["病"]}), "covers would take"),
])
def test_loose_aliases_and_covers_are_checked(editable, change, expected):
    def edit_diabetes(document):
        change(next(d for d in document["diseases"] if d["name"] == "糖尿病"))
    edit(editable, "diseases.yml", edit_diabetes)
    errors = errors_for(editable)
    assert any(expected in e for e in errors), errors


def test_the_disease_variants_are_required(editable):
    edit(editable, "topics.yml", lambda d: d["topics"]["materials"]["variants"].pop("loose_line"))
    assert any("materials: variants.loose_line missing" in e for e in errors_for(editable))

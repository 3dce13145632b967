"""Training and test data: enough examples for every intent, the styles users type,
disease names from the catalogue, and a test set that is never trained on."""
import pathlib
import re

import pytest
import yaml

from assistant.knowledge import KnowledgeBase
from core.textnorm import normalize_text
from tests.support import has_traditional

ROOT = pathlib.Path(__file__).resolve().parents[2]
MARKUP = re.compile(r"\[([^\]]+)\]\(([^)]+)\)")
DIALECT = ("咋个", "啷个", "啥子", "莫得", "要得", "晓得", "哪点", "得不得行", "老汉儿", "屋头", "嘛", "噻", "喃")


def examples(paths):
    found = {}
    for path in paths:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for block in document.get("nlu") or []:
            if "intent" in block:
                lines = [l.strip()[2:] for l in block["examples"].splitlines() if l.strip().startswith("- ")]
                found.setdefault(block["intent"], []).extend(lines)
    return found


TRAIN = examples(sorted((ROOT / "data" / "nlu").glob("topics*.yml")))
ALL_TRAIN = examples(sorted((ROOT / "data" / "nlu").rglob("*.yml")))
TEST = examples([ROOT / "tests" / "nlu" / "test_set.yml"])
KB = KnowledgeBase.load(ROOT / "knowledge")
ANSWERED = [intent for intent, entry in KB.intents.items() if entry.get("topic")]


def domain_intents():
    declared = set()
    for path in (ROOT / "domain").glob("*.yml"):
        for entry in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("intents") or []:
            declared.add(entry if isinstance(entry, str) else next(iter(entry)))
    declared.discard("nlu_fallback")  # predicted by the FallbackClassifier, never labelled
    return sorted(declared)


@pytest.mark.parametrize("intent", domain_intents())
def test_every_intent_has_25_examples_in_the_styles_people_type(intent):
    # data/nlu/generated/ (the disease lookup) is excluded: written by hand only
    lines = [line for path in sorted((ROOT / "data" / "nlu").glob("*.yml"))
             for line in examples([path]).get(intent, [])]
    assert len(lines) >= 25, f"{intent}: {len(lines)} examples"
    assert len(set(lines)) == len(lines), f"{intent}: duplicate examples"
    plain = [MARKUP.sub(r"\1", line) for line in lines]
    assert any(has_traditional(line) for line in plain), f"{intent}: no traditional example"
    assert any(word in line for line in plain for word in DIALECT), f"{intent}: no Sichuan dialect example"
    assert any(len(line) <= 4 for line in plain), f"{intent}: no short fragment"



# What normalize_text changes besides traditional characters; each once passed for
# "a traditional example" (inform_application had only the full-width colon).
NOT_TRADITIONAL = ["申请编号：NC2025005555", "要带  哪些材料", "ＡＰＰ上咋个申请", "申请表在哪下载？",
                   "好的👍", "身份证后四位１２３Ｘ", "咋个\u3000办"]


@pytest.mark.parametrize("text", NOT_TRADITIONAL)
def test_full_width_spaces_and_emoji_are_not_traditional(text):
    assert normalize_text(text) != text  # changed by the normaliser, but not traditional
    assert not has_traditional(text)


@pytest.mark.parametrize("text", ["要帶哪些材料", "醫保卡咋個辦", "乾燥綜合征能辦不", "申請編號：NC2025005555"])
def test_traditional_characters_are_found(text):
    assert has_traditional(text)


@pytest.mark.parametrize("intent", ANSWERED)
def test_each_knowledge_intent_has_25_varied_examples(intent):
    lines = TRAIN.get(intent, [])
    assert len(lines) >= 25, intent
    plain = [MARKUP.sub(r"\1", line) for line in lines]
    assert any(has_traditional(line) for line in plain), f"{intent}: no traditional example"
    assert any(word in line for line in plain for word in DIALECT), f"{intent}: no Sichuan dialect example"
    assert any(len(line) <= 4 for line in plain), f"{intent}: no short fragment"


def test_test_set_is_large_and_never_trained_on():
    test_lines = [(intent, MARKUP.sub(r"\1", line)) for intent, lines in TEST.items() for line in lines]
    assert len(test_lines) >= 300
    trained = {normalize_text(MARKUP.sub(r"\1", l)) for lines in ALL_TRAIN.values() for l in lines}
    overlap = [text for _, text in test_lines if normalize_text(text) in trained]
    assert overlap == []


def test_test_set_covers_every_intent_in_the_domain():
    assert set(domain_intents()) - set(TEST) == set()


def test_annotated_diseases_are_in_the_catalogue():
    for lines in list(TRAIN.values()) + list(TEST.values()):
        for line in lines:
            for text, entity in MARKUP.findall(line):
                if entity == "disease":
                    assert KB.canonical(text), f"{text!r} is annotated but not in knowledge/diseases.yml"


def test_generated_lookup_holds_every_name_longest_first(tmp_path):
    from tools import build_nlu

    out = tmp_path / "diseases.yml"
    build_nlu.build(ROOT / "knowledge", out, tmp_path / "jieba", tmp_path / "responses.yml")
    document = yaml.safe_load(out.read_text(encoding="utf-8"))
    lookup = [l[2:] for l in document["nlu"][0]["examples"].splitlines() if l.startswith("- ")]
    names = {n for d in KB.diseases for n in (d.name, *d.aliases)}
    assert set(lookup) == names
    assert [len(n) for n in lookup] == sorted((len(n) for n in lookup), reverse=True)
    synonyms = {b["synonym"]: b["examples"] for b in document["nlu"][1:]}
    assert "血压高" in synonyms["高血压"] and "透析" in synonyms["尿毒症透析"]


def test_no_slot_mapping_runs_an_action_behind_the_scenes():
    """A custom mapping with `action:` makes Rasa run that action inside
    action_extract_slots on every user message. For our answer and fallback actions that
    hidden run changed the conversation (the fallback ladder's stage), so slots set by
    actions use a plain `type: custom` mapping."""
    named = []
    for path in sorted((ROOT / "domain").glob("*.yml")):
        slots = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("slots") or {}
        for slot, spec in slots.items():
            for mapping in spec.get("mappings") or []:
                if mapping.get("type") == "custom" and mapping.get("action"):
                    named.append(f"{path.name}: {slot} -> {mapping['action']}")
    assert not named, named

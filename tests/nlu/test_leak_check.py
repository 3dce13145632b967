"""Held-out NLU test sets measure something only when they are not the training data again:
bench/leak_check.py finds near-copies, and tests/nlu/hard_set.yml covers every intent in
the styles people in 南充 type."""
import pathlib
import re
from collections import Counter

import pytest
import yaml

from assistant.knowledge import KnowledgeBase
from bench import leak_check
from core.textnorm import to_simplified
from tests.support import has_traditional

ROOT = pathlib.Path(__file__).resolve().parents[2]
HARD_SET = ROOT / "tests" / "nlu" / "hard_set.yml"
TEST_SET = ROOT / "tests" / "nlu" / "test_set.yml"
FRESH_SET = ROOT / "tests" / "nlu" / "fresh_set.yml"
BLIND_SET = ROOT / "tests" / "nlu" / "blind_set.yml"
MARKUP = re.compile(r"\[([^\]]+)\]\(([^)]+)\)")
DIALECT = ("咋个", "啷个", "啥子", "莫得", "要得", "得不得行", "晓得", "哪点", "老汉儿", "屋头",
           "嘛", "噻", "喃", "哦")


def domain_intents():
    declared = set()
    for path in (ROOT / "domain").glob("*.yml"):
        for entry in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("intents") or []:
            declared.add(entry if isinstance(entry, str) else next(iter(entry)))
    declared.discard("nlu_fallback")  # predicted by the FallbackClassifier, never labelled
    return sorted(declared)


def hard_set_by_intent():
    found = {}
    for text, intent in leak_check.read_examples(HARD_SET):
        found.setdefault(intent, []).append(text)
    return found


HARD = hard_set_by_intent()


@pytest.fixture(scope="module")
def training_index():
    return leak_check.build_index()


# --- the checker itself -------------------------------------------------------------------

def write_nlu(path: pathlib.Path, blocks):
    lines = ['version: "3.1"', "nlu:"]
    for intent, examples in blocks.items():
        lines += [f"- intent: {intent}", "  examples: |"] + [f"    - {e}" for e in examples]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_finds_planted_near_copies_and_exact_copies(tmp_path):
    train = write_nlu(tmp_path / "train.yml", {
        "ask_application_form": ["申请表在哪里下载"],
        "ask_materials": ["要带哪些材料", "[高血压](disease)要什么材料"],
        "greet": ["你好"],
    })
    test = write_nlu(tmp_path / "test.yml", {
        "ask_application_form": ["申请表从哪里下载"],          # one character changed
        "ask_materials": [
            "要帶哪些材料？",                                   # same after normalisation
            "[血压高](disease)要什么材料",                      # two edits (高血压 -> 血压高)
            "我老汉儿的病历搞丢了，申请的时候咋个办",             # genuinely different
        ],
        "greet": ["你好", "您好"],                              # exact; too short for 1 edit
    })
    found = leak_check.near_copies(test, [train])
    assert sorted(found) == sorted([
        ("申请表从哪里下载", "ask_application_form", "申请表在哪里下载"),
        ("要帶哪些材料？", "ask_materials", "要带哪些材料"),
        ("血压高要什么材料", "ask_materials", "高血压要什么材料"),
        ("你好", "greet", "你好"),
    ])


def test_a_copy_of_a_real_training_example_is_found(tmp_path):
    training = leak_check.read_examples(ROOT / "data" / "nlu" / "topics_materials.yml")
    copied, intent = next((text, intent) for text, intent in training if len(text) >= 8)
    edited = copied[:-1] + ("吗" if copied[-1] != "吗" else "呢")
    test = write_nlu(tmp_path / "test.yml", {intent: [copied, edited, "这句话和训练数据毫无关系的嘛"]})
    assert [text for text, _, _ in leak_check.near_copies(test)] == [
        leak_check.strip_markup(copied), leak_check.strip_markup(edited)]


def test_generated_lookup_is_not_training_text():
    assert all("generated" not in path.parts for path in leak_check.training_paths())
    assert leak_check.training_paths(), "no training files found"


def test_limits_scale_with_length():
    assert [leak_check.allowed_distance(n) for n in (2, 3, 4, 7, 8, 30)] == [0, 0, 1, 1, 2, 2]
    assert leak_check.edit_distance("申请表在哪里下载", "申请表从哪里下载", 2) == 1
    assert leak_check.edit_distance("abcdef", "abcxyz", 2) == 3  # cut off: limit + 1


# --- the test sets ----------------------------------------------------------------------

def test_hard_set_has_no_near_copies(training_index):
    assert leak_check.near_copies(HARD_SET, index=training_index) == []


def test_test_set_has_no_near_copies(training_index):
    assert leak_check.near_copies(TEST_SET, index=training_index) == []


@pytest.mark.parametrize("path", [FRESH_SET, BLIND_SET], ids=["fresh", "blind"])
def test_blind_written_set_has_no_near_copies_and_covers_every_intent(path, training_index):
    assert leak_check.near_copies(path, index=training_index) == []
    examples = leak_check.read_examples(path)
    assert {intent for _, intent in examples} == set(domain_intents())
    counts = Counter(leak_check.normalise(text) for text, _ in examples)
    assert [text for text, count in counts.items() if count > 1] == []


def test_hard_set_covers_every_domain_intent_without_duplicates():
    assert set(HARD) == set(domain_intents())
    short = {intent: len(lines) for intent, lines in HARD.items() if len(lines) < 15}
    assert short == {}, f"fewer than 15 utterances: {short}"
    counts = Counter(leak_check.normalise(text) for lines in HARD.values() for text in lines)
    assert [text for text, count in counts.items() if count > 1] == []


@pytest.mark.parametrize("intent", domain_intents())
def test_hard_set_has_every_style_for_each_intent(intent):
    plain = [MARKUP.sub(r"\1", line) for line in HARD.get(intent, [])]
    assert any(word in to_simplified(line) for line in plain for word in DIALECT), f"{intent}: no dialect"
    assert any(has_traditional(line) for line in plain), f"{intent}: no traditional characters"
    assert any(len(leak_check.normalise(line)) <= 4 for line in plain), f"{intent}: no fragment of <= 4 characters"


@pytest.mark.parametrize("path", [HARD_SET, FRESH_SET, BLIND_SET], ids=["hard", "fresh", "blind"])
def test_annotations_are_real_entities(path):
    kb = KnowledgeBase.load(ROOT / "knowledge")
    progress = yaml.safe_load((ROOT / "data" / "nlu" / "progress.yml").read_text(encoding="utf-8"))
    pattern = next(block["examples"] for block in progress["nlu"] if block.get("regex") == "application_no")
    application_no = re.compile(pattern.strip()[2:])
    lines = [line.strip()[2:] for line in path.read_text(encoding="utf-8").splitlines()
             if line.strip().startswith("- ")]
    assert lines
    for line in lines:
        for text, entity in MARKUP.findall(line):
            if entity == "disease":
                assert kb.canonical(to_simplified(text)), f"{text!r} is annotated but not in knowledge/diseases.yml"
            else:
                assert entity == "application_no", line
                assert application_no.fullmatch(text), line

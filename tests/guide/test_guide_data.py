"""knowledge/guide_steps.yml follows the facts policy and renders short replies."""
import pathlib
import re

import pytest

from assistant import guide
from tests.support import skip_or_fail

ROOT = pathlib.Path(__file__).resolve().parents[2]
# The project guide lives beside the repository (../shared/seed/), locally and in CI.
SEED = ROOT.parent / "shared" / "seed" / "guide.zh-Hans.md"
DATA = guide.load_guide(ROOT / "knowledge" / "guide_steps.yml")
CHANNELS = list(DATA.channels)
WALKS = [(channel, whom) for channel in CHANNELS for whom in guide.WHOM_VALUES]


def all_steps():
    for channel in CHANNELS:
        yield from DATA.steps[channel]


def test_the_three_channels_of_the_guide_are_there():
    assert set(CHANNELS) == {"miniprogram", "app", "window"}
    assert DATA.step_count("miniprogram") == 8
    assert DATA.step_count("app") == 8
    assert DATA.step_count("window") == 4


@pytest.mark.parametrize("step", list(all_steps()), ids=lambda step: step.id)
def test_every_step_names_its_source_and_whether_it_is_verified(step):
    assert str(step.raw.get("source", "")).strip(), step.id
    assert isinstance(step.raw.get("verified"), bool), step.id


@pytest.mark.parametrize("name", sorted(DATA.problems))
def test_every_problem_names_its_source_and_whether_it_is_verified(name):
    problem = DATA.problems[name]
    assert str(problem.get("source", "")).strip()
    assert isinstance(problem.get("verified"), bool)


@pytest.mark.parametrize("step", list(all_steps()), ids=lambda step: step.id)
def test_menu_labels_are_quoted_from_the_guide_not_invented(step):
    if not SEED.exists():
        skip_or_fail(f"the project guide is not at {SEED}")
    guide_text = SEED.read_text(encoding="utf-8")
    for whom in guide.WHOM_VALUES:
        for label in step.tap(whom):
            assert label in guide_text, f"{step.id}: “{label}” is not in the guide"


def test_unverified_menu_labels_come_with_the_caveat():
    assert "以实际界面为准" in DATA.caveat
    state = guide.GuideState(channel="miniprogram", for_whom="self", step=3, active=True)
    text = guide.Renderer(DATA).step(state).text
    assert "“我要办” → “门诊慢特病病种待遇认定”" in text
    assert "以实际界面为准" in text


@pytest.mark.parametrize("channel,whom", WALKS)
def test_every_step_reply_is_short_enough_for_older_readers(channel, whom):
    for number in range(1, DATA.step_count(channel) + 1):
        state = guide.GuideState(channel=channel, for_whom=whom, step=number, active=True)
        for wechat in (False, True):
            text = guide.Renderer(DATA, wechat).step(state, "接着上次的第8步（想从头来，点“重新开始”）：").text
            visible = re.sub(r"<[^>]+>", "", text)
            assert len(visible) <= 300, (channel, whom, number, len(visible))
        turn = guide.troubleshoot(DATA, "遇到问题", state)
        assert len(turn.replies[0].text) <= 300


def test_family_and_self_walks_differ_where_the_guide_says_so():
    for channel in ("miniprogram", "app"):
        texts = {
            whom: guide.Renderer(DATA).step(
                guide.GuideState(channel=channel, for_whom=whom, step=4, active=True)
            ).text
            for whom in guide.WHOM_VALUES
        }
        assert "为自己申请" in texts["self"] and "为他人申请" not in texts["self"]
        assert "为他人申请" in texts["family"]


def test_window_steps_do_not_invent_an_address_or_hours():
    for step in DATA.steps["window"]:
        for whom in guide.WHOM_VALUES:
            text = step.text(whom) + step.tip(whom)
            assert not re.search(r"\d+号|路\d|\d{1,2}:\d{2}", text), step.id


def _rule_intents(rule):
    intents = set()
    for step in rule["steps"]:
        for option in step.get("or", [step]):
            if "intent" in option:
                intents.add(option["intent"])
    return intents


def test_every_knowledge_answer_during_the_walk_is_followed_by_the_offer_to_continue():
    """Knowledge intents answered by action_answer_topic must be in one of the guide's
    interruption rules, or a question mid-walk would end without "继续第N步吗？"."""
    import yaml

    intents_file = ROOT / "knowledge" / "intents.yml"
    if not intents_file.exists():
        skip_or_fail("knowledge/intents.yml not present")
    listed = yaml.safe_load(intents_file.read_text(encoding="utf-8"))["intents"]
    answered = {name for name, entry in listed.items() if (entry or {}).get("topic")}
    rules = yaml.safe_load((ROOT / "data" / "rules" / "guide.yml").read_text(encoding="utf-8"))["rules"]
    by_name = {rule["rule"]: rule for rule in rules}
    offer = _rule_intents(by_name["a question answered during the walk, then offer to continue"])
    stuck = _rule_intents(by_name["stuck at face recognition or uploads during the walk"])
    assert not offer & stuck
    assert answered <= offer | stuck, f"add to data/rules/guide.yml: {sorted(answered - offer - stuck)}"


def test_sources_are_ids_from_the_shared_source_list():
    import yaml

    sources_file = ROOT / "knowledge" / "sources.yml"
    if not sources_file.exists():
        skip_or_fail("knowledge/sources.yml not present")
    known = set(yaml.safe_load(sources_file.read_text(encoding="utf-8"))["sources"])
    entries = list(all_steps())
    cited = [step.raw["source"] for step in entries]
    cited += [problem["source"] for problem in DATA.problems.values()]
    cited += [DATA.doc[key]["source"] for key in ("choose_channel", "choose_for_whom", "generic_problem", "finish")]
    cited += [channel["source"] for channel in DATA.channels.values()]
    assert set(cited) <= known, set(cited) - known


@pytest.mark.parametrize("step", list(all_steps()), ids=lambda step: step.id)
def test_tips_that_are_advice_are_marked_and_read_as_advice(step):
    source = step.raw.get("tip_source")
    assert source in (None, "advice"), step.id
    for whom in guide.WHOM_VALUES:
        tip = step.tip(whom)
        if source == "advice":
            assert tip.startswith("建议"), (step.id, tip)
        elif step.raw.get("verified"):
            # a verified step's tip must not give advice the guide does not contain
            assert "建议" not in tip, (step.id, tip)


def test_choosing_the_disease_tip_is_advice_not_a_guide_rule():
    for channel in ("miniprogram", "app"):
        step = next(s for s in DATA.steps[channel] if s.id.endswith("_details"))
        assert step.raw["tip_source"] == "advice" and step.raw["verified"] is False
        state = guide.GuideState(channel=channel, for_whom="self", step=step.number, active=True)
        assert "提示：建议选的病种和诊断证明上写的一致" in guide.Renderer(DATA).step(state).text


def test_the_guide_uses_the_hotline_of_contacts_yml():
    from assistant.content import get_knowledge

    assert DATA.hotline == str(get_knowledge().contacts["hotline"]["number"])


@pytest.mark.parametrize("step", list(all_steps()), ids=lambda step: step.id)
def test_unverified_steps_are_shown_with_a_caveat(step):
    channel = next(name for name, steps in DATA.steps.items() if step in steps)
    state = guide.GuideState(channel=channel, for_whom="self", step=step.number, active=True)
    text = guide.Renderer(DATA).step(state).text
    hedged = DATA.caveat in text or DATA.text("unverified_note") in text
    if not step.raw.get("verified"):
        assert hedged, step.id
    elif not step.tap("self"):
        assert DATA.text("unverified_note") not in text, step.id


@pytest.mark.parametrize("name", sorted(DATA.problems))
def test_advice_in_problems_reads_as_advice(name):
    problem = DATA.problems[name]
    if problem["source"] == "advice":
        texts = problem["text"].values() if isinstance(problem["text"], dict) else [problem["text"]]
        assert all("建议" in text for text in texts), name

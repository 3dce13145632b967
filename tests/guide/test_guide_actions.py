"""The guide's custom actions, run with a real rasa_sdk Tracker and CollectingDispatcher.

`rasa test core` does not execute custom actions, so the texts users see are checked here.
"""
import asyncio
import os
import pathlib
import subprocess
import sys
import time

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.guide import ActionGuide, ActionGuideOfferResume, ActionGuideTroubleshoot, ActionNotUnderstood

ROOT = pathlib.Path(__file__).resolve().parents[2]
STEPS = ROOT / "knowledge" / "guide_steps.yml"


class Conversation:
    """Slots carried from turn to turn, as Rasa would after applying SlotSet events."""

    def __init__(self, steps_file=STEPS, input_channel="web"):
        self.slots = {}
        self.input_channel = input_channel
        self.guide = ActionGuide(steps_file)
        self.troubleshoot = ActionGuideTroubleshoot(steps_file)
        self.offer = ActionGuideOfferResume(steps_file)
        self.not_understood = ActionNotUnderstood(steps_file)
        self.messages = []
        self.events = []
        self.latest = {}
        self.history = []  # tracker events so far: user messages and session starts

    def user(self, text, intent, **entities):
        self.latest = {
            "text": text,
            "intent": {"name": intent, "confidence": 1.0},
            "entities": [{"entity": name, "value": value} for name, value in entities.items()],
        }
        self.history.append({"event": "user", "text": text, "parse_data": self.latest,
                             "input_channel": self.input_channel})
        return self

    def new_session(self):
        self.history.append({"event": "session_started"})

    def run(self, action):
        tracker = Tracker(
            sender_id="guide-test",
            slots=dict(self.slots),
            latest_message=self.latest,
            events=list(self.history),
            paused=False,
            followup_action=None,
            active_loop={},
            latest_action_name="action_listen",
        )
        dispatcher = CollectingDispatcher()
        self.events = asyncio.run(action.run(dispatcher, tracker, {}))
        for event in self.events:
            assert event["event"] == "slot"
            self.slots[event["name"]] = event["value"]
        self.messages = dispatcher.messages
        return "\n".join(message.get("text") or "" for message in self.messages)

    def say(self, text, intent, **entities):
        return self.user(text, intent, **entities).run(self.guide)

    @property
    def buttons(self):
        return [button for message in self.messages for button in message.get("buttons") or []]


def test_walk_through_the_action_sets_slots_and_shows_buttons():
    talk = Conversation()
    talk.say("怎么申请", "start_guide")
    assert [b["title"] for b in talk.buttons] == ["用小程序办", "用APP办", "去窗口办"]
    assert talk.slots["guide_active"] is True and talk.slots["guide_awaiting"] == "channel"
    talk.say("/inform_guide_channel", "inform_guide_channel", guide_channel="app")
    text = talk.say("/inform_guide_for_whom", "inform_guide_for_whom", guide_for_whom="family")
    assert "【四川医保APP·为家人申请】第1步 / 共8步" in text
    assert talk.slots["guide_step"] == 1.0
    assert [b["payload"] for b in talk.buttons] == ["/guide_next", "/guide_back", "/guide_stuck", "/guide_restart", "/stop"]
    talk.say("下一步", "guide_next")
    assert "第2步 / 共8步" in "\n".join(m["text"] for m in talk.messages)
    assert [event["name"] for event in talk.events] == ["guide_step"]  # only what changed


def test_interruption_then_resume_at_the_same_step():
    talk = Conversation()
    talk.say("教我在小程序上申请", "start_guide")
    talk.say("给自己", "inform_guide_for_whom")
    talk.say("第4步", "guide_goto")
    # "诊断证明要盖章吗" is answered by the knowledge action; then the rule runs ours:
    text = talk.user("诊断证明要盖章吗", "ask_materials").run(talk.offer)
    assert text == "继续第4步吗？"
    assert talk.buttons[0]["title"] == "继续第4步"
    text = talk.say("继续", "guide_next")
    assert "第4步 / 共8步" in text and "为自己申请" in text


def test_not_understood_mid_walk_shows_the_same_step_again():
    talk = Conversation()
    talk.say("教我在小程序上申请", "start_guide")
    talk.say("帮我妈申请", "inform_guide_for_whom")
    talk.say("第3步", "guide_goto")
    text = talk.user("没看懂", "not_understood").run(talk.not_understood)
    assert text.startswith("没关系，这一步再说一遍")
    assert "第3步 / 共8步" in text and "为家人申请" in text
    assert talk.slots["guide_step"] == 3.0
    assert "第4步 / 共8步" in talk.say("好了", "guide_next")


def test_not_understood_after_a_question_mid_walk_repeats_the_step_not_the_offer():
    talk = Conversation()
    talk.say("app上怎么办", "start_guide")
    talk.say("给自己", "inform_guide_for_whom")
    talk.user("诊断证明要盖章吗", "ask_materials").run(talk.offer)
    text = talk.user("啥意思", "not_understood").run(talk.not_understood)
    assert "第1步 / 共8步" in text
    assert talk.slots["guide_awaiting"] is None


def test_not_understood_while_the_channel_is_asked_starts_with_the_recommended_channel():
    talk = Conversation()
    talk.say("怎么申请", "start_guide")
    text = talk.user("看不懂", "not_understood").run(talk.not_understood)
    # the same question again would be the same question twice in a row
    assert "【微信小程序】第1步 / 共8步" in text and talk.slots["guide_channel"] == "miniprogram"


def test_not_understood_outside_the_walk_offers_the_walk_and_a_person():
    talk = Conversation()
    text = talk.user("没看懂", "not_understood").run(talk.not_understood)
    assert "换个说法" in text and "12393" in text
    assert [b["payload"] for b in talk.buttons] == ["/start_guide", "/ask_human"]
    assert talk.events == []


def test_stuck_at_face_recognition_through_the_action():
    talk = Conversation()
    talk.say("app上怎么办", "start_guide")
    talk.say("给自己", "inform_guide_for_whom")
    talk.say("下一步", "guide_next")
    text = talk.user("刷脸刷不过去", "ask_real_name").run(talk.troubleshoot)
    assert "人脸识别不通过" in text and "继续第2步吗？" in text
    assert talk.slots["guide_awaiting"] == "resume"


def test_editing_the_knowledge_file_changes_the_reply_without_code_changes(tmp_path):
    document = yaml.safe_load(STEPS.read_text(encoding="utf-8"))
    document["steps"]["window"][0]["title"] = "测试标题：先把材料备齐"
    edited = tmp_path / "guide_steps.yml"
    edited.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")

    talk = Conversation(steps_file=edited)
    talk.say("去窗口怎么办理", "start_guide")
    text = talk.say("给自己", "inform_guide_for_whom")
    assert "第1步 / 共4步：测试标题：先把材料备齐" in text

    # the same running action picks up a later edit of the file
    document["steps"]["window"][0]["text"] = "这是改过的第一步说明。"
    time.sleep(0.01)
    edited.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    os.utime(edited, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    assert "这是改过的第一步说明。" in talk.say("第1步", "guide_goto")


def test_the_steps_file_can_be_chosen_with_GUIDE_STEPS_FILE(tmp_path):
    document = yaml.safe_load(STEPS.read_text(encoding="utf-8"))
    document["choose_channel"]["text"] = "环境变量指定的文件生效了"
    edited = tmp_path / "other.yml"
    edited.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    script = (
        "import asyncio\n"
        "from rasa_sdk import Tracker\n"
        "from rasa_sdk.executor import CollectingDispatcher\n"
        "from actions.guide import ActionGuide\n"
        "t = Tracker('s', {}, {'text': '怎么申请', 'intent': {'name': 'start_guide'}, 'entities': []},"
        " [], False, None, {}, 'action_listen')\n"
        "d = CollectingDispatcher()\n"
        "asyncio.run(ActionGuide().run(d, t, {}))\n"
        "print(d.messages[0]['text'])\n"
    )
    env = dict(os.environ, GUIDE_STEPS_FILE=str(edited), PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "环境变量指定的文件生效了" in out.stdout


def test_a_broken_knowledge_file_gives_a_polite_answer_with_12393(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("channels: [this is: not valid", encoding="utf-8")
    talk = Conversation(steps_file=broken)
    text = talk.say("怎么申请", "start_guide")
    assert "12393" in text
    assert talk.slots["guide_active"] is False


@pytest.mark.parametrize("input_channel,has_link", [("wechat", True), ("web", False), ("rest", False)])
def test_miniprogram_link_only_on_wechat_and_only_when_configured(tmp_path, input_channel, has_link):
    document = yaml.safe_load(STEPS.read_text(encoding="utf-8"))
    document["miniprogram_link"].update(
        appid="wx1234567890abcdef", path="pages/index/index", fallback_url="https://example.org/mzmtb"
    )
    configured = tmp_path / "configured.yml"
    configured.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    talk = Conversation(steps_file=configured, input_channel=input_channel)
    talk.say("教我在小程序上申请", "start_guide")
    text = talk.say("给自己", "inform_guide_for_whom")
    assert ('data-miniprogram-appid="wx1234567890abcdef"' in text) is has_link
    assert "搜“四川医保公共服务平台”" in text  # the plain instruction is always there

    plain = Conversation(input_channel=input_channel)  # the shipped file has no appid
    plain.say("教我在小程序上申请", "start_guide")
    assert "<a " not in plain.say("给自己", "inform_guide_for_whom")


def test_the_action_server_registers_exactly_the_guide_actions():
    from rasa_sdk.executor import ActionExecutor

    executor = ActionExecutor()
    executor.register_package("actions.guide")
    # register_package also registers Action classes other test modules imported already
    names = {name for name, action in executor.actions.items()
             if getattr(action, "__module__", "") == "actions.guide"}
    assert names == {"action_guide", "action_guide_troubleshoot", "action_guide_offer_resume",
                     "action_not_understood"}


def test_a_broken_edit_keeps_the_last_good_steps_in_use(tmp_path):
    import shutil

    steps_file = tmp_path / "guide_steps.yml"
    shutil.copy(STEPS, steps_file)
    talk = Conversation(steps_file)
    talk.say("教我在小程序上申请", "start_guide")
    talk.say("给自己", "inform_guide_for_whom")
    # an operator saves a file with a YAML error
    steps_file.write_text(STEPS.read_text(encoding="utf-8") + "\nsteps: [unclosed\n", encoding="utf-8")
    os.utime(steps_file, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    text = talk.say("下一步", "guide_next")
    assert "第2步 / 共8步" in text  # the walk goes on with the last good version


def test_the_validator_reports_a_broken_guide_file(tmp_path):
    import shutil

    from tools.validate_knowledge import main as validate_knowledge

    knowledge = tmp_path / "knowledge"
    shutil.copytree(ROOT / "knowledge", knowledge)
    assert validate_knowledge(["--knowledge", str(knowledge)]) == 0
    document = yaml.safe_load((knowledge / "guide_steps.yml").read_text(encoding="utf-8"))
    del document["steps"]["app"][1]["verified"]
    (knowledge / "guide_steps.yml").write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    assert validate_knowledge(["--knowledge", str(knowledge)]) == 1
    (knowledge / "guide_steps.yml").write_text("steps: [unclosed\n", encoding="utf-8")
    assert validate_knowledge(["--knowledge", str(knowledge)]) == 1


@pytest.mark.parametrize("breakage", ["problem without title", "problem as plain text", "channel as text"])
def test_structural_breakage_is_reported_and_the_last_good_version_stays(tmp_path, breakage):
    import shutil

    from assistant.guide import validate_file

    steps_file = tmp_path / "guide_steps.yml"
    shutil.copy(STEPS, steps_file)
    talk = Conversation(steps_file)
    talk.say("教我在小程序上申请", "start_guide")
    document = yaml.safe_load(STEPS.read_text(encoding="utf-8"))
    if breakage == "problem without title":
        del document["problems"]["face_recognition"]["title"]
    elif breakage == "problem as plain text":
        document["problems"]["face_recognition"] = "刷脸不过就打电话"
    else:
        document["channels"]["app"] = "四川医保APP"
    steps_file.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    os.utime(steps_file, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))

    problems = validate_file(steps_file)
    assert problems and problems[0].startswith("ERROR: guide_steps.yml")
    text = talk.say("给自己", "inform_guide_for_whom")  # the step lists face_recognition
    assert "第1步 / 共8步" in text
    assert "人脸识别不通过" in talk.say("下一步", "guide_next")  # old title still shown


def test_who_it_is_for_said_earlier_is_not_asked_again():
    """"帮我妈申请慢特病" (a knowledge question), then "小程序": the walk goes straight to
    step 1 for a family member, says why, and says how to change it."""
    talk = Conversation()
    talk.user("我想帮我妈申请慢特病", "ask_apply_for_others")  # answered by the knowledge part
    text = talk.say("小程序上咋个弄", "start_guide")
    assert "您前面说是帮家人办" in text and "请说“给自己申请”" in text
    assert "·为家人申请】第1步" in text
    assert talk.slots["guide_for_whom"] == "family" and talk.slots["guide_step"] == 1.0
    assert "帮家人申请" not in [b["title"] for b in talk.buttons]

    changed = talk.say("给自己申请", "inform_guide_for_whom", guide_for_whom="self")
    assert "·本人申请】第1步" in changed


def test_earlier_words_about_oneself_count_and_an_old_session_does_not():
    talk = Conversation()
    talk.user("我自己是糖尿病能不能办", "ask_disease_coverage")
    assert "您前面说是给自己办" in talk.say("app上怎么申请", "start_guide")

    fresh = Conversation()
    fresh.user("帮我爸问一下", "ask_apply_for_others")
    fresh.new_session()
    fresh.user("你好", "greet")
    text = fresh.say("窗口怎么办", "start_guide")
    assert "第1步 / 共4步" in text and "您前面说" not in text
    assert fresh.slots.get("guide_for_whom") is None

"""The walk through the real stack (trained model + action server), as a web user."""
import uuid

import pytest

# all tests here share one started stack, so xdist keeps them on one worker (Makefile test-python)
pytestmark = pytest.mark.xdist_group("shared_stack")


def _sender(name):
    return f"guide-{name}-{uuid.uuid4().hex[:8]}"


def test_walk_with_a_question_in_the_middle_and_face_recognition(running_stack):
    say = running_stack.say_text
    user = _sender("walk")
    assert "给自己申请，还是帮家人" in say(user, "教我在小程序上申请")
    assert "【微信小程序·本人申请】第1步 / 共8步" in say(user, "给自己")
    assert "第2步 / 共8步" in say(user, "下一步")
    reply = say(user, "诊断证明要盖章吗")
    assert reply.rstrip().endswith("继续第2步吗？"), reply
    assert "第2步 / 共8步" in say(user, "继续")
    reply = say(user, "刷脸刷不过去")
    assert "人脸识别不通过" in reply and "继续第2步吗？" in reply
    assert "第3步 / 共8步" in say(user, "/guide_goto{\"step_number\":\"3\"}")
    assert "我要办" in say(user, "第3步")
    assert "先停在" in say(user, "退出")
    assert "接着上次的第3步" in say(user, "怎么申请")


def test_buttons_reach_the_web_user(running_stack):
    user = _sender("buttons")
    messages = running_stack.say(user, "怎么申请")
    buttons = [button for message in messages for button in message.get("buttons", [])]
    assert [button["title"] for button in buttons] == ["微信小程序", "四川医保APP", "去窗口办"]
    messages = running_stack.say(user, buttons[2]["payload"])
    messages = running_stack.say(user, "/inform_guide_for_whom{\"guide_for_whom\":\"family\"}")
    text = "\n".join(message.get("text", "") for message in messages)
    assert "【医保经办窗口·为家人申请】第1步 / 共4步" in text


def test_family_said_before_the_walk_is_remembered(running_stack):
    user = f"guide-e2e-{uuid.uuid4().hex[:8]}"
    running_stack.say_text(user, "我想帮我妈申请慢特病")
    text = running_stack.say_text(user, "小程序")
    assert "为家人申请" in text and "第1步" in text
    assert "您是给自己申请，还是帮家人" not in text

"""The walk as a state machine (no Rasa): navigation, interruptions, troubleshooting."""
import pathlib

import pytest

from assistant import guide

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = guide.load_guide(ROOT / "knowledge" / "guide_steps.yml")


class Walk:
    """Feeds turns through guide.handle like the action does, keeping the state."""

    def __init__(self, wechat=False, data=DATA):
        self.state = guide.GuideState()
        self.wechat = wechat
        self.data = data
        self.replies = []

    def say(self, intent, text="", **entities):
        if intent == guide.STUCK or intent in ("ask_real_name", "ask_upload_quality"):
            turn = guide.troubleshoot(self.data, text, self.state, self.wechat, intent=intent)
        else:
            turn = guide.handle(self.data, intent, text, self.state, entities, self.wechat)
        self.state = turn.state
        self.replies = turn.replies
        return self.text

    def answered_elsewhere(self):
        """A knowledge question was answered; the guide offers to resume."""
        turn = guide.offer_resume(self.data, self.state, "", self.wechat)
        self.state, self.replies = turn.state, turn.replies
        return self.text

    @property
    def text(self):
        return "\n".join(reply.text for reply in self.replies)

    @property
    def buttons(self):
        return [button for reply in self.replies for button in reply.buttons]

    @property
    def titles(self):
        return [button["title"] for button in self.buttons]


def test_without_a_channel_it_recommends_one_and_offers_the_others_as_buttons():
    walk = Walk()
    walk.say(guide.START, "怎么申请")
    assert walk.titles[0] == DATA.channels[DATA.default_channel]["button"]  # the recommended one first
    assert len(walk.titles) == 3
    assert walk.buttons[1]["payload"] == '/inform_guide_channel{"guide_channel":"app"}'
    assert walk.text.count("\n") <= 1  # a line of recommendation (and one of help), no comparison
    assert walk.state.awaiting == guide.AWAIT_CHANNEL


@pytest.mark.parametrize("intent,text", [(guide.NEXT, "下一步"), (guide.AFFIRM, "好"), (guide.AFFIRM, "嗯"),
                                         (guide.START, "怎么申请")])
def test_going_on_at_the_channel_question_takes_the_recommended_channel(intent, text):
    walk = Walk()
    walk.say(guide.START, "在哪申请")
    walk.say(intent, text)
    assert walk.state.channel == DATA.default_channel and walk.state.step == 1
    assert "第1步 / 共" in walk.text and walk.state.awaiting is None


@pytest.mark.parametrize(
    "text,channel",
    [("教我在小程序上申请", "miniprogram"), ("app上怎么办", "app"), ("APP上怎么办", "app"),
     ("去窗口怎么办理", "window"), ("在微信上咋个弄", "miniprogram"), ("ＡＰＰ上怎麼辦", "app")],
)
def test_a_channel_named_in_the_request_gets_step_one_at_once(text, channel):
    walk = Walk()
    walk.say(guide.START, text)
    assert walk.state.channel == channel and walk.state.step == 1
    assert walk.state.awaiting is None
    assert "第1步 / 共" in walk.text and "给自己申请，还是帮家人" not in walk.text


@pytest.mark.parametrize("channel", ["miniprogram", "app", "window"])
@pytest.mark.parametrize("intent,text", [(guide.NEXT, "下一步"), (guide.AFFIRM, "好"), (guide.AFFIRM, "继续")])
def test_the_who_question_comes_at_its_step_and_going_on_takes_self(channel, intent, text):
    walk = Walk()
    walk.say(guide.INFORM_CHANNEL, "", guide_channel=channel)
    whom_step = DATA.whom_step(channel)
    for _ in range(whom_step - 1):
        assert walk.state.awaiting is None
        walk.say(guide.NEXT, "下一步")
    assert walk.state.awaiting == guide.AWAIT_WHOM and walk.state.step == whom_step
    assert f"第{whom_step}步" in walk.text and "给自己申请，还是帮家人" in walk.text
    walk.say(intent, text)
    assert walk.state.for_whom == "self" and walk.state.awaiting is None
    assert "给自己申请" in walk.text and "帮家人申请" in walk.text  # said so, and how to switch
    assert f"第{whom_step}步 / 共" in walk.text  # the step itself, not the next one


def test_answering_the_who_question_shows_that_step_for_the_family():
    walk = Walk()
    walk.say(guide.START, "教我在小程序上申请")
    walk.say(guide.GOTO, "第4步")
    walk.say(guide.INFORM_WHOM, "帮我妈")
    assert "【微信小程序·为家人申请】第4步 / 共8步" in walk.text and "为他人" in walk.text


QUESTIONING = {guide.AWAIT_CHANNEL, guide.AWAIT_WHOM}
UNCLEAR = [(guide.NEXT, "下一步"), (guide.AFFIRM, "好"), (guide.AFFIRM, "嗯"), (guide.NEXT, "继续"),
           (guide.START, "怎么申请"), ("not_understood", "没看懂")]


@pytest.mark.parametrize("opening", [(guide.START, "怎么申请"), (guide.START, "在哪申请"), ("ask_process", "申请流程"),
                                     (guide.START, "小程序上咋申请"), (guide.START, "去窗口怎么办"),
                                     (guide.START, "app上怎么办"), (guide.RESTART, "重新开始")])
@pytest.mark.parametrize("unclear", UNCLEAR)
def test_no_question_is_ever_asked_twice_in_a_row(opening, unclear):
    """Every walk, driven only with answers that do not answer the question, reaches the
    end without asking the same question on two turns in a row."""
    walk = Walk()
    walk.say(*opening)
    previous = None
    for _ in range(20):
        intent, text = unclear
        if intent == "not_understood":
            turn = guide.repeat(DATA, walk.state)
            walk.state, walk.replies = turn.state, turn.replies
        else:
            walk.say(intent, text)
        asked = (walk.state.awaiting, walk.state.step) if walk.state.awaiting in QUESTIONING else None
        assert asked is None or asked != previous, f"asked {asked} twice: {walk.text}"
        previous = asked
        if not walk.state.active:
            break
    assert walk.state.channel is not None


def test_the_process_overview_is_short_and_offers_the_walk():
    walk = Walk()
    text = walk.say("ask_process", "办这个要走哪些流程")
    numbered = [line for line in text.splitlines() if line[:2].rstrip(".").isdigit()]
    assert 3 <= len(numbered) <= 8
    assert walk.titles[0] == DATA.channels[DATA.default_channel]["button"] and len(walk.titles) == 3
    walk.say(guide.AFFIRM, "好")
    assert walk.state.channel == DATA.default_channel and "第1步 / 共" in walk.text


@pytest.mark.parametrize("text,step_id", [("入口在哪儿", "entry"), ("申请入口在哪里", "entry"),
                                          ("怎么上传材料", "upload"), ("在哪看进度", "wait")])
def test_direct_jumps_go_to_that_step_of_the_default_channel(text, step_id):
    walk = Walk()
    walk.say(guide.START, text)
    channel = DATA.default_channel
    step = DATA.step(channel, walk.state.step)
    assert walk.state.channel == channel and step.id.endswith(step_id), step.id


def test_direct_jump_stays_on_the_current_channel():
    walk = Walk()
    walk.say(guide.START, "app上怎么办")
    walk.say(guide.START, "入口在哪")
    assert walk.state.channel == "app" and DATA.step("app", walk.state.step).id == "app_entry"


def _walk_on(channel):
    walk = Walk()
    walk.say(guide.START, "怎么申请", guide_channel=channel)
    walk.say(guide.INFORM_WHOM, "本人")
    return walk


@pytest.mark.parametrize("channel,text,step_id", [
    ("miniprogram", "去实名认证那一步", "mp_register"), ("miniprogram", "直接看上传材料那步", "mp_upload"),
    ("miniprogram", "跳到選擇病種那一步", "mp_details"), ("app", "直接到选病种那一步", "app_details"),
    ("app", "我想看找入口那一步", "app_entry"), ("app", "看提交那步", "app_submit"),
    ("app", "回到注册那一步去", "app_register"), ("window", "跳到填信息那里", "win_form"),
    ("window", "看提交那步", "win_submit"), ("window", "我要去准备材料那步", "win_prepare"),
])
def test_goto_by_the_name_of_a_step_in_the_current_channel(channel, text, step_id):
    walk = _walk_on(channel)
    walk.say(guide.GOTO, text)
    assert walk.state.channel == channel and DATA.step(channel, walk.state.step).id == step_id
    assert DATA.phrase("goto_which") not in walk.text and walk.state.awaiting is None


@pytest.mark.parametrize("asked_first", [False, True])
def test_goto_by_name_before_a_channel_takes_the_default_channel(asked_first):
    walk = Walk()
    if asked_first:
        walk.say(guide.START, "怎么申请")  # the channel question is open
    walk.say(guide.GOTO, "我想看找入口那一步")
    channel = DATA.default_channel
    assert walk.state.channel == channel and DATA.step(channel, walk.state.step).id.endswith("entry")
    assert DATA.phrase("default_channel_taken") in walk.text


@pytest.mark.parametrize("channel,text", [("app", "跳到那个啥子那一步"), ("window", "去实名认证那一步")])
def test_goto_without_a_number_or_a_known_name_asks_which_step(channel, text):
    walk = _walk_on(channel)
    walk.say(guide.GOTO, "第2步")
    walk.say(guide.GOTO, text)  # the window has no real-name step
    assert walk.state.step == 2 and DATA.phrase("goto_which") in walk.text


def test_a_step_number_wins_over_a_step_name():
    walk = _walk_on("miniprogram")
    walk.say(guide.GOTO, "看一下第6步，填信息那里")
    assert walk.state.step == 6
    walk.say(guide.GOTO, "实名认证那一步", step_number="3")
    assert walk.state.step == 3


def test_no_word_names_two_steps_of_one_channel():
    from assistant.guide.data import title_words
    for channel, steps in DATA.steps.items():
        owner = {}
        for step in steps:
            for word in set(step.jump_words + title_words(step.title())):
                assert owner.setdefault(word, step.id) == step.id, (channel, word)


def test_the_app_entry_names_are_shown_as_alternatives():
    walk = Walk()
    walk.say(guide.START, "app上怎么办")
    walk.say(guide.GOTO, "第3步")
    assert "“门诊慢特病” 或 “特殊病种申请”" in walk.text
    assert "“门诊慢特病” → “特殊病种申请”" not in walk.text


def test_channel_and_person_in_one_sentence_go_straight_to_step_one():
    walk = Walk()
    text = walk.say(guide.START, "教我在小程序上帮我妈申请")
    assert "【微信小程序·为家人申请】第1步 / 共8步" in text
    assert "四川医保公共服务平台" in text


@pytest.mark.parametrize("channel,total", [("miniprogram", 8), ("app", 8), ("window", 4)])
@pytest.mark.parametrize("whom", ["self", "family"])
def test_full_walk_counts_steps_and_ends_with_progress_and_12393(channel, whom, total):
    walk = Walk()
    walk.say(guide.START, "怎么申请")
    walk.say(guide.INFORM_CHANNEL, "", guide_channel=channel)
    walk.say(guide.INFORM_WHOM, "", guide_for_whom=whom)
    for number in range(1, total + 1):
        assert f"第{number}步 / 共{total}步" in walk.text
        # same buttons in the same order on every step: WeChat numbers them, "1" is "next"
        assert [b["payload"] for b in walk.buttons] == [
            "/guide_next", "/guide_back", "/guide_stuck", "/guide_restart", "/stop"]
        walk.say(guide.NEXT, "下一步")
    assert "12393" in walk.text
    assert walk.buttons[0] == {"title": "查申请进度", "payload": "/check_progress"}
    assert walk.state.active is False


def test_back_jump_restart_and_exit():
    walk = Walk()
    walk.say(guide.START, "app上怎么办")
    walk.say(guide.INFORM_WHOM, "本人")
    walk.say(guide.NEXT, "下一步")
    assert "第2步 / 共8步" in walk.text
    walk.say(guide.BACK, "上一步")
    assert "第1步 / 共8步" in walk.text
    walk.say(guide.BACK, "上一步")
    assert "已经是第一步了" in walk.text and "第1步 / 共8步" in walk.text
    walk.say(guide.GOTO, "第6步")
    assert "第6步 / 共8步" in walk.text and "分项上传材料" in walk.text
    walk.say(guide.GOTO, "跳到第三步")
    assert "第3步 / 共8步" in walk.text and "特殊病种申请" in walk.text
    walk.say(guide.GOTO, "第12步")
    assert "请说第1到第8步" in walk.text and walk.state.step == 3
    walk.say(guide.RESTART, "重新开始")
    assert walk.state == guide.GuideState(active=True, awaiting=guide.AWAIT_CHANNEL)
    assert len(walk.buttons) == 3
    walk.say(guide.INFORM_CHANNEL, "窗口")
    walk.say(guide.INFORM_WHOM, "帮我爸")
    assert "【医保经办窗口·为家人申请】第1步 / 共4步" in walk.text
    walk.say(guide.NEXT, "好了")
    assert "12393" in walk.text  # family at the window: what a proxy needs is not in the guide
    walk.say(guide.STOP, "退出")
    assert walk.state.active is False and walk.state.step == 2
    assert "第2步" in walk.text and "继续" in walk.text


def test_coming_back_later_resumes_where_they_left_off():
    walk = Walk()
    walk.say(guide.START, "教我在小程序上申请")
    walk.say(guide.INFORM_WHOM, "给自己")
    walk.say(guide.GOTO, "第5步")
    walk.say(guide.STOP, "退出")
    text = walk.say(guide.START, "怎么申请")
    assert "接着上次的第5步" in text and "第5步 / 共8步" in text
    walk.say(guide.STOP, "算了")
    assert "第6步 / 共8步" not in walk.say(guide.NEXT, "继续")  # resume shows the same step
    assert "第5步 / 共8步" in walk.text


def test_after_finishing_asking_again_starts_from_the_channel_choice():
    walk = Walk()
    walk.say(guide.START, "去窗口怎么办理")
    walk.say(guide.INFORM_WHOM, "自己")
    for _ in range(4):
        walk.say(guide.NEXT)
    walk.say(guide.START, "怎么申请")
    assert walk.state.awaiting == guide.AWAIT_CHANNEL


def test_naming_another_channel_mid_walk_switches_to_its_first_step():
    walk = Walk()
    walk.say(guide.START, "教我在小程序上申请")
    walk.say(guide.INFORM_WHOM, "给自己")
    walk.say(guide.GOTO, "第4步")
    walk.say(guide.INFORM_CHANNEL, "还是用app吧")
    assert "【四川医保APP·本人申请】第1步 / 共8步" in walk.text


def test_question_mid_walk_then_continue_at_the_same_step():
    walk = Walk()
    walk.say(guide.START, "app上怎么办")
    walk.say(guide.INFORM_WHOM, "给自己")
    walk.say(guide.GOTO, "第4步")
    text = walk.answered_elsewhere()  # "诊断证明要盖章吗" answered by the knowledge part
    assert text == "继续第4步吗？"
    assert walk.buttons[0] == {"title": "继续第4步", "payload": '/guide_goto{"step_number":"4"}'}
    for intent in (guide.NEXT, guide.AFFIRM):
        walk.answered_elsewhere()
        walk.say(intent, "继续")
        assert "第4步 / 共8步" in walk.text
    walk.say(guide.NEXT, "下一步")
    assert "第5步 / 共8步" in walk.text


def test_declining_to_resume_pauses_at_that_step():
    walk = Walk()
    walk.say(guide.START, "app上怎么办")
    walk.say(guide.INFORM_WHOM, "给自己")
    walk.answered_elsewhere()
    walk.say(guide.DENY, "不用了")
    assert walk.state.active is False and "先停在" in walk.text and "第1步" in walk.text


@pytest.mark.parametrize("text", ["人脸识别不过", "刷脸刷不过去", "活体检测一直失败"])
def test_stuck_at_face_recognition_gets_the_step_advice_and_an_offer_to_continue(text):
    walk = Walk()
    walk.say(guide.START, "教我在小程序上申请")
    walk.say(guide.INFORM_WHOM, "给自己")
    walk.say(guide.NEXT, "下一步")
    reply = walk.say("ask_real_name", text)
    assert "第2步“注册登录、实名认证”" in reply
    assert "光线" in reply and "医保电子凭证" in reply and "12393" in reply
    assert reply.endswith("继续第2步吗？")
    walk.say(guide.AFFIRM, "好的")
    assert "第2步 / 共8步" in walk.text


def test_face_problem_on_a_later_step_points_to_the_step_where_it_happens():
    walk = Walk()
    walk.say(guide.START, "app上怎么办")
    walk.say(guide.INFORM_WHOM, "给自己")
    walk.say(guide.GOTO, "第6步")
    reply = walk.say(guide.STUCK, "人脸识别不过")
    assert "通常出现在第2步" in reply and reply.endswith("继续第6步吗？")


def test_stuck_without_details_lists_this_steps_problems():
    walk = Walk()
    walk.say(guide.START, "教我在小程序上申请")
    walk.say(guide.INFORM_WHOM, "给自己")
    walk.say(guide.GOTO, "第6步")
    reply = walk.say(guide.STUCK, "卡住了")
    assert "照片太模糊" in reply and "彩色扫描件或高清照片" in reply


def test_stuck_where_the_guide_has_no_advice_points_to_12393():
    walk = Walk()
    walk.say(guide.START, "去窗口怎么办理")
    walk.say(guide.INFORM_WHOM, "给自己")
    reply = walk.say(guide.STUCK, "人脸识别不过")
    assert "12393" in reply and reply.endswith("继续第1步吗？")


def test_stuck_before_any_walk_offers_to_start_one():
    walk = Walk()
    reply = walk.say(guide.STUCK, "卡住了")
    assert "怎么申请" in reply and walk.buttons[0]["payload"] == "/start_guide"


@pytest.mark.parametrize(
    "text,number",
    [("第3步", 3), ("跳到第 5 步", 5), ("第三步", 3), ("第十步", 10), ("第８步", 8), ("两", 2), ("没有数字", None),
     ("去实名认证那一步", None), ("看一下第六步", 6), ("给我看一哈第6步", 6), ("不用一步步来", None),
     ("安装四川医保APP那步", None), ("第一个步骤", 1)],
)
def test_step_numbers_in_words_and_digits(text, number):
    assert guide.parse_step_number(text) == number


@pytest.mark.parametrize(
    "text,whom",
    [("给自己", "self"), ("本人", "self"), ("帮我妈", "family"), ("我自己帮我爸弄", "family"),
     ("为他人申请", "family"), ("随便", None)],
)
def test_who_the_application_is_for(text, whom):
    assert DATA.parse_whom(text) == whom


def test_slots_round_trip_and_stale_steps_are_dropped():
    from actions.guide import state_from_slots, state_to_slots

    state = guide.GuideState(channel="window", for_whom="self", step=3, active=True, awaiting="resume")
    assert state_from_slots(state_to_slots(state), DATA) == state
    stale = dict(state_to_slots(state), guide_step=9.0)  # the file lost steps since
    assert state_from_slots(stale, DATA).step is None


def test_wechat_gets_a_miniprogram_link_only_when_configured():
    import copy

    document = copy.deepcopy(DATA.doc)
    state = guide.GuideState(channel="miniprogram", for_whom="self", step=1, active=True)
    plain = guide.Renderer(guide.GuideData(document), links=True).step(state).text
    assert "<a " not in plain and "搜“四川医保公共服务平台”" in plain

    document["miniprogram_link"] = {
        "appid": "wx0000000000000000",
        "path": "pages/index/index",
        "fallback_url": "https://example.org/mzmtb",
    }
    configured = guide.GuideData(document)
    wechat = guide.Renderer(configured, links=True).step(state).text
    assert (
        '<a href="https://example.org/mzmtb" data-miniprogram-appid="wx0000000000000000" '
        'data-miniprogram-path="pages/index/index">打开小程序</a>'
    ) in wechat
    web = guide.Renderer(configured, links=False).step(state).text
    assert "<a " not in web
    # every step where the person opens the mini program carries the link (opening it,
    # and coming back to check progress), no other step; unconfigured, none does
    linked, plain_steps = [], []
    for number in range(1, DATA.step_count("miniprogram") + 1):
        at = guide.GuideState(channel="miniprogram", for_whom="self", step=number, active=True)
        if "data-miniprogram-appid" in guide.Renderer(configured, links=True).step(at).text:
            linked.append(number)
        if "<a " in guide.Renderer(guide.GuideData(DATA.doc), links=True).step(at).text:
            plain_steps.append(number)
    assert linked == [1, DATA.step_count("miniprogram")] and plain_steps == []
    # an http (not https) fallback is not accepted
    document["miniprogram_link"]["fallback_url"] = "http://example.org"
    assert "<a " not in guide.Renderer(guide.GuideData(document), links=True).step(state).text


def test_broken_data_is_reported_with_the_file_name():
    with pytest.raises(guide.GuideDataError, match="unknown problem"):
        guide.GuideData(
            {"channels": {"app": {}}, "steps": {"app": [{"title": "t", "text": "x", "problems": ["nope"]}]}},
            source="x.yml",
        )


def test_a_real_name_question_without_face_words_still_gets_the_face_advice():
    walk = Walk()
    walk.say(guide.START, "教我在小程序上申请")
    walk.say(guide.INFORM_WHOM, "给自己")
    walk.say(guide.GOTO, "第6步")  # the upload step: its own problem is blurry photos
    reply = walk.say("ask_real_name", "一直提示认证失败了")
    assert "人脸识别不通过" in reply and "照片太模糊" not in reply


def test_a_question_that_also_answers_the_pending_choice_moves_on():
    walk = Walk()
    walk.say(guide.START, "app上怎么办")
    walk.say(guide.GOTO, "第4步")
    assert walk.state.awaiting == guide.AWAIT_WHOM
    # "能替我妈申请吗" is answered by the knowledge part, then the guide continues:
    turn = guide.offer_resume(DATA, walk.state, "能替我妈申请吗")
    assert "【四川医保APP·为家人申请】第4步 / 共8步" in turn.replies[0].text
    assert turn.state.for_whom == "family" and turn.state.step == 4
    # a question that does not answer it gets the plain offer
    turn = guide.offer_resume(DATA, walk.state, "要带哪些材料")
    assert turn.replies[0].text == "继续第4步吗？"


def test_back_at_the_who_question_goes_back_and_does_not_answer_it():
    walk = Walk()
    walk.say(guide.INFORM_CHANNEL, "", guide_channel="miniprogram")
    walk.say(guide.GOTO, "第4步")
    assert walk.state.awaiting == guide.AWAIT_WHOM
    walk.say(guide.BACK, "上一步")
    assert walk.state.step == 3 and walk.state.for_whom is None and "第3步 / 共8步" in walk.text


def test_a_step_that_depends_on_the_person_is_never_shown_without_one():
    """"没看懂" or an out-of-range jump on such a step: 本人 is taken and said (or asked
    once), never shown silently as 本人 with the question coming a step later."""
    state = guide.GuideState(channel="miniprogram", step=4, active=True, awaiting=guide.AWAIT_RESUME)
    turn = guide.repeat(DATA, state)
    assert turn.state.for_whom == "self" and "帮家人申请" in turn.replies[0].text
    walk = Walk()
    walk.state = guide.GuideState(channel="miniprogram", step=4, active=True)
    walk.say(guide.GOTO, "第9步")
    assert walk.state.awaiting == guide.AWAIT_WHOM and "给自己申请，还是帮家人" in walk.text

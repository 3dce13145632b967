"""The walk itself: one turn in (intent, text, entities, state), replies and new state out."""
import dataclasses
from typing import Any, List, Mapping, Optional

from assistant.guide.data import (
    BACK, CONTINUE_INTENTS, DENY, GOTO, INFORM_CHANNEL, INFORM_WHOM, NEXT, OVERVIEW, RESTART,
    SELF, SETUP_INTENTS, START, STOP, STUCK, WHOM_VALUES, GuideData, parse_step_number, payload,
    per_whom,
)
from assistant.guide.render import GuideState, Renderer, Reply, button

# What the last question asked for (GuideState.awaiting).
AWAIT_CHANNEL, AWAIT_WHOM, AWAIT_RESUME = "channel", "for_whom", "resume"


@dataclasses.dataclass
class Turn:
    replies: List[Reply]
    state: GuideState


def _entity(entities: Mapping[str, Any], name: str) -> Optional[str]:
    value = entities.get(name)
    return str(value) if value not in (None, "") else None


def handle(
    data: GuideData,
    intent: str,
    text: str,
    state: GuideState,
    entities: Optional[Mapping[str, Any]] = None,
    links: bool = False,
    earlier_whom: Optional[str] = None,
) -> Turn:
    """One turn of the walk for a guide intent (or affirm/deny/stop while it is active).

    A named channel gets its step 1 at once. Who the application is for is asked only at
    the step where the app asks it (`for_whom_step`), unless it was said earlier in the
    session (`earlier_whom`, GuideData.whom_from_earlier). No question is asked twice in a
    row: a person who just goes on ("下一步", "好") gets the default channel or 本人, said
    in one line with how to switch.
    """
    entities = entities or {}
    render = Renderer(data, links)
    state = dataclasses.replace(state)

    if intent == RESTART:
        state = GuideState(active=True, awaiting=AWAIT_CHANNEL)
        return Turn([render.choose_channel(data.phrase("restarted"))], state)

    if intent in (STOP, DENY):
        state.active, state.awaiting = False, None
        return Turn([render.paused(state)], state)

    if intent == STUCK:
        return troubleshoot(data, text, state, links)

    if intent == OVERVIEW:
        state.active, state.awaiting = True, AWAIT_CHANNEL
        return Turn([render.overview()], state)

    # What the message says about channel and person (button entities first, then words).
    channel = _entity(entities, "guide_channel")
    channel = channel if channel in data.channels else data.parse_channel(text)
    whom = _entity(entities, "guide_for_whom")
    whom = whom if whom in WHOM_VALUES else data.parse_whom(text)
    continuing = intent in CONTINUE_INTENTS
    asked = state.awaiting  # what the bot asked last turn, if anything
    finished = (
        state.channel is not None
        and state.step == data.step_count(state.channel)
        and not state.active
    )
    if intent == START and finished:
        state = GuideState()  # they saw every step last time: start again from the top
    if channel and channel != state.channel:
        state.channel, state.step = channel, None
    if whom:
        state.for_whom = whom

    number = None
    if intent == GOTO:  # a number wins over a step's name ("第3步" even if a title is named)
        number = parse_step_number(entities.get("step_number")) or parse_step_number(text)

    prefix = ""
    if state.channel is None:
        wants_a_step = (
            (intent == START and data.jump_target(text, data.default_channel))
            or (intent == GOTO and number is None and data.named_step(text, data.default_channel))
        )
        if continuing or asked == AWAIT_CHANNEL or wants_a_step:
            state.channel = data.default_channel
            prefix = data.phrase("default_channel_taken")
        else:
            state.active, state.awaiting = True, AWAIT_CHANNEL
            return Turn([render.choose_channel()], state)

    total = data.step_count(state.channel)
    jump = data.jump_target(text, state.channel) if intent == START else None
    if intent == GOTO and number is None:  # "去实名认证那一步": the step by its name
        jump = data.named_step(text, state.channel)
    if intent == GOTO and not jump:
        if number is None or not 1 <= number <= total:  # the current step, and how to ask
            target = state.step or 1
            prefix += (data.phrase("goto_which") if number is None else "") + data.phrase("goto_range", total=total)
        else:
            target = number
    elif jump:
        target = jump
    elif state.step is None:
        target = 1
    elif intent == BACK:  # also at a pending question: back is back, not an answer
        target = max(1, state.step - 1)
        if state.step == 1:
            prefix += data.phrase("first_step")
    elif intent in SETUP_INTENTS or asked in (AWAIT_CHANNEL, AWAIT_WHOM):
        target = state.step
        if intent == START:
            prefix += data.phrase("resumed", step=target)
    elif not state.active or asked == AWAIT_RESUME:
        target = state.step  # coming back after a question or a pause: same step again
    else:  # next / affirm
        if state.step >= total:
            state.active, state.awaiting = False, None
            return Turn([render.finish()], state)
        target = state.step + 1

    whom_step = data.whom_step(state.channel)
    if state.for_whom is None and whom_step is not None and earlier_whom in WHOM_VALUES:
        # said earlier in the session ("帮我妈申请慢特病"): use it, say so and how to switch
        state.for_whom = earlier_whom
        prefix += data.text("for_whom", earlier_whom, "remembered")
    if state.for_whom is None and whom_step is not None and target >= whom_step:
        if asked == AWAIT_WHOM and intent != BACK:  # asked, not answered: go on as 本人
            state.for_whom = SELF
            prefix += data.phrase("default_whom_taken")
        else:
            state.step, state.active, state.awaiting = target, True, AWAIT_WHOM
            question = render.whom_question(state)
            if prefix:
                question = Reply(prefix + "\n" + question.text, question.buttons)
            return Turn([question], state)

    state.step, state.active, state.awaiting = target, True, None
    return Turn([render.step(state, prefix)], state)


def troubleshoot(
    data: GuideData, text: str, state: GuideState, links: bool = False, intent: str = ""
) -> Turn:
    """'人脸识别不过' during the walk: the current step's advice, then offer to continue."""
    render = Renderer(data, links)
    state = dataclasses.replace(state)
    kind = data.parse_problem(text) or data.problem_for_intent(intent)
    whom = state.for_whom
    if not (state.channel and state.step):
        lines = []
        if kind and kind in data.problems:
            problem = data.problems[kind]
            lines.append(data.phrase("problem", title=problem["title"], text=per_whom(problem["text"], whom)))
        lines.append(data.phrase("how_to_start"))
        return Turn([Reply("\n".join(lines), [button(data.button("start"), payload(START))])], state)

    step = data.step(state.channel, state.step)
    keys: List[str] = []
    header = data.phrase("stuck_here", number=step.number, title=step.title())
    if kind and kind in step.problems:
        keys = [kind]
    elif kind:
        other = next((s for s in data.steps[state.channel] if kind in s.problems), None)
        if other is not None:
            keys = [kind]
            header = data.phrase("stuck_elsewhere", number=other.number, title=other.title())
    elif step.problems:
        keys = step.problems
    lines = [header]
    if keys:
        for key in keys:
            problem = data.problems[key]
            lines.append("· " + data.phrase("problem", title=problem["title"],
                                            text=per_whom(problem["text"], whom)))
    else:
        lines.append(data.text("generic_problem", "text"))
    state.active, state.awaiting = True, AWAIT_RESUME
    return Turn([render.offer_resume(state, "\n".join(lines) + "\n")], state)


def offer_resume(data: GuideData, state: GuideState, text: str = "", links: bool = False) -> Turn:
    """After a question answered mid-walk: '继续第4步吗？'.

    When the walk was waiting for the channel or the person and the question also gave
    it ("帮我妈申请可以吗" after "给自己还是帮家人？"), the walk goes on with that answer.
    """
    if state.awaiting == AWAIT_CHANNEL and data.parse_channel(text):
        return handle(data, INFORM_CHANNEL, text, state, links=links)
    if state.awaiting == AWAIT_WHOM and data.parse_whom(text):
        return handle(data, INFORM_WHOM, text, state, links=links)
    state = dataclasses.replace(state, active=True, awaiting=AWAIT_RESUME)
    return Turn([Renderer(data, links).offer_resume(state)], state)


def repeat(data: GuideData, state: GuideState, links: bool = False) -> Turn:
    """"没看懂" / "啥意思" during the walk: the current step again (or the open question
    about channel or person), with a word on how to ask about it."""
    if not (state.channel and state.step):
        return handle(data, START, "", state, links=links)
    if state.awaiting == AWAIT_WHOM:  # the question again would be the same question twice
        return handle(data, NEXT, "", state, links=links)
    state = dataclasses.replace(state, active=True, awaiting=None)
    prefix = data.text("repeat", "text")
    whom_step = data.whom_step(state.channel)
    if state.for_whom is None and whom_step is not None and state.step >= whom_step:
        # the step depends on who it is for and nobody said: as everywhere, 本人, said so
        state.for_whom = SELF
        prefix = data.phrase("default_whom_taken") + "\n" + prefix
    return Turn([Renderer(data, links).step(state, prefix)], state)

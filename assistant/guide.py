"""The step-by-step walk to the application entry (issue 4): data, state and rendering.

Pure Python (PyYAML + assistant.textnorm), importable without Rasa: actions/guide.py is a
thin adapter that turns slots into a `GuideState`, calls `handle`, `troubleshoot` or
`offer_resume`, and turns the `Turn` back into messages and slot events.

All wording of steps, hints and problems lives in knowledge/guide_steps.yml; it is re-read
whenever the file changes, so editing it changes the next reply without a restart.
"""
import dataclasses
import json
import logging
import pathlib
import re
import threading
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import yaml

from assistant.textnorm import normalize_text

logger = logging.getLogger(__name__)

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_STEPS_FILE = ROOT / "knowledge" / "guide_steps.yml"

SELF, FAMILY = "self", "family"
WHOM_VALUES = (SELF, FAMILY)

# Intents the walk understands (domain/guide.yml); exit reuses the core `stop`.
START = "start_guide"
INFORM_CHANNEL = "inform_guide_channel"
INFORM_WHOM = "inform_guide_for_whom"
NEXT = "guide_next"
BACK = "guide_back"
GOTO = "guide_goto"
RESTART = "guide_restart"
STUCK = "guide_stuck"
STOP = "stop"
AFFIRM = "affirm"
DENY = "deny"
SETUP_INTENTS = (START, INFORM_CHANNEL, INFORM_WHOM)
APPLY_FOR_OTHERS = "ask_apply_for_others"  # a knowledge question; tells who it is for

# What the last question asked for (slot guide_awaiting).
AWAIT_CHANNEL, AWAIT_WHOM, AWAIT_RESUME = "channel", "for_whom", "resume"

# Button payloads. The WeChat channel numbers buttons, so "1" is always the first one.
PAYLOAD_NEXT = "/guide_next"
PAYLOAD_BACK = "/guide_back"
PAYLOAD_STUCK = "/guide_stuck"
PAYLOAD_RESTART = "/guide_restart"
PAYLOAD_STOP = "/stop"
PAYLOAD_PROGRESS = "/check_progress"


def payload(intent: str, **entities: Any) -> str:
    if not entities:
        return f"/{intent}"
    return f"/{intent}" + json.dumps(entities, ensure_ascii=False, separators=(",", ":"))


def goto_payload(step: int) -> str:
    return payload(GOTO, step_number=str(step))


class GuideDataError(ValueError):
    """knowledge/guide_steps.yml is missing something the walk needs."""


# --- data -------------------------------------------------------------------------------


def _per_whom(value: Any, whom: Optional[str]) -> Any:
    """A text (or list) that may differ for self and family: {self: ..., family: ...}."""
    if isinstance(value, Mapping) and set(value) <= set(WHOM_VALUES):
        return value.get(whom or SELF, value.get(SELF))
    return value


@dataclasses.dataclass
class Step:
    number: int
    raw: Mapping[str, Any]

    @property
    def id(self) -> str:
        return str(self.raw.get("id", self.number))

    def title(self) -> str:
        return str(self.raw["title"])

    def text(self, whom: Optional[str]) -> str:
        return str(_per_whom(self.raw["text"], whom))

    def tip(self, whom: Optional[str]) -> str:
        return str(_per_whom(self.raw.get("tip") or "", whom))

    def tap(self, whom: Optional[str]) -> List[str]:
        return [str(label) for label in (_per_whom(self.raw.get("tap") or [], whom) or [])]

    @property
    def problems(self) -> List[str]:
        return [str(key) for key in self.raw.get("problems") or []]

    @property
    def wants_miniprogram_link(self) -> bool:
        return bool(self.raw.get("miniprogram_link"))


class GuideData:
    """knowledge/guide_steps.yml, parsed and checked."""

    def __init__(self, document: Mapping[str, Any], source: str = "guide_steps.yml"):
        self.doc = document
        self.source = source
        try:
            self.channels: Dict[str, Mapping[str, Any]] = dict(document["channels"])
            self.steps: Dict[str, List[Step]] = {
                channel: [Step(i + 1, raw) for i, raw in enumerate(document["steps"][channel])]
                for channel in self.channels
            }
            self.problems: Dict[str, Mapping[str, Any]] = dict(document.get("problems") or {})
            for channel, steps in self.steps.items():
                if not steps:
                    raise GuideDataError(f"{source}: channel {channel} has no steps")
                for step in steps:
                    step.title(), step.text(SELF), step.text(FAMILY)
                    for key in step.problems:
                        if key not in self.problems:
                            raise GuideDataError(f"{source}: step {step.id} names unknown problem {key}")
        except KeyError as missing:
            raise GuideDataError(f"{source}: missing {missing}") from missing

    # simple accessors
    def text(self, *path: str, default: str = "") -> str:
        node: Any = self.doc
        for key in path:
            if not isinstance(node, Mapping) or key not in node:
                return default
            node = node[key]
        return str(node)

    @property
    def hotline(self) -> str:
        """knowledge/contacts.yml's hotline (one place), unless guide_steps.yml overrides it."""
        from assistant.knowledge import contact_context  # local: keeps this module light

        # an empty `hotline:` left in the file means "not overridden", not "None"
        return str(self.doc.get("hotline") or "").strip() or contact_context()["hotline"]

    @property
    def caveat(self) -> str:
        return self.text("caveat")

    def channel_name(self, channel: str) -> str:
        return str(self.channels[channel].get("name", channel))

    def whom_name(self, whom: Optional[str]) -> str:
        return self.text("for_whom", whom or "", "name")

    def asks_for_whom(self, channel: str) -> bool:
        return bool(self.channels[channel].get("asks_for_whom", True))

    def step_count(self, channel: str) -> int:
        return len(self.steps[channel])

    def step(self, channel: str, number: int) -> Step:
        return self.steps[channel][number - 1]

    def wechat_channels(self) -> List[str]:
        return [str(name).lower() for name in self.doc.get("wechat_input_channels") or ["wechat"]]

    def miniprogram_link(self) -> Optional[Tuple[str, str, str, str]]:
        """(appid, path, https fallback, label) when fully configured, else None."""
        link = self.doc.get("miniprogram_link") or {}
        appid = str(link.get("appid") or "").strip()
        path = str(link.get("path") or "").strip()
        fallback = str(link.get("fallback_url") or "").strip()
        label = str(link.get("label") or "打开小程序").strip()
        if appid and path and fallback.startswith("https://"):
            return appid, path, fallback, label
        return None

    # understanding free text (keywords live in the data file, not here)
    def _match(self, text: str, table: Mapping[str, Any], key: str = "keywords") -> List[str]:
        norm = normalize_text(text or "").lower()
        found = []
        for name, entry in table.items():
            words = entry.get(key, []) if isinstance(entry, Mapping) else entry
            if any(str(word).lower() in norm for word in words or []):
                found.append(name)
        return found

    def parse_channel(self, text: str) -> Optional[str]:
        found = self._match(text, self.channels)
        return found[0] if len(found) == 1 else None

    def parse_whom(self, text: str) -> Optional[str]:
        found = self._match(text, self.doc.get("for_whom") or {})
        if FAMILY in found:  # "我自己帮我妈弄" is for the mother
            return FAMILY
        return found[0] if found else None

    def whom_from_earlier(self, earlier: Sequence[Tuple[str, str]]) -> Optional[str]:
        """Who the application is for, from this session's earlier user messages
        (intent, text), newest first: "帮我妈申请慢特病" and then "小程序" should not
        be asked "给自己还是帮家人" again."""
        for intent, text in earlier:
            if intent == APPLY_FOR_OTHERS:
                return FAMILY
            whom = self.parse_whom(text)
            if whom:
                return whom
        return None

    def parse_problem(self, text: str) -> Optional[str]:
        found = self._match(text, self.doc.get("problem_kinds") or {}, key="")
        return found[0] if found else None

    def problem_for_intent(self, intent: str) -> Optional[str]:
        """The problem a question intent is about (ask_real_name -> face_recognition)."""
        kind = (self.doc.get("problem_intents") or {}).get(intent or "")
        return str(kind) if kind in self.problems else None


_CN_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
_STEP_NUMBER = re.compile(r"(\d{1,2}|十[一二三四五六七八九]?|[一二两三四五六七八九])")


def parse_step_number(value: Any) -> Optional[int]:
    """'第3步', '3', '第三步', '去第十步' -> int; None when there is no number."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    match = _STEP_NUMBER.search(normalize_text(str(value)))
    if not match:
        return None
    token = match.group(1)
    if token.isdigit():
        return int(token)
    if token.startswith("十"):
        return 10 + (_CN_DIGITS[token[1]] if len(token) > 1 else 0)
    return _CN_DIGITS[token]


_cache_lock = threading.Lock()
_cache: Dict[str, Tuple[float, GuideData]] = {}
_broken: Dict[str, float] = {}  # path -> modification time of a version that failed


def load_guide(path: Optional[pathlib.Path] = None) -> GuideData:
    """Parsed guide data; re-read when the file's modification time changes.

    When an edit breaks the file, the last good version stays in use (and the error is
    logged), so one bad save does not take the walk away from everybody; without a good
    version the error is raised.
    """
    path = pathlib.Path(path or DEFAULT_STEPS_FILE)
    mtime = path.stat().st_mtime_ns
    key = str(path.resolve())
    with _cache_lock:
        cached = _cache.get(key)
        if cached and cached[0] == mtime:
            return cached[1]
        if cached and _broken.get(key) == mtime:
            return cached[1]  # known broken: already logged
    try:
        data = _parse_and_render(path)
    except GuideDataError as error:
        if cached is None:
            raise
        with _cache_lock:
            _broken[key] = mtime
        logger.error("%s is broken, still using the last good version: %s", path, error)
        return cached[1]
    with _cache_lock:
        _cache[key] = (mtime, data)
        _broken.pop(key, None)
    return data


def _parse_and_render(path: pathlib.Path) -> GuideData:
    """GuideData from the file, after every reply it can produce has been rendered once:
    a missing problem title or a step of the wrong shape is found here, not mid-walk."""
    try:
        with path.open(encoding="utf-8") as handle:
            data = GuideData(yaml.safe_load(handle) or {}, source=path.name)
        for wechat in (False, True):
            render = Renderer(data, wechat)
            render.choose_channel()
            render.finish()
            for channel, steps in data.steps.items():
                for whom in WHOM_VALUES:
                    for step in steps:
                        render.step(GuideState(channel=channel, for_whom=whom, step=step.number, active=True))
                    render.choose_whom(GuideState(channel=channel, active=True))
                    for problem in data.problems.values():  # also asked about outside a walk
                        f"{problem['title']}：{_per_whom(problem['text'], whom)}"
                    # "遇到问题" on every step: each of its problems' advice
                    for step in steps:
                        state = GuideState(channel=channel, for_whom=whom, step=step.number, active=True)
                        troubleshoot(data, "", state, wechat)
    except GuideDataError:
        raise
    except (OSError, yaml.YAMLError, KeyError, AttributeError, TypeError, ValueError, IndexError) as error:
        raise GuideDataError(f"{path.name}: {type(error).__name__}: {error}") from error
    return data


def validate_file(path: Optional[pathlib.Path] = None, sources: Sequence[str] = ()) -> List[str]:
    """Problems an operator's edit of guide_steps.yml can cause, as "ERROR: ..." lines
    (for `make validate-knowledge`); empty when the file is fine."""
    path = pathlib.Path(path or DEFAULT_STEPS_FILE)
    try:
        data = _parse_and_render(path)
    except GuideDataError as error:
        return [f"ERROR: {error}"]
    problems = []
    entries = [(f"step {step.id}", step.raw) for steps in data.steps.values() for step in steps]
    entries += [(f"problem {name}", raw) for name, raw in data.problems.items()]
    for where, raw in entries:
        if not isinstance(raw.get("verified"), bool):
            problems.append(f"ERROR: {path.name}: {where} needs verified: true or false")
        if not raw.get("source"):
            problems.append(f"ERROR: {path.name}: {where} needs a source")
        elif sources and raw["source"] not in sources:
            problems.append(f"ERROR: {path.name}: {where} cites unknown source {raw['source']!r}")
    return problems


# --- state and replies ----------------------------------------------------------------


@dataclasses.dataclass
class GuideState:
    channel: Optional[str] = None
    for_whom: Optional[str] = None
    step: Optional[int] = None
    active: bool = False
    awaiting: Optional[str] = None

    SLOTS = {
        "channel": "guide_channel",
        "for_whom": "guide_for_whom",
        "step": "guide_step",
        "active": "guide_active",
        "awaiting": "guide_awaiting",
    }

    @classmethod
    def from_slots(cls, slots: Mapping[str, Any], data: GuideData) -> "GuideState":
        channel = slots.get("guide_channel")
        whom = slots.get("guide_for_whom")
        step = slots.get("guide_step")
        state = cls(
            channel=channel if channel in data.channels else None,
            for_whom=whom if whom in WHOM_VALUES else None,
            step=int(step) if isinstance(step, (int, float)) and not isinstance(step, bool) else None,
            active=bool(slots.get("guide_active")),
            awaiting=slots.get("guide_awaiting") or None,
        )
        if state.channel is None or state.step is None or not 1 <= state.step <= data.step_count(state.channel):
            state.step = None  # e.g. the knowledge file lost a step since the last turn
        return state

    def to_slots(self) -> Dict[str, Any]:
        return {
            "guide_channel": self.channel,
            "guide_for_whom": self.for_whom,
            "guide_step": float(self.step) if self.step is not None else None,
            "guide_active": self.active,
            "guide_awaiting": self.awaiting,
        }


@dataclasses.dataclass
class Reply:
    text: str
    buttons: List[Dict[str, str]] = dataclasses.field(default_factory=list)

    def as_message(self) -> Dict[str, Any]:
        return {"text": self.text, "buttons": list(self.buttons)}


@dataclasses.dataclass
class Turn:
    replies: List[Reply]
    state: GuideState


def _button(title: str, payload_: str) -> Dict[str, str]:
    return {"title": title, "payload": payload_}


class Renderer:
    """Turns state into replies for one output channel (web: buttons; WeChat: the channel
    numbers the buttons, and mini-program links are added when configured)."""

    def __init__(self, data: GuideData, wechat: bool = False):
        self.data = data
        self.wechat = wechat

    def header(self, state: GuideState) -> str:
        label = self.data.channel_name(state.channel)
        if state.for_whom and self.data.asks_for_whom(state.channel):
            label += "·" + self.data.whom_name(state.for_whom)
        return f"【{label}】"

    def step(self, state: GuideState, prefix: str = "") -> Reply:
        data, whom = self.data, state.for_whom
        total = data.step_count(state.channel)
        step = data.step(state.channel, state.step)
        lines = []
        if prefix:
            lines.append(prefix)
        lines.append(f"{self.header(state)}第{step.number}步 / 共{total}步：{step.title()}")
        tap = step.tap(whom)
        unverified = not step.raw.get("verified") and not tap
        lines.append(step.text(whom) + (data.text("unverified_note") if unverified else ""))
        if tap:
            lines.append("找到并点：" + " → ".join(f"“{label}”" for label in tap) + f"（{data.caveat}）")
        tip = step.tip(whom)
        if tip:
            lines.append(f"提示：{tip}")
        if step.problems:
            titles = "、".join(str(data.problems[key]["title"]) for key in step.problems)
            lines.append(f"常见问题：{titles}，遇到了请点“遇到问题”。")
        link = self.miniprogram_link() if step.wants_miniprogram_link else ""
        if link:
            lines.append(link)
        # Always the same buttons in the same order: on WeChat they are numbered lines, and
        # "1 下一步, 2 上一步 …" should not shift from one step to the next.
        buttons = [
            _button("看完了" if step.number == total else "下一步", PAYLOAD_NEXT),
            _button("上一步", PAYLOAD_BACK),
            _button("遇到问题", PAYLOAD_STUCK),
            _button("重新开始", PAYLOAD_RESTART),
            _button("退出", PAYLOAD_STOP),
        ]
        return Reply("\n".join(lines), buttons)

    def miniprogram_link(self) -> str:
        config = self.data.miniprogram_link()
        if not self.wechat or not config:
            return ""
        appid, path, fallback, label = config
        return (
            f'<a href="{fallback}" data-miniprogram-appid="{appid}" '
            f'data-miniprogram-path="{path}">{label}</a>'
        )

    def choose_channel(self, prefix: str = "") -> Reply:
        data = self.data
        lines = [prefix] if prefix else []
        lines.append(data.text("choose_channel", "text"))
        for channel, entry in data.channels.items():
            lines.append(f"· {entry.get('button', channel)}：{entry.get('hint', '')}")
        footer = data.text("choose_channel", "footer")
        if footer:
            lines.append(footer)
        buttons = [
            _button(str(entry.get("button", channel)), payload(INFORM_CHANNEL, guide_channel=channel))
            for channel, entry in data.channels.items()
        ]
        return Reply("\n".join(lines), buttons)

    def choose_whom(self, state: GuideState) -> Reply:
        data = self.data
        text = f"好的，{data.channel_name(state.channel)}。" + data.text("choose_for_whom", "text")
        buttons = [
            _button(data.text("for_whom", whom, "button", default=whom), payload(INFORM_WHOM, guide_for_whom=whom))
            for whom in WHOM_VALUES
        ]
        return Reply(text, buttons)

    def offer_resume(self, state: GuideState, prefix: str = "") -> Reply:
        if state.channel and state.step:
            text = f"{prefix}继续第{state.step}步吗？"
            buttons = [_button(f"继续第{state.step}步", goto_payload(state.step)), _button("退出", PAYLOAD_STOP)]
        else:
            text = f"{prefix}要接着看申请步骤吗？"
            buttons = [_button("继续", PAYLOAD_NEXT), _button("退出", PAYLOAD_STOP)]
        return Reply(text, buttons)

    def finish(self) -> Reply:
        return Reply(
            self.data.text("finish", "text"),
            [_button("查申请进度", PAYLOAD_PROGRESS), _button("重新开始", PAYLOAD_RESTART)],
        )

    def paused(self, state: GuideState) -> Reply:
        if state.channel and state.step:
            where = f"{self.header(state)}第{state.step}步"
            text = f"好的，先停在{where}。想接着看时说“继续”，想从头来说“重新开始”。其他问题可以直接问我。"
        else:
            text = f"好的，已退出申请指引。其他问题可以直接问我，或拨打 {self.data.hotline}。"
        return Reply(text)


# --- the walk -------------------------------------------------------------------------


def _entity(entities: Mapping[str, Any], name: str) -> Optional[str]:
    value = entities.get(name)
    return str(value) if value not in (None, "") else None


def handle(
    data: GuideData,
    intent: str,
    text: str,
    state: GuideState,
    entities: Optional[Mapping[str, Any]] = None,
    wechat: bool = False,
    earlier_whom: Optional[str] = None,
) -> Turn:
    """One turn of the walk for a guide intent (or affirm/deny/stop while it is active).

    `earlier_whom`: who the application is for, as said earlier in the session
    (GuideData.whom_from_earlier); used instead of asking, and said so in the reply.
    """
    entities = entities or {}
    render = Renderer(data, wechat)
    state = dataclasses.replace(state)

    if intent == RESTART:
        state = GuideState(active=True, awaiting=AWAIT_CHANNEL)
        return Turn([render.choose_channel("好的，重新开始。")], state)

    if intent in (STOP, DENY):
        state.active, state.awaiting = False, None
        return Turn([render.paused(state)], state)

    if intent == STUCK:
        return troubleshoot(data, text, state, wechat)

    # What the message says about channel and person (button entities first, then words).
    channel = _entity(entities, "guide_channel")
    channel = channel if channel in data.channels else data.parse_channel(text)
    whom = _entity(entities, "guide_for_whom")
    whom = whom if whom in WHOM_VALUES else data.parse_whom(text)
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

    if state.channel is None:
        state.active, state.awaiting = True, AWAIT_CHANNEL
        return Turn([render.choose_channel()], state)
    prefix = ""
    if state.for_whom is None and data.asks_for_whom(state.channel):
        if earlier_whom not in WHOM_VALUES:
            state.active, state.awaiting = True, AWAIT_WHOM
            return Turn([render.choose_whom(state)], state)
        state.for_whom = earlier_whom
        prefix = data.text("for_whom", earlier_whom, "remembered")

    total = data.step_count(state.channel)
    if intent == GOTO:
        number = parse_step_number(entities.get("step_number")) or parse_step_number(text)
        if number is None or not 1 <= number <= total:
            state.step, state.active, state.awaiting = state.step or 1, True, None
            ask = "想看第几步？可以说“第3步”。" if number is None else ""
            return Turn([render.step(state, f"{ask}这个方式一共{total}步，请说第1到第{total}步。")], state)
        target = number
    elif state.step is None:
        target = 1
    elif intent in SETUP_INTENTS or state.awaiting in (AWAIT_CHANNEL, AWAIT_WHOM):
        target = state.step
        if intent == START:
            prefix += f"接着上次的第{target}步（想从头来，点“重新开始”）："
    elif intent == BACK:
        target = max(1, state.step - 1)
        if state.step == 1:
            prefix = "已经是第一步了。"
    elif not state.active or state.awaiting == AWAIT_RESUME:
        target = state.step  # coming back after a question or a pause: same step again
    else:  # next / affirm
        if state.step >= total:
            state.active, state.awaiting = False, None
            return Turn([render.finish()], state)
        target = state.step + 1

    state.step, state.active, state.awaiting = target, True, None
    return Turn([render.step(state, prefix)], state)


def troubleshoot(
    data: GuideData, text: str, state: GuideState, wechat: bool = False, intent: str = ""
) -> Turn:
    """'人脸识别不过' during the walk: the current step's advice, then offer to continue."""
    render = Renderer(data, wechat)
    state = dataclasses.replace(state)
    kind = data.parse_problem(text) or data.problem_for_intent(intent)
    whom = state.for_whom
    if not (state.channel and state.step):
        lines = []
        if kind and kind in data.problems:
            problem = data.problems[kind]
            lines.append(f"{problem['title']}：{_per_whom(problem['text'], whom)}")
        lines.append("想一步步看怎么申请，请说“怎么申请”。")
        return Turn([Reply("\n".join(lines), [_button("怎么申请", payload(START))])], state)

    step = data.step(state.channel, state.step)
    keys: List[str] = []
    header = f"第{step.number}步“{step.title()}”遇到问题："
    if kind and kind in step.problems:
        keys = [kind]
    elif kind:
        other = next((s for s in data.steps[state.channel] if kind in s.problems), None)
        if other is not None:
            keys = [kind]
            header = f"这个问题通常出现在第{other.number}步“{other.title()}”："
    elif step.problems:
        keys = step.problems
    lines = [header]
    if keys:
        for key in keys:
            problem = data.problems[key]
            lines.append(f"· {problem['title']}：{_per_whom(problem['text'], whom)}")
    else:
        lines.append(data.text("generic_problem", "text"))
    state.active, state.awaiting = True, AWAIT_RESUME
    return Turn([render.offer_resume(state, "\n".join(lines) + "\n")], state)


def offer_resume(data: GuideData, state: GuideState, text: str = "", wechat: bool = False) -> Turn:
    """After a question answered mid-walk: '继续第4步吗？'.

    When the walk was waiting for the channel or the person and the question also gave
    it ("帮我妈申请可以吗" after "给自己还是帮家人？"), the walk goes on with that answer.
    """
    if state.awaiting == AWAIT_CHANNEL and data.parse_channel(text):
        return handle(data, INFORM_CHANNEL, text, state, wechat=wechat)
    if state.awaiting == AWAIT_WHOM and data.parse_whom(text):
        return handle(data, INFORM_WHOM, text, state, wechat=wechat)
    state = dataclasses.replace(state, active=True, awaiting=AWAIT_RESUME)
    return Turn([Renderer(data, wechat).offer_resume(state)], state)


def repeat(data: GuideData, state: GuideState, wechat: bool = False) -> Turn:
    """"没看懂" / "啥意思" during the walk: the current step again (or the open question
    about channel or person), with a word on how to ask about it."""
    if not (state.channel and state.step):
        return handle(data, START, "", state, wechat=wechat)
    state = dataclasses.replace(state, active=True, awaiting=None)
    prefix = data.text("repeat", "text", default="没关系，这一步再说一遍。")
    return Turn([Renderer(data, wechat).step(state, prefix)], state)

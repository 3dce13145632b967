"""knowledge/guide_steps.yml as the walk reads it: channels, people, steps, problems, phrases.

Pure Python (PyYAML + core/); no Rasa. {hotline}, {hotline_name} and {window} in any text
of the file are filled from knowledge/contacts.yml when the file is read.
"""
import dataclasses
import json
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from assistant.contacts import contact_context
from core.textnorm import normalize_text

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
OVERVIEW = "ask_process"  # "申请流程" / "要走哪些步骤": the whole process, then the walk offered
SETUP_INTENTS = (START, INFORM_CHANNEL, INFORM_WHOM)
CONTINUE_INTENTS = (NEXT, AFFIRM)  # "下一步", "好", "继续", "嗯"
APPLY_FOR_OTHERS = "ask_apply_for_others"  # a knowledge question; tells who it is for

# Button payloads. The WeChat channel numbers buttons, so "1" is always the first one.
PAYLOAD_NEXT = "/guide_next"
PAYLOAD_BACK = "/guide_back"
PAYLOAD_STUCK = "/guide_stuck"
PAYLOAD_RESTART = "/guide_restart"
PAYLOAD_STOP = "/stop"
PAYLOAD_PROGRESS = "/check_progress"

# Placeholders filled from knowledge/contacts.yml in every text of the file.
CONTACT_FIELDS = ("hotline_name", "hotline", "window")


def payload(intent: str, **entities: Any) -> str:
    if not entities:
        return f"/{intent}"
    return f"/{intent}" + json.dumps(entities, ensure_ascii=False, separators=(",", ":"))


def goto_payload(step: int) -> str:
    return payload(GOTO, step_number=str(step))


class GuideDataError(ValueError):
    """knowledge/guide_steps.yml is missing something the walk needs."""


ANY = "any"  # the text said while nobody has said who the application is for


def per_whom(value: Any, whom: Optional[str]) -> Any:
    """A text (or list) that may differ for self and family: {self: ..., family: ..., any: ...}.
    Without a person: `any` if given, else the self text."""
    if isinstance(value, Mapping) and set(value) <= {*WHOM_VALUES, ANY}:
        if whom is None and ANY in value:
            return value[ANY]
        return value.get(whom or SELF, value.get(SELF))
    return value


def _fill_contacts(node: Any, contacts: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        for name in CONTACT_FIELDS:
            node = node.replace("{" + name + "}", contacts[name])
        return node
    if isinstance(node, Mapping):
        return {key: _fill_contacts(value, contacts) for key, value in node.items()}
    if isinstance(node, list):
        return [_fill_contacts(value, contacts) for value in node]
    return node


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
        return str(per_whom(self.raw["text"], whom))

    def tip(self, whom: Optional[str]) -> str:
        return str(per_whom(self.raw.get("tip") or "", whom))

    def tap(self, whom: Optional[str]) -> List[str]:
        return [str(label) for label in (per_whom(self.raw.get("tap") or [], whom) or [])]

    @property
    def problems(self) -> List[str]:
        return [str(key) for key in self.raw.get("problems") or []]

    @property
    def wants_miniprogram_link(self) -> bool:
        return bool(self.raw.get("miniprogram_link"))

    @property
    def asks_for_whom(self) -> bool:
        """The app asks 本人 / 为他人 here: the walk needs to know who it is for from here on."""
        return bool(self.raw.get("for_whom_step"))

    @property
    def tap_alternatives(self) -> bool:
        return bool(self.raw.get("tap_alternatives"))

    @property
    def jump_words(self) -> List[str]:
        return [str(word) for word in self.raw.get("jump_words") or []]


class GuideData:
    """knowledge/guide_steps.yml, parsed and checked."""

    def __init__(self, document: Mapping[str, Any], source: str = "guide_steps.yml",
                 contacts: Optional[Mapping[str, str]] = None):
        contacts = dict(contacts or contact_context())
        if str(document.get("hotline") or "").strip():  # an explicit override in the file
            contacts["hotline"] = str(document["hotline"]).strip()
        self.hotline = contacts["hotline"]
        document = _fill_contacts(document, contacts)
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
            self.phrases: Mapping[str, Any] = dict(document["phrases"])
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

    def phrase(self, key: str, **values: Any) -> str:
        """A navigation phrase from `phrases:`; a missing one is a data error."""
        if key not in self.phrases:
            raise GuideDataError(f"{self.source}: phrases.{key} missing")
        return str(self.phrases[key]).format(**values)

    def button(self, key: str, **values: Any) -> str:
        buttons = self.phrases.get("buttons") or {}
        if key not in buttons:
            raise GuideDataError(f"{self.source}: phrases.buttons.{key} missing")
        return str(buttons[key]).format(**values)

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

    @property
    def default_channel(self) -> str:
        channel = str(self.doc.get("default_channel") or "")
        return channel if channel in self.channels else next(iter(self.channels))

    def whom_step(self, channel: str) -> Optional[int]:
        """The first step where the app asks who the application is for (None: never)."""
        if not self.asks_for_whom(channel):
            return None
        return next((step.number for step in self.steps[channel] if step.asks_for_whom), None)

    def jump_target(self, text: str, channel: str) -> Optional[int]:
        """"入口在哪" -> the entry step of this channel (jump_words), longest word first."""
        return self._longest_match(text, channel, lambda step: step.jump_words)

    def named_step(self, text: str, channel: str) -> Optional[int]:
        """"去实名认证那一步" -> the step of this channel named by its jump_words or a word of
        its title, longest word first. Only for guide_goto: title words such as 病种 are too
        common in "怎么申请" requests to jump on."""
        return self._longest_match(text, channel, lambda step: step.jump_words + title_words(step.title()))

    def _longest_match(self, text: str, channel: str, words_of: Any) -> Optional[int]:
        norm = normalize_text(text or "").lower()
        best = None
        for step in self.steps[channel]:
            for word in words_of(step):
                if word.lower() in norm and (best is None or len(word) > best[0]):
                    best = (len(word), step.number)
        return best[1] if best else None

    def miniprogram_link(self) -> Optional[Tuple[str, str, str, str]]:
        """(appid, path, https fallback, label) when fully configured, else None."""
        link = self.doc.get("miniprogram_link") or {}
        appid = str(link.get("appid") or "").strip()
        path = str(link.get("path") or "").strip()
        fallback = str(link.get("fallback_url") or "").strip()
        label = str(link.get("label") or "").strip() or self.phrase("miniprogram_label")
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


# "注册登录、实名认证", "核对并提交": the parts of a title people name a step by.
_TITLE_PARTS = re.compile(r"[、，,并]")


def title_words(title: str) -> List[str]:
    """"注册登录、实名认证" -> 注册登录, 实名认证, 注册, 登录, 实名, 认证. A four-character
    part is nearly always two words, and people say either ("选病种那步", "病种那步")."""
    parts = [part.strip() for part in _TITLE_PARTS.split(title) if part.strip()]
    halves = [half for part in parts if len(part) == 4 for half in (part[:2], part[2:])]
    return parts + halves


_CN_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
_STEP_NUMBER = re.compile(r"(\d{1,2}|十[一二三四五六七八九]?|[一二两三四五六七八九])")
# 一 and 四 that are not step numbers: "那一步", "看一下", "一步步来", "四川医保".
_NOT_A_NUMBER = re.compile(r"(?<=[那这哪上下每])一|(?<!第)一(?=[下些点哈共起样直定般]|步步)|四(?=川)")


def parse_step_number(value: Any) -> Optional[int]:
    """'第3步', '3', '第三步', '去第十步' -> int; None when there is no number."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    match = _STEP_NUMBER.search(_NOT_A_NUMBER.sub("", normalize_text(str(value))))
    if not match:
        return None
    token = match.group(1)
    if token.isdigit():
        return int(token)
    if token.startswith("十"):
        return 10 + (_CN_DIGITS[token[1]] if len(token) > 1 else 0)
    return _CN_DIGITS[token]

"""The editable knowledge base (knowledge/*.yml): the model and its answers.

Importable without Rasa (only PyYAML and core/), so the action server, the web console
and the tests share one reading of the files. Checks are in assistant/knowledge_checks.py,
cached access (re-read on change) in assistant/content.py.
"""
from __future__ import annotations

import logging
import pathlib
import re
import string
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import yaml

from assistant.contacts import contact_fields
from core import defaults
from core.textnorm import normalize_text

logger = logging.getLogger(__name__)

KNOWLEDGE_DIR = defaults.KNOWLEDGE_DIR

# The files this module owns. Other files in knowledge/ (wechat_menu.yml,
# guide_steps.yml) belong to other parts of the assistant and are not read here.
FILES = ("sources.yml", "contacts.yml", "channels.yml", "diseases.yml", "topics.yml", "intents.yml")

MAX_CHARS = 200  # per message, whitespace not counted: short replies for older readers
# Where possible a message stays within this (assistant/presentation.py: SOFT_CHARS): a
# long answer goes out as two short messages (e.g. the text, then its caveat).
PREFERRED_CHARS = 120
MAX_TITLE_CHARS = 10
MAX_NEXT = 3

# Topics whose answers depend on the disease(s) asked about, and the templates they need.
# A reply carries the hedge ("以…为准") and the hotline at most once and ends with one
# next step: `check_list` (coverage) and `unknown_note` (materials) are said once however
# many diseases need checking, and then take the place of `footer`.
DISEASE_TOPICS = {
    "disease_coverage": ("verified_line", "unverified_line", "criteria_line", "no_criteria",
                         "footer", "unknown", "unknown_unnamed", "check_list",
                         "covered_line", "covered_maybe", "loose_line"),
    "materials": ("for_diseases", "extras_known", "extras_unknown", "unknown_note", "footer",
                  "covered_line", "covered_maybe", "loose_line"),
}
FALLBACK_KEYS = ("ask_two", "ask_one", "none_of_these", "handoff", "no_content", "not_understood",
                 "rephrase")

# Placeholders each kind of template may use.
BASE_FIELDS = {"hotline", "hotline_name", "hotline_description", "window",
               "channel_lines", "material_items", "disease_list",
               "verified_disease_list", "unverified_disease_list"}

VARIANT_FIELDS = {
    "verified_line": {"name"},
    "unverified_line": {"name"},
    "criteria_line": {"name", "criteria"},
    "unknown": {"name"},
    "for_diseases": {"names", "extras"},
    "extras_known": {"name", "extra_materials"},
    "unknown_note": {"name"},
    "covered_line": {"name", "disease"},
    "covered_maybe": {"name", "disease"},
    "loose_line": {"name"},
}
# diseases.yml `covers`: the lists it may have (see the file's header)
COVERS_KEYS = ("endings", "maybe_endings", "sure_prefixes", "not_prefixes")
FALLBACK_FIELDS = {"ask_two": {"first", "second"}, "ask_one": {"first"}}


class KnowledgeError(Exception):
    """The knowledge files cannot be used (missing, unparsable or inconsistent)."""


# Markup the reader does not see: a link's tags (WeChat's `<a href=… data-miniprogram-…>`).
_TAG = re.compile(r"<[^<>\n]+>")


def visible_length(text: str) -> int:
    """Characters a reader sees: whitespace and the tags of links are not counted."""
    return sum(1 for char in _TAG.sub("", text) if not char.isspace())


def placeholders(template: str) -> set:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _numbered(items: Iterable[str]) -> str:
    return "\n".join(f"{index}. {item}" for index, item in enumerate(items, start=1))


@dataclass(frozen=True)
class Disease:
    name: str
    aliases: Tuple[str, ...]
    category: str
    criteria: Optional[str]
    extra_materials: Tuple[str, ...]
    source: str
    verified: bool
    # aliases that are a symptom or a broader word, not the diagnosis ("血糖高")
    loose_aliases: Tuple[str, ...] = ()
    # names it covers by how they are written: {"endings": ("癌", …), …} (COVERS_KEYS)
    covers: Mapping[str, Tuple[str, ...]] = field(default_factory=dict, hash=False)

    def covering(self, name: str) -> Optional[bool]:
        """True: `name` is this disease by how it is written ("胰腺癌"); False: it may be
        ("子宫肌瘤"); None: it is not ("良性肿瘤", "白癜风")."""
        rules = self.covers
        if not name or name.startswith(tuple(rules.get("not_prefixes", ()))):
            return None
        if name.endswith(tuple(rules.get("endings", ()))):
            return True
        if name.endswith(tuple(rules.get("maybe_endings", ()))):
            return name.startswith(tuple(rules.get("sure_prefixes", ())))
        return None


@dataclass
class Answer:
    """What the bot says for one question: messages, buttons, and what to remember."""

    topic: str
    messages: List[str]
    buttons: List[Dict[str, str]] = field(default_factory=list)
    diseases: List[str] = field(default_factory=list)  # canonical names answered about
    unknown: List[str] = field(default_factory=list)  # disease-like names not in the catalogue


def _names(value: Any) -> Tuple[str, ...]:
    return tuple(str(item) for item in value) if isinstance(value, list) else ()


class KnowledgeBase:
    def __init__(self, documents: Dict[str, Any], directory: pathlib.Path = KNOWLEDGE_DIR):
        self.directory = directory
        self.documents = documents
        self.sources: Dict[str, Any] = (documents.get("sources.yml") or {}).get("sources") or {}
        self.contacts: Dict[str, Any] = documents.get("contacts.yml") or {}
        channels_doc = documents.get("channels.yml") or {}
        self.channels: List[Dict[str, Any]] = channels_doc.get("channels") or []
        self.comparison_rows: Dict[str, str] = channels_doc.get("comparison_rows") or {}
        topics_doc = documents.get("topics.yml") or {}
        self.topics: Dict[str, Dict[str, Any]] = topics_doc.get("topics") or {}
        self.caveat_template: str = topics_doc.get("caveat") or ""
        # for topics marked `outside_nanchong: true`: plain 12393 reaches the caller's local
        # line, so the caveat also says how to reach 南充 from elsewhere (FACTS.md 2026-12)
        self.caveat_outside_template: str = topics_doc.get("caveat_outside") or self.caveat_template
        self.fallback: Dict[str, Any] = topics_doc.get("fallback") or {}
        self.intents: Dict[str, Dict[str, Any]] = (documents.get("intents.yml") or {}).get("intents") or {}
        self.diseases: List[Disease] = [
            Disease(
                name=str(entry.get("name", "")),
                aliases=tuple(str(alias) for alias in entry.get("aliases") or []),
                category=str(entry.get("category", "")),
                criteria=entry.get("criteria"),
                extra_materials=tuple(entry.get("extra_materials") or []),
                source=entry.get("source"),
                verified=entry.get("verified"),
                loose_aliases=tuple(normalize_text(alias) for alias in _names(entry.get("loose_aliases"))),
                covers={key: _names(value) for key, value in (entry.get("covers") or {}).items()
                        if key in COVERS_KEYS} if isinstance(entry.get("covers"), dict) else {},
            )
            for entry in (documents.get("diseases.yml") or {}).get("diseases") or []
            if isinstance(entry, dict)
        ]
        self.by_name: Dict[str, Disease] = {disease.name: disease for disease in self.diseases}
        self.alias_index: Dict[str, str] = {}
        for disease in self.diseases:
            for name in (disease.name, *disease.aliases):
                self.alias_index.setdefault(normalize_text(name), disease.name)

    # --- loading ----------------------------------------------------------------------
    @classmethod
    def load(cls, directory: pathlib.Path = KNOWLEDGE_DIR) -> "KnowledgeBase":
        documents = {}
        for name in FILES:
            path = directory / name
            try:
                with path.open(encoding="utf-8") as handle:
                    documents[name] = yaml.safe_load(handle) or {}
            except FileNotFoundError as error:
                raise KnowledgeError(f"{path}: missing") from error
            except yaml.YAMLError as error:
                raise KnowledgeError(f"{path}: not valid YAML: {error}") from error
            if not isinstance(documents[name], dict):
                raise KnowledgeError(f"{path}: top level must be a mapping")
        return cls(documents, directory)

    # --- lookups ----------------------------------------------------------------------
    def canonical(self, name: str) -> Optional[str]:
        """Canonical disease name for a name or alias, None if the catalogue lacks it."""
        return self.alias_index.get(normalize_text(name or ""))

    def covering(self, name: str) -> Optional[Tuple[str, bool]]:
        """(canonical name, sure) of the disease whose `covers` takes a name the catalogue
        does not list: ("恶性肿瘤门诊放化疗", True) for "胰腺癌", (…, False) for "子宫肌瘤"."""
        name = normalize_text(name or "")
        if not name or name in self.alias_index:
            return None
        for disease in self.diseases:
            sure = disease.covering(name)
            if sure is not None:
                return disease.name, sure
        return None

    def is_loose(self, word: str) -> bool:
        """The word is one of its disease's loose aliases ("血糖高"), not the diagnosis."""
        name = self.canonical(word)
        return bool(name) and normalize_text(word) in self.by_name[name].loose_aliases

    def topic_for_intent(self, intent: str) -> Optional[str]:
        entry = self.intents.get(intent) or {}
        return entry.get("topic")

    def title_for_intent(self, intent: str) -> Optional[str]:
        entry = self.intents.get(intent) or {}
        return entry.get("title")

    def caveat(self, outside_nanchong: bool = False) -> str:
        template = self.caveat_outside_template if outside_nanchong else self.caveat_template
        return template.format_map(self.base_context())

    def base_context(self) -> Dict[str, str]:
        apply_channels = [channel for channel in self.channels if channel.get("apply")]
        items = [str(item) for item in (self.topics.get("materials") or {}).get("items") or []]
        return {
            **contact_fields(self.contacts),
            # bullets, not numbers: on WeChat the numbered lines are the buttons under the
            # answer, and "2" must not look like the second channel
            "channel_lines": "\n".join(
                f"· {channel['name']}：{channel.get('convenience', '')}；适合{channel.get('suits', '')}。"
                for channel in apply_channels
            ),
            "material_items": _numbered(
                item + ("。" if index == len(items) - 1 else "；") for index, item in enumerate(items)
            ),
            "disease_list": "、".join(disease.name for disease in self.diseases),
            # verified = confirmed by a source as a 门诊慢特病 (national list); the others
            # are common elsewhere and must be presented as not confirmed for 南充
            "verified_disease_list": "、".join(d.name for d in self.diseases if d.verified),
            "unverified_disease_list": "、".join(d.name for d in self.diseases if not d.verified),
        }

    def _render(self, template: str, **values: str) -> str:
        context = self.base_context()
        context.update(values)
        return template.format_map(context).strip()

    # --- answers ----------------------------------------------------------------------
    def suggestions(self, topic_id: str) -> List[Dict[str, str]]:
        buttons = []
        for intent in (self.topics.get(topic_id) or {}).get("next") or []:
            title = self.title_for_intent(intent)
            if title:
                buttons.append({"title": title, "payload": f"/{intent}"})
        return buttons[:MAX_NEXT]

    def answer_topic(
        self,
        topic_id: str,
        diseases: Sequence[str] = (),
        unknown: Sequence[str] = (),
        said: Iterable[Tuple[str, str]] = (),
    ) -> Answer:
        """Render a topic. `diseases` are canonical names; `unknown` disease-like names
        the catalogue does not know; `said` (canonical name, word typed) pairs tell how the
        message named a disease ("血糖高", "胰腺癌"), for the lines about that."""
        topic = self.topics.get(topic_id)
        if topic is None:
            raise KnowledgeError(f"unknown topic {topic_id!r}")
        known = [self.by_name[name] for name in dict.fromkeys(diseases) if name in self.by_name]
        unknown = [name for name in dict.fromkeys(unknown) if name]
        words: Dict[str, List[str]] = {}
        for name, word in said or ():
            words.setdefault(name, []).append(str(word))
        if topic_id == "disease_coverage":
            lines = self._coverage_lines(topic, known, unknown, words)
        elif topic_id == "materials":
            lines = self._materials_lines(topic, known, unknown, words)
        else:
            lines = [self._render(topic["answer"])]
        if not topic.get("verified"):
            lines.append(self.caveat(bool(topic.get("outside_nanchong"))))
        return Answer(
            topic=topic_id,
            # past 120 characters the caveat (or the disease lines) go as a message of their own
            messages=pack(lines, preferred=PREFERRED_CHARS),
            buttons=self.suggestions(topic_id),
            diseases=[disease.name for disease in known],
            unknown=unknown,
        )

    def _naming_lines(self, variants, disease: Disease, words: Sequence[str]) -> Tuple[List[str], List[str]]:
        """How the message named the disease, as (lines before, lines after) its answer:
        a name it covers ("胰腺癌" -> covered_line) first, a loose alias alone ("血糖高" ->
        loose_line: a diagnosis is needed) after. Nothing when it was named directly."""
        covered = [word for word in dict.fromkeys(words) if self.covering(word) == (disease.name, True)]
        direct = any(self.canonical(word) == disease.name and not self.is_loose(word) for word in words)
        before = [self._render(variants["covered_line"], name="”“".join(covered), disease=disease.name)
                  ] if covered else []
        after = [self._render(variants["loose_line"], name=disease.name)] if not direct and any(
            self.is_loose(word) for word in words) else []
        return before, after

    def _maybe_covered(self, name: str) -> Optional[str]:
        """The disease a name may belong to ("子宫肌瘤": only if malignant), else None."""
        covering = self.covering(name)
        return covering[0] if covering and not covering[1] else None

    def _coverage_lines(self, topic, known: List[Disease], unknown: List[str],
                        words: Mapping[str, Sequence[str]]) -> List[str]:
        variants = topic.get("variants") or {}
        if not known and not unknown:
            # the catalogue: each line of the answer may go out as a message of its own
            return self._render(topic["answer"]).split("\n")
        per_disease = []
        inferred = False  # a disease reached through `covers`: our reading, not the catalogue's
        for disease in known:
            before, after = self._naming_lines(variants, disease, words.get(disease.name, ()))
            inferred = inferred or bool(before)
            key = "verified_line" if disease.verified else "unverified_line"
            line = self._render(variants[key], name=disease.name)
            if disease.criteria:
                line += self._render(variants["criteria_line"], name=disease.name,
                                     criteria=str(disease.criteria))
            per_disease.append("".join([*before, line, *after]))
        for name in unknown:
            maybe = self._maybe_covered(name)
            per_disease.append(self._render(variants["covered_maybe"], name=name, disease=maybe) if maybe
                               else self._render(variants["unknown"], name=name))
        # several diseases: one numbered line each, so each answer stands out
        lines = per_disease if len(per_disease) == 1 else [
            f"{index}. {line}" for index, line in enumerate(per_disease, start=1)
        ]
        # criteria matter once a disease is on the list: said for the national-list ones only
        # (for the others, whether they are on 南充's list at all comes first)
        if any(disease.verified and not disease.criteria for disease in known):
            lines.append(self._render(variants["no_criteria"]))
        # one next step: check the official list (said once, with the one hedge and the
        # hotline) when any disease is not confirmed or not known, else the materials
        if unknown or inferred or any(not disease.verified for disease in known):
            lines.append(self._render(variants["check_list"]))
        elif known:
            lines.append(self._render(variants["footer"]))
        return lines

    def _materials_lines(self, topic, known: List[Disease], unknown: List[str],
                         words: Mapping[str, Sequence[str]]) -> List[str]:
        variants = topic.get("variants") or {}
        # the unknown names in one line (one hotline), which is then the next step; the
        # template quotes {name}: “白癜风”, or “白癜风”“痛风” for several
        ending = [self._render(variants["unknown_note"], name="”“".join(unknown))] if unknown else [
            self._render(variants["footer"])]
        # "子宫肌瘤": which disease it would be if malignant, before that next step
        ending[:0] = [self._render(variants["covered_maybe"], name=name, disease=maybe)
                      for name in unknown for maybe in [self._maybe_covered(name)] if maybe]
        # how the diseases were named ("胰腺癌", "血糖高"): after the list, in the shorter
        # message with the next step (before it, it would be a message of its own)
        naming = [line for disease in known
                  for line in sum(self._naming_lines(variants, disease, words.get(disease.name, ())), [])]
        if not known:
            return [self._render(topic["answer"]), *ending]
        extras = []
        for disease in known:
            if disease.extra_materials:
                extras.append(self._render(variants["extras_known"], name=disease.name,
                                           extra_materials="、".join(disease.extra_materials)))
        if any(not disease.extra_materials for disease in known):
            extras.append(self._render(variants["extras_unknown"]))
        names = "".join(f"「{disease.name}」" for disease in known)
        return [self._render(variants["for_diseases"], names=names, extras="\n".join(extras)), *naming, *ending]

    # --- fallback ladder --------------------------------------------------------------
    def fallback_question(self, intents: Sequence[str]) -> Optional[Answer]:
        """'您是想问…？' for the best (up to two) guesses that have a title."""
        titled = [intent for intent in dict.fromkeys(intents) if self.title_for_intent(intent)][:2]
        if not titled:
            return None
        titles = [self.title_for_intent(intent) for intent in titled]
        if len(titled) == 2:
            text = self._render(self.fallback["ask_two"], first=titles[0], second=titles[1])
        else:
            text = self._render(self.fallback["ask_one"], first=titles[0])
        buttons = [{"title": title, "payload": f"/{intent}"} for intent, title in zip(titled, titles)]
        buttons.append({"title": self.fallback["none_of_these"], "payload": "/ask_human"})
        return Answer(topic="fallback", messages=[text], buttons=buttons)

    def rephrase(self) -> Answer:
        """The ladder's first rung when there is no guess to offer: ask for other words."""
        return Answer(topic="rephrase", messages=[self._render(self.fallback["rephrase"])])

    def handoff(self) -> Answer:
        return Answer(topic="handoff", messages=[self._render(self.fallback["handoff"])])

    def not_understood(self) -> Answer:
        """"没看懂" outside the walk: say it again differently, the walk, or a person."""
        buttons = [{"title": self.title_for_intent(intent), "payload": f"/{intent}"}
                   for intent in ("start_guide", "ask_human") if self.title_for_intent(intent)]
        return Answer(topic="not_understood", messages=[self._render(self.fallback["not_understood"])],
                      buttons=buttons)

    def no_content(self) -> Answer:
        """For "？？？", "..." or a lone emoji: ask for words, offer the hotline."""
        return Answer(topic="no_content", messages=[self._render(self.fallback["no_content"])])

    def recognise_diseases(self, text: str) -> List[str]:
        """Canonical names of catalogue diseases in free text, longest names first
        (the same rule the NLU lookup table follows). For tools without Rasa."""
        return list(dict.fromkeys(name for _, _, name in self.find_diseases(text)))

    def find_diseases(self, text: str) -> List[Tuple[int, str, str]]:
        """(position, name or alias as found, canonical name) of every catalogue name in
        the normalised text, in text order, longest names first where they overlap."""
        text = normalize_text(text)
        names = sorted(self.alias_index, key=lambda name: (-len(name), name))
        found, taken = [], [False] * len(text)
        for name in names:
            for match in re.finditer(re.escape(name), text):
                span = range(match.start(), match.end())
                if not any(taken[i] for i in span):
                    for i in span:
                        taken[i] = True
                    found.append((match.start(), name, self.alias_index[name]))
        return sorted(found)


def pack(lines: Sequence[str], limit: int = MAX_CHARS, preferred: Optional[int] = None) -> List[str]:
    """Join lines into as few messages as possible, each within `limit` characters (and
    within `preferred` unless a line alone is longer)."""
    limit = min(limit, preferred or limit)
    messages: List[str] = []
    current: List[str] = []
    size = 0  # visible characters in `current` (line breaks are not counted)
    for line in lines:
        if not line:
            continue
        length = visible_length(line)
        if current and size + length > limit:
            messages.append("\n".join(current))
            current, size = [], 0
        current.append(line)
        size += length
    if current:
        messages.append("\n".join(current))
    return messages



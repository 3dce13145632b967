"""The editable knowledge base (knowledge/*.yml): loading, rendering answers, validation.

Importable without Rasa (only PyYAML and assistant.textnorm), so the action server, the
web console and the tests share one reading of the files.

    python -m assistant.knowledge --validate     # schema + cross-references, exit 1 on errors

The action server calls `get_knowledge()`: the files are read on first use (not at
import), cached, and re-read when one of them changes on disk, so an operator's edit
shows up at the next message without a restart. A broken edit keeps the last good
version in service (and is reported by the validator and in the log).
"""
from __future__ import annotations

import argparse
import logging
import pathlib
import re
import string
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import yaml

from assistant.textnorm import normalize_text

logger = logging.getLogger(__name__)

ROOT = pathlib.Path(__file__).resolve().parent.parent
KNOWLEDGE_DIR = ROOT / "knowledge"
DOMAIN_DIR = ROOT / "domain"

# The files this module owns. Other files in knowledge/ (wechat_menu.yml,
# guide_steps.yml) belong to other parts of the assistant and are not read here.
FILES = ("sources.yml", "contacts.yml", "channels.yml", "diseases.yml", "topics.yml", "intents.yml")

MAX_CHARS = 300  # per message, whitespace not counted: short replies for older readers
MAX_TITLE_CHARS = 10
MAX_NEXT = 3

# Topics whose answers depend on the disease(s) asked about, and the templates they need.
DISEASE_TOPICS = {
    "disease_coverage": ("verified_line", "unverified_line", "criteria_line", "no_criteria",
                         "footer", "unknown", "unknown_unnamed"),
    "materials": ("for_diseases", "extras_known", "extras_unknown", "unknown_note"),
}
FALLBACK_KEYS = ("ask_two", "ask_one", "none_of_these", "handoff", "no_content", "not_understood")

# Placeholders each kind of template may use.
BASE_FIELDS = {"hotline", "hotline_name", "hotline_description", "window",
               "channel_lines", "material_items", "disease_list",
               "verified_disease_list", "unverified_disease_list"}

# Used only when knowledge/contacts.yml itself cannot be read (see contact_context()).
DEFAULT_HOTLINE = {"hotline": "12393", "hotline_name": "医保服务热线", "window": "医保经办大厅"}
VARIANT_FIELDS = {
    "verified_line": {"name"},
    "unverified_line": {"name"},
    "criteria_line": {"name", "criteria"},
    "unknown": {"name"},
    "for_diseases": {"names", "extras"},
    "extras_known": {"name", "extra_materials"},
    "unknown_note": {"name"},
}
FALLBACK_FIELDS = {"ask_two": {"first", "second"}, "ask_one": {"first"}}


class KnowledgeError(Exception):
    """The knowledge files cannot be used (missing, unparsable or inconsistent)."""


def visible_length(text: str) -> int:
    return sum(1 for char in text if not char.isspace())


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


@dataclass
class Answer:
    """What the bot says for one question: messages, buttons, and what to remember."""

    topic: str
    messages: List[str]
    buttons: List[Dict[str, str]] = field(default_factory=list)
    diseases: List[str] = field(default_factory=list)  # canonical names answered about
    unknown: List[str] = field(default_factory=list)  # disease-like names not in the catalogue


# --- spotting disease names the catalogue does not know -------------------------------
# Words that are not a disease name, removed before looking for one ("我妈得了白癜风能办不"
# -> "白癜风"). Longest first so "门诊慢特病" goes before "慢特病".
_FILLERS = sorted("""
门诊慢特病 门诊特殊病 特殊病种 慢特病 特病 慢病 门特 慢性病 病种 这个病 那个病 什么病 啥子病 啥病
哪些病 哪种病 哪个病 病人 生病 看病 病历 病情 毛病 疾病
医保 四川 南充 报销 申请 申报 办理 认定 待遇 资格 目录 范围 材料 资料 东西 准备 证明
能不能 能否 可不可以 可以 能 算不算 属不属于 属于 算 在不在 包不包括 包括 报不报 有没有 是不是
得了 得的是 患有 患了 查出 确诊 诊断为 诊断 检查出 得 患 有 是 在 要 需要 带 交 办 报
我 你 他 她 俺 咱 我们 家里 屋头 老汉儿 老汉 老妈 老爸 妈妈 爸爸 妈 爸 父亲 母亲 爷爷 奶奶 外公 外婆
婆婆 公公 老公 老婆 爱人 儿子 女儿 孩子 娃儿 家人 亲戚 老人 老年人 自己 本人
请问 问一下 问下 想问 咨询 那么 那 这个 那个 还有 以及 和 跟 与 或者 的 了 也 都 还 就 呢 吗 嘛 么
不 没 啊 哦 哈 噻 唦 哇 呀 吧 啥子 什么 啥 哪些 怎么 咋个 咋 啷个 如何 多少 一下 下
""".split(), key=len, reverse=True)
_FILLER_RE = re.compile("|".join(re.escape(word) for word in _FILLERS))
_DISEASE_SUFFIX = re.compile(
    r"(病|症|癌|炎|瘤|综合征|衰竭|硬化|贫血|结石|痛风|哮喘|狼疮|痴呆|畸形|损伤|麻痹|风|瘫|梗|障碍)$"
)
_NON_CJK = re.compile(r"[^\u4e00-\u9fff]+")


_LIST_QUESTION = re.compile(
    r"(哪些|哪几|哪种|什么|啥子?|多少种?|几种).{0,3}病|病种.{0,4}(有哪些|有啥|目录|清单|范围|名单)|目录|名单"
)


def asks_for_the_list(text: str) -> bool:
    """"哪些病能办" / "病种目录": the question is about the catalogue, not one disease."""
    return bool(_LIST_QUESTION.search(normalize_text(text)))


def disease_like_phrases(text: str) -> List[str]:
    """Disease-looking phrases left after removing everyday words, e.g. "白癜风"."""
    cleaned = _NON_CJK.sub(" ", normalize_text(text))
    cleaned = _FILLER_RE.sub(" ", cleaned)
    found = []
    for segment in cleaned.split():
        if 2 <= len(segment) <= 12 and _DISEASE_SUFFIX.search(segment) and segment not in found:
            found.append(segment)
    return found


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

    def topic_for_intent(self, intent: str) -> Optional[str]:
        entry = self.intents.get(intent) or {}
        return entry.get("topic")

    def title_for_intent(self, intent: str) -> Optional[str]:
        entry = self.intents.get(intent) or {}
        return entry.get("title")

    def caveat(self) -> str:
        return self.caveat_template.format_map(self.base_context())

    def base_context(self) -> Dict[str, str]:
        apply_channels = [channel for channel in self.channels if channel.get("apply")]
        items = [str(item) for item in (self.topics.get("materials") or {}).get("items") or []]
        return {
            **_contact_fields(self.contacts),
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
    ) -> Answer:
        """Render a topic. `diseases` are canonical names; `unknown` disease-like names
        the catalogue does not know."""
        topic = self.topics.get(topic_id)
        if topic is None:
            raise KnowledgeError(f"unknown topic {topic_id!r}")
        known = [self.by_name[name] for name in dict.fromkeys(diseases) if name in self.by_name]
        unknown = [name for name in dict.fromkeys(unknown) if name]
        if topic_id == "disease_coverage":
            lines = self._coverage_lines(topic, known, unknown)
        elif topic_id == "materials":
            lines = self._materials_lines(topic, known, unknown)
        else:
            lines = [self._render(topic["answer"])]
        if not topic.get("verified"):
            lines.append(self.caveat())
        return Answer(
            topic=topic_id,
            messages=pack(lines),
            buttons=self.suggestions(topic_id),
            diseases=[disease.name for disease in known],
            unknown=unknown,
        )

    def _coverage_lines(self, topic, known: List[Disease], unknown: List[str]) -> List[str]:
        variants = topic.get("variants") or {}
        if not known and not unknown:
            return [self._render(topic["answer"])]
        per_disease = []
        for disease in known:
            key = "verified_line" if disease.verified else "unverified_line"
            line = self._render(variants[key], name=disease.name)
            if disease.criteria:
                line += self._render(variants["criteria_line"], name=disease.name,
                                     criteria=str(disease.criteria))
            per_disease.append(line)
        per_disease += [self._render(variants["unknown"], name=name) for name in unknown]
        # several diseases: one numbered line each, so each answer stands out
        lines = per_disease if len(per_disease) == 1 else [
            f"{index}. {line}" for index, line in enumerate(per_disease, start=1)
        ]
        if any(not disease.criteria for disease in known):
            lines.append(self._render(variants["no_criteria"]))
        if known:
            lines.append(self._render(variants["footer"]))
        return lines

    def _materials_lines(self, topic, known: List[Disease], unknown: List[str]) -> List[str]:
        variants = topic.get("variants") or {}
        notes = [self._render(variants["unknown_note"], name=name) for name in unknown]
        if not known:
            return [self._render(topic["answer"]), *notes]
        extras = []
        for disease in known:
            if disease.extra_materials:
                extras.append(self._render(variants["extras_known"], name=disease.name,
                                           extra_materials="、".join(disease.extra_materials)))
        if any(not disease.extra_materials for disease in known):
            extras.append(self._render(variants["extras_unknown"]))
        names = "".join(f"「{disease.name}」" for disease in known)
        return [self._render(variants["for_diseases"], names=names, extras="\n".join(extras)), *notes]

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
        text = normalize_text(text)
        names = sorted(self.alias_index, key=lambda name: (-len(name), name))
        found, taken = [], [False] * len(text)
        for name in names:
            for match in re.finditer(re.escape(name), text):
                span = range(match.start(), match.end())
                if not any(taken[i] for i in span):
                    for i in span:
                        taken[i] = True
                    found.append((match.start(), self.alias_index[name]))
        return list(dict.fromkeys(name for _, name in sorted(found)))


def _contact_fields(contacts: Dict[str, Any]) -> Dict[str, str]:
    hotline = contacts.get("hotline") or {}
    window = contacts.get("window") or {}
    return {
        "hotline": str(hotline.get("number") or DEFAULT_HOTLINE["hotline"]),
        "hotline_name": str(hotline.get("name") or DEFAULT_HOTLINE["hotline_name"]),
        "hotline_description": str(hotline.get("description", "")),
        "window": str(window.get("name") or DEFAULT_HOTLINE["window"]),
    }


def contact_context(directory: pathlib.Path = KNOWLEDGE_DIR) -> Dict[str, str]:
    """{hotline}, {hotline_name}, {hotline_description}, {window} from knowledge/contacts.yml,
    for the few texts said when the rest of the knowledge base is unusable. Never raises:
    the cached knowledge base first, then contacts.yml alone, then DEFAULT_HOTLINE."""
    try:
        return _contact_fields(get_knowledge(directory).contacts)
    except Exception:  # noqa: BLE001 - this is the last-resort path
        pass
    try:
        with (pathlib.Path(directory) / "contacts.yml").open(encoding="utf-8") as handle:
            document = yaml.safe_load(handle) or {}
        if isinstance(document, dict):
            return _contact_fields(document)
    except Exception:  # noqa: BLE001
        logger.exception("knowledge/contacts.yml could not be read; using the default hotline")
    return _contact_fields({})


def with_contacts(template: str, directory: pathlib.Path = KNOWLEDGE_DIR) -> str:
    """A text with {hotline}/{hotline_name}/{window} filled from knowledge/contacts.yml."""
    return template.format_map(contact_context(directory))


# --- cached access for the action server ---------------------------------------------
class _Cache:
    def __init__(self, directory: pathlib.Path):
        self.directory = directory
        self.lock = threading.Lock()
        self.stamp: Optional[tuple] = None
        self.knowledge: Optional[KnowledgeBase] = None

    def _stamp(self) -> tuple:
        stamp = []
        for name in FILES:
            try:
                stat = (self.directory / name).stat()
                stamp.append((name, stat.st_mtime_ns, stat.st_size))
            except OSError:
                stamp.append((name, None, None))
        return tuple(stamp)

    def get(self) -> KnowledgeBase:
        stamp = self._stamp()
        with self.lock:
            if self.knowledge is not None and stamp == self.stamp:
                return self.knowledge
            try:
                candidate = KnowledgeBase.load(self.directory)
                errors = [e for e in validate(candidate, domain_dir=None) if e.startswith("ERROR")]
                if errors and self.knowledge is not None:
                    raise KnowledgeError("; ".join(errors[:3]))
                self.knowledge, self.stamp = candidate, stamp
            except KnowledgeError as error:
                if self.knowledge is None:
                    raise
                logger.error("knowledge/ edit not applied, keeping the previous version: %s", error)
                self.stamp = stamp  # don't retry on every message; the next edit retries
            return self.knowledge


_caches: Dict[pathlib.Path, _Cache] = {}


def get_knowledge(directory: pathlib.Path = KNOWLEDGE_DIR) -> KnowledgeBase:
    """The knowledge base, loaded on first use and reloaded when a file changes."""
    directory = pathlib.Path(directory).resolve()
    cache = _caches.get(directory)
    if cache is None:
        cache = _caches.setdefault(directory, _Cache(directory))
    return cache.get()


def pack(lines: Sequence[str], limit: int = MAX_CHARS) -> List[str]:
    """Join lines into as few messages as possible, each within `limit` characters."""
    messages: List[str] = []
    current: List[str] = []
    for line in lines:
        if not line:
            continue
        if current and visible_length("\n".join(current + [line])) > limit:
            messages.append("\n".join(current))
            current = []
        current.append(line)
    if current:
        messages.append("\n".join(current))
    return messages


# --- validation -----------------------------------------------------------------------
def _domain_intents(domain_dir: pathlib.Path) -> set:
    intents = set()
    for path in sorted(domain_dir.rglob("*.yml")):
        with path.open(encoding="utf-8") as handle:
            document = yaml.safe_load(handle) or {}
        for entry in document.get("intents") or []:
            intents.add(next(iter(entry)) if isinstance(entry, dict) else str(entry))
    return intents


def validate(kb: KnowledgeBase, domain_dir: Optional[pathlib.Path] = DOMAIN_DIR) -> List[str]:
    """Schema and cross-reference checks. Returns 'ERROR: …' / 'WARNING: …' lines."""
    problems: List[str] = []

    def error(message: str) -> None:
        problems.append(f"ERROR: {message}")

    def check_provenance(where: str, entry: Any) -> None:
        if not isinstance(entry, dict):
            error(f"{where}: must be a mapping")
            return
        if entry.get("source") not in kb.sources:
            error(f"{where}: source {entry.get('source')!r} is not an id in sources.yml")
        if not isinstance(entry.get("verified"), bool):
            error(f"{where}: verified must be true or false")

    # sources
    if not kb.sources:
        error("sources.yml: no sources")
    for source_id, source in kb.sources.items():
        if not isinstance(source, dict) or not source.get("title"):
            error(f"sources.yml: {source_id} needs a title")

    # contacts
    for key in ("hotline", "window"):
        check_provenance(f"contacts.yml: {key}", kb.contacts.get(key))
    if not str((kb.contacts.get("hotline") or {}).get("number", "")).strip():
        error("contacts.yml: hotline.number is empty")

    # channels
    if not any(channel.get("apply") for channel in kb.channels if isinstance(channel, dict)):
        error("channels.yml: no channel with apply: true")
    for index, channel in enumerate(kb.channels):
        check_provenance(f"channels.yml: channel {index + 1}", channel)
        if isinstance(channel, dict):
            for key in ("id", "name", *kb.comparison_rows):
                if key not in channel:
                    error(f"channels.yml: channel {channel.get('id', index + 1)} lacks {key}")

    # diseases: every name and alias maps to exactly one disease
    raw = (kb.documents.get("diseases.yml") or {}).get("diseases")
    if not isinstance(raw, list) or not raw:
        error("diseases.yml: `diseases` must be a non-empty list")
        raw = []
    owners: Dict[str, List[str]] = {}
    for index, entry in enumerate(raw):
        where = f"diseases.yml: {entry.get('name') if isinstance(entry, dict) else index + 1}"
        check_provenance(where, entry)
        if not isinstance(entry, dict):
            continue
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            error(f"{where}: name missing")
            continue
        aliases = entry.get("aliases")
        if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
            error(f"{where}: aliases must be a list of names ([] if none)")
            aliases = []
        if not isinstance(entry.get("category"), str):
            error(f"{where}: category missing")
        if "criteria" not in entry or not (entry["criteria"] is None or isinstance(entry["criteria"], str)):
            error(f"{where}: criteria must be text or null (null = not known)")
        extras = entry.get("extra_materials")
        if not isinstance(extras, list) or not all(isinstance(item, str) for item in extras):
            error(f"{where}: extra_materials must be a list ([] = not known)")
        for alias in [name, *aliases]:
            if normalize_text(alias) != alias:
                error(f"{where}: {alias!r} must be written in simplified, half-width form "
                      f"({normalize_text(alias)!r})")
            owners.setdefault(normalize_text(alias), []).append(name)
    for alias, names in owners.items():
        if len(names) > 1:
            error(f"diseases.yml: {alias!r} belongs to more than one entry: {', '.join(names)}")

    # intents -> topics, and every topic reachable from an intent
    if not kb.intents:
        error("intents.yml: no intents")
    reached = set()
    for intent, entry in kb.intents.items():
        if not isinstance(entry, dict) or "topic" not in entry:
            error(f"intents.yml: {intent} needs `topic` (a topic id or null) and `title`")
            continue
        topic = entry.get("topic")
        if topic is not None and topic not in kb.topics:
            error(f"intents.yml: {intent} -> topic {topic!r} does not exist in topics.yml")
        reached.add(topic)
        title = entry.get("title")
        if not isinstance(title, str) or not title or len(title) > MAX_TITLE_CHARS:
            error(f"intents.yml: {intent} needs a title of at most {MAX_TITLE_CHARS} characters")
    for topic_id in kb.topics:
        if topic_id not in reached:
            error(f"topics.yml: topic {topic_id} is not answered for any intent in intents.yml")

    # topics
    for topic_id, topic in kb.topics.items():
        where = f"topics.yml: {topic_id}"
        check_provenance(where, topic)
        if not isinstance(topic, dict):
            continue
        if not isinstance(topic.get("answer"), str) or not topic["answer"].strip():
            error(f"{where}: answer missing")
            continue
        unknown = placeholders(topic["answer"]) - BASE_FIELDS
        if unknown:
            error(f"{where}: unknown placeholder(s) {sorted(unknown)}")
        variants = topic.get("variants") or {}
        for key in DISEASE_TOPICS.get(topic_id, ()):
            if not isinstance(variants.get(key), str):
                error(f"{where}: variants.{key} missing")
        for key, template in variants.items():
            unknown = placeholders(str(template)) - BASE_FIELDS - VARIANT_FIELDS.get(key, set())
            if unknown:
                error(f"{where}: variants.{key} has unknown placeholder(s) {sorted(unknown)}")
        next_intents = topic.get("next") or []
        if len(next_intents) > MAX_NEXT:
            error(f"{where}: at most {MAX_NEXT} follow-up questions in next")
        for intent in next_intents:
            if intent not in kb.intents:
                error(f"{where}: next {intent!r} is not in intents.yml")
    if "materials" in kb.topics and not (kb.topics["materials"].get("items")):
        error("topics.yml: materials.items (the general list) is empty")
    for key in FALLBACK_KEYS:
        if not isinstance(kb.fallback.get(key), str):
            error(f"topics.yml: fallback.{key} missing")
        else:
            unknown = placeholders(kb.fallback[key]) - BASE_FIELDS - FALLBACK_FIELDS.get(key, set())
            if unknown:
                error(f"topics.yml: fallback.{key} has unknown placeholder(s) {sorted(unknown)}")
    check_provenance("topics.yml: fallback", kb.fallback)
    if not isinstance(kb.caveat_template, str) or "{hotline}" not in kb.caveat_template:
        error("topics.yml: caveat must mention {hotline}")

    if any(problem.startswith("ERROR") for problem in problems):
        return problems  # rendering would only repeat the same problems

    # every answer renders, within the length limit, for the cases the bot meets
    samples: List[Tuple[str, Answer]] = []
    verified = [d.name for d in kb.diseases if d.verified][:1]
    unverified = [d.name for d in kb.diseases if not d.verified][:1]
    try:
        for topic_id in kb.topics:
            samples.append((topic_id, kb.answer_topic(topic_id)))
        for topic_id in DISEASE_TOPICS:
            if topic_id in kb.topics:
                for names, unknown in ((verified, []), (unverified, []), (verified + unverified, []),
                                       ([], ["白癜风"]), (verified, ["白癜风"])):
                    samples.append((f"{topic_id} {names + unknown}", kb.answer_topic(topic_id, names, unknown)))
        first_two = [intent for intent, entry in kb.intents.items() if entry.get("title")][:2]
        samples.append(("fallback", kb.fallback_question(first_two)))
        samples.append(("handoff", kb.handoff()))
    except (KeyError, ValueError, IndexError, KnowledgeError) as exc:
        error(f"rendering failed: {exc!r}")
        return problems
    for label, answer in samples:
        for message in answer.messages:
            if visible_length(message) > MAX_CHARS:
                error(f"{label}: a message has {visible_length(message)} characters (max {MAX_CHARS})")

    # domain cross-check: every answered intent must exist, or nobody can reach its topic
    if domain_dir is not None and pathlib.Path(domain_dir).exists():
        declared = _domain_intents(pathlib.Path(domain_dir))
        for intent, entry in kb.intents.items():
            if intent not in declared:
                level = "WARNING" if entry.get("topic") is None else "ERROR"
                problems.append(f"{level}: intents.yml: {intent} is not declared in {domain_dir}")
    return problems


def validate_other_files(directory: pathlib.Path, kb: "KnowledgeBase") -> List[str]:
    """The knowledge files other modules own: the guide's steps and the WeChat menu."""
    from assistant import guide  # imported here: guide imports nothing from this module's users
    from wechat_channel.menu import MenuError, load_menu

    problems = guide.validate_file(directory / "guide_steps.yml", sources=list(kb.sources))
    try:
        load_menu(directory / "wechat_menu.yml")
    except MenuError as error:
        problems.append(f"ERROR: wechat_menu.yml: {error}")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Check knowledge/*.yml")
    parser.add_argument("--validate", action="store_true", help="validate (the default action)")
    parser.add_argument("--knowledge", default=str(KNOWLEDGE_DIR))
    parser.add_argument("--domain", default=str(DOMAIN_DIR))
    args = parser.parse_args(argv)
    try:
        kb = KnowledgeBase.load(pathlib.Path(args.knowledge))
    except KnowledgeError as exc:
        print(f"ERROR: {exc}")
        return 1
    problems = validate(kb, pathlib.Path(args.domain))
    problems += validate_other_files(pathlib.Path(args.knowledge), kb)
    for problem in problems:
        print(problem)
    errors = [problem for problem in problems if problem.startswith("ERROR")]
    aliases = sum(len(d.aliases) for d in kb.diseases)
    print(
        f"knowledge: {len(kb.topics)} topics, {len(kb.intents)} intents, {len(kb.diseases)} diseases "
        f"({aliases} aliases), {len(kb.channels)} channels, {len(kb.sources)} sources — "
        + ("FAILED" if errors else "OK")
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

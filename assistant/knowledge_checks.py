"""Schema and cross-reference checks of knowledge/*.yml (the knowledge base's own files),
and the invented-numbers guard every text the bot can say goes through.

Used by the reloading cache (assistant/content.py: a broken edit is not applied) and by
`make validate-knowledge` (tools/validate_knowledge.py), which adds the other files' checks
and runs `invented_numbers` over every rendered reply. `check_governance` and
`check_reply_governance` (validate-knowledge only) keep the `verified` flags truthful.
"""
import math
import pathlib
import re
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

import yaml

from assistant.knowledge import (
    BASE_FIELDS, COVERS_KEYS, DISEASE_TOPICS, FALLBACK_FIELDS, FALLBACK_KEYS, MAX_CHARS, MAX_NEXT,
    MAX_TITLE_CHARS, VARIANT_FIELDS, Answer, KnowledgeBase, KnowledgeError, placeholders,
    visible_length,
)
from assistant.presentation import HEDGE
from core import defaults
from core.textnorm import normalize_text

DOMAIN_DIR = defaults.ROOT / "domain"

# --- numbers the sources do not give ----------------------------------------------------
# Review time limits, validity periods, ratios, deductibles, annual limits and the number
# of diseases are not in the sources (FACTS.md "Not confirmed"): a text that states one
# invents it. A quantity is a number, in Arabic digits (half- or full-width) or Chinese
# numerals, with a unit of those kinds: "15个工作日", "十五个工作日", "70%", "百分之七十",
# "七成", "三千元", "半年", "47种门诊慢特病". A quantity the sources state (the same value and
# unit in sources.yml: "2023 年") is allowed; so is what the caller passes as allowed.
# Step numbers, "后4位", "4样材料" or the hotline carry no such unit and are not quantities.
_NUMBER = r"[0-9０-９]+(?:[.．][0-9０-９]+)?|[零〇一二两三四五六七八九十百千万半]+"
_UNITS = {  # as written -> one name per unit; longer spellings first in the pattern
    "%": "%", "％": "%", "成": "成", "块钱": "元", "块": "元", "万元": "万元", "元": "元",
    "工作日": "工作日", "自然日": "天", "天": "天", "日": "天", "星期": "周", "周": "周",
    "月": "月", "年": "年", "小时": "小时", "分钟": "分钟", "岁": "岁",
    "万块": "万元", "个病种": "种", "种门诊慢特病": "种", "种慢特病": "种", "种疾病": "种", "种病": "种",
}
# in the sources a count stands alone ("…抗排异治疗 5 种"); in a reply "一种方式" is no count
_SOURCE_UNITS = dict(_UNITS, 种="种")


def _quantity_pattern(units: Dict[str, str]):
    spelled = "|".join(re.escape(unit) for unit in sorted(units, key=len, reverse=True))
    return re.compile(rf"(?:百分之\s*(?P<percent>{_NUMBER}))|(?P<number>{_NUMBER})\s*(?:个\s*)?(?P<unit>{spelled})")


_QUANTITY = _quantity_pattern(_UNITS)
_SOURCE_QUANTITY = _quantity_pattern(_SOURCE_UNITS)
_DIGIT = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
          "八": 8, "九": 9}
_SCALE = {"十": 10, "百": 100, "千": 1000}


def number_value(number: str) -> float:
    """"15", "１５", "1.5", "十五", "一百二十", "三万", "二〇二三", "半" as a number (NaN if unreadable)."""
    number = number.translate(str.maketrans("０１２３４５６７８９．", "0123456789."))
    if re.fullmatch(r"[0-9]+(?:\.[0-9]+)?", number):
        return float(number)
    half = 0.5 if number.endswith("半") else 0.0
    number = number.rstrip("半")
    if not number:
        return half
    if not any(char in _SCALE or char == "万" for char in number):  # digit by digit: 二〇二三
        return float("".join(str(_DIGIT[char]) for char in number)) + half if all(
            char in _DIGIT for char in number) else math.nan
    total, section, digit = 0, 0, 0
    for char in number:
        if char in _DIGIT:
            digit = _DIGIT[char]
        elif char in _SCALE:
            section += (digit or 1) * _SCALE[char]
            digit = 0
        elif char == "万":
            total += (section + digit or 1) * 10000
            section = digit = 0
        else:
            return math.nan
    return float(total + section + digit) + half


def _quantities(text: str, pattern) -> List[Tuple[str, float, str]]:
    """(as written, value, unit) for every quantity in the text."""
    found = []
    units = _SOURCE_UNITS if pattern is _SOURCE_QUANTITY else _UNITS
    for match in pattern.finditer(text or ""):
        if match.group("percent"):
            found.append((match.group(0), number_value(match.group("percent")), "%"))
        else:
            found.append((match.group(0), number_value(match.group("number")), units[match.group("unit")]))
    return found


def source_texts(kb: KnowledgeBase) -> List[str]:
    """What sources.yml says about each source (title, location, note): the quantities in
    it are the ones the sources give."""
    return [str(source.get(field) or "") for source in kb.sources.values() if isinstance(source, dict)
            for field in ("title", "location", "note")]


def invented_numbers(text: str, allowed: Iterable[str] = ()) -> List[str]:
    """The quantities in `text` (as written) that no text in `allowed` gives with the
    same value and unit: "审核一般需要十五个工作日" -> ["十五个工作日"]; with the sources'
    texts as `allowed`, "2023 年" passes because sources.yml names the 2023 notice."""
    given: Set[Tuple[float, str]] = {(value, unit) for line in allowed
                                     for _, value, unit in _quantities(line, _SOURCE_QUANTITY)}
    return [written for written, value, unit in _quantities(text, _QUANTITY) if (value, unit) not in given]


def _domain_intents(domain_dir: pathlib.Path) -> set:
    intents = set()
    for path in sorted(domain_dir.rglob("*.yml")):
        with path.open(encoding="utf-8") as handle:
            document = yaml.safe_load(handle) or {}
        for entry in document.get("intents") or []:
            intents.add(next(iter(entry)) if isinstance(entry, dict) else str(entry))
    return intents


def disease_samples(kb: KnowledgeBase) -> List[Tuple[str, List[str], List[str], List[Tuple[str, str]]]]:
    """(label, diseases, unknown, said) for the disease answers the bot meets: a confirmed
    and an unconfirmed disease, both, an unknown name, a loose alias ("血糖高"), a name a
    disease `covers` ("胰腺癌") and one it may cover ("子宫肌瘤"), with an unknown one too."""
    verified = [d.name for d in kb.diseases if d.verified][:1]
    unverified = [d.name for d in kb.diseases if not d.verified][:1]
    cases = [(verified, [], []), (unverified, [], []), (verified + unverified, [], []),
             ([], ["白癜风"], []), (verified, ["白癜风"], [])]
    loose = [(d.name, d.loose_aliases[0]) for d in kb.diseases if d.loose_aliases][:1]
    covering = [d for d in kb.diseases if d.covers][:1]
    if loose:
        cases.append(([loose[0][0]], [], loose))
    for disease in covering:
        endings = disease.covers.get("endings") or ()
        maybe = disease.covers.get("maybe_endings") or ()
        if endings:
            said = [(disease.name, "胰腺" + endings[0])]
            cases.append(([disease.name, *(name for name, _ in loose)], ["白癜风"], said + loose))
        if maybe:
            cases.append(([], ["子宫肌" + maybe[0], "白癜风"], []))
    return [(f"{diseases + unknown + [word for _, word in said]}", diseases, unknown, said)
            for diseases, unknown, said in cases]


def check_disease_fields(where: str, entry: Dict[str, Any], aliases: Sequence[str]) -> List[str]:
    """`loose_aliases` (each one of the disease's aliases) and `covers` (known keys, lists
    of name endings/prefixes in simplified form, at least one ending)."""
    problems = []
    loose = entry.get("loose_aliases", [])
    if not isinstance(loose, list) or not all(isinstance(a, str) and a.strip() for a in loose):
        problems.append(f"ERROR: {where}: loose_aliases must be a list of names")
    else:
        for alias in loose:
            if alias not in aliases:
                problems.append(f"ERROR: {where}: loose alias {alias!r} is not one of its aliases")
    covers = entry.get("covers")
    if covers is None:
        return problems
    if not isinstance(covers, dict) or not covers:
        return problems + [f"ERROR: {where}: covers must be a mapping of {', '.join(COVERS_KEYS)}"]
    for key, value in covers.items():
        if key not in COVERS_KEYS:
            problems.append(f"ERROR: {where}: covers.{key} is not one of {', '.join(COVERS_KEYS)}")
        elif not isinstance(value, list) or not value or not all(
                isinstance(item, str) and item.strip() and normalize_text(item) == item
                and re.fullmatch(r"[\u4e00-\u9fff]+", item) for item in value):
            problems.append(f"ERROR: {where}: covers.{key} must be a non-empty list of Chinese "
                            "characters in simplified form (\"癌\", not \"\" or \"*癌\")")
    if not (covers.get("endings") or covers.get("maybe_endings")):
        problems.append(f"ERROR: {where}: covers needs endings or maybe_endings")
    return problems


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
        problems += check_disease_fields(where, entry, aliases)
        for alias in [name, *aliases]:
            if normalize_text(alias) != alias:
                error(f"{where}: {alias!r} must be written in simplified, half-width form "
                      f"({normalize_text(alias)!r})")
            owners.setdefault(normalize_text(alias), []).append(name)
    for alias, names in owners.items():
        if len(names) > 1:
            error(f"diseases.yml: {alias!r} belongs to more than one entry: {', '.join(names)}")
    # `covers` must not take another disease's names ("病" as an ending would take them all)
    for disease in kb.diseases:
        for alias, names in owners.items():
            if disease.name not in names and disease.covering(alias) is not None:
                error(f"diseases.yml: {disease.name}: covers would take {alias!r} of {', '.join(names)}")

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
    try:
        for topic_id in kb.topics:
            samples.append((topic_id, kb.answer_topic(topic_id)))
        for topic_id in DISEASE_TOPICS:
            if topic_id in kb.topics:
                for label, names, unknown, said in disease_samples(kb):
                    samples.append((f"{topic_id} {label}", kb.answer_topic(topic_id, names, unknown, said)))
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




# --- content governance: the flags tell the truth -----------------------------------------
# docs/knowledge.md, "Content governance". A source is confirmed or not (sources.yml
# `status`); a shared fact (sources.yml `facts`) is identified by its id and found in texts
# by its markers; its flag is its source's status. An entry (a mapping with `source` and
# `verified`) is verified exactly when its source and every fact it states are confirmed.
SOURCE_STATUSES = ("confirmed", "unconfirmed")
# Files whose entries carry `source` and `verified` (the named-text files carry no flags).
FLAGGED_FILES = ("contacts.yml", "channels.yml", "diseases.yml", "topics.yml", "guide_steps.yml")
# Keys of an entry that are never said to anyone (matching words, ids, provenance).
UNSAID_KEYS = {"source", "verified", "facts", "id", "section", "tip_source", "keywords",
               "jump_words", "next", "category", "aliases", "loose_aliases", "covers", "shown", "apply"}
# Who may be outside 南充 when reading a reply: such a reply that gives the hotline also
# says how to reach 南充 from elsewhere, marked unverified (FACTS.md 2026-12).
# ("到外省看病也能直接结算" describes the national list, not where the reader is.)
OUTSIDE_WORDS = re.compile(r"外地|异地")
UNVERIFIED_MARK = "（未核实）"


def area_code_note(kb: KnowledgeBase) -> str:
    """"外地拨打请加区号 0817（未核实）": the area code from contacts.yml hotline_local."""
    local = str((kb.contacts.get("hotline_local") or {}).get("number") or "")
    return f"外地拨打请加区号 {local.split('-')[0]}{UNVERIFIED_MARK}" if "-" in local else ""


def source_confirmed(kb: KnowledgeBase, source_id: Any) -> bool:
    return (kb.sources.get(source_id) or {}).get("status") == "confirmed"


def shared_facts(kb: KnowledgeBase) -> Dict[str, Dict[str, Any]]:
    facts = (kb.documents.get("sources.yml") or {}).get("facts") or {}
    return facts if isinstance(facts, dict) else {}


def facts_in(kb: KnowledgeBase, text: str) -> List[str]:
    """Ids of the shared facts whose markers occur in the text."""
    return [fact_id for fact_id, fact in shared_facts(kb).items() if isinstance(fact, dict)
            and any(str(marker) in text for marker in fact.get("markers") or [])]


def unconfirmed_facts_in(kb: KnowledgeBase, text: str) -> List[str]:
    facts = shared_facts(kb)
    return [fact_id for fact_id in facts_in(kb, text) if not source_confirmed(kb, facts[fact_id].get("source"))]


class _Keep(dict):
    """format_map context that leaves placeholders it cannot fill as they are."""

    def __missing__(self, key):
        return "{" + key + "}"


def flagged_entries(node: Any, where: str) -> Iterable[Tuple[str, Dict[str, Any]]]:
    """(where, entry) for every mapping with `source` and `verified`, nested ones too."""
    if isinstance(node, dict):
        if "source" in node and "verified" in node:
            yield where, node
        for key, value in node.items():
            yield from flagged_entries(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            label = value.get("id") or value.get("name") if isinstance(value, dict) else None
            yield from flagged_entries(value, f"{where}[{label or index}]")


def entry_texts(entry: Any, context: Dict[str, str]) -> List[str]:
    """What an entry says, placeholders filled; nested entries speak for themselves."""
    if isinstance(entry, str):
        try:
            return [entry.format_map(_Keep(context))]
        except (ValueError, IndexError):
            return [entry]
    if isinstance(entry, list):
        return [text for item in entry for text in entry_texts(item, context)]
    if isinstance(entry, dict):
        return [text for key, value in entry.items() if key not in UNSAID_KEYS
                and not (isinstance(value, dict) and "source" in value and "verified" in value)
                for text in entry_texts(value, context)]
    return []


def check_governance(kb: KnowledgeBase, extra_documents: Optional[Dict[str, Any]] = None) -> List[str]:
    """Rules 1-3 on the entries (the flags): sources have a status, a confirmed-only
    `verified: true`, the same fact with the same flag everywhere, every disease citing a
    document. `extra_documents` adds files this module does not load (guide_steps.yml)."""
    problems: List[str] = []
    for source_id, source in kb.sources.items():
        if isinstance(source, dict) and source.get("status") not in SOURCE_STATUSES:
            problems.append(f"ERROR: sources.yml: {source_id} needs status: confirmed or unconfirmed")
    facts = shared_facts(kb)
    for fact_id, fact in facts.items():
        if not isinstance(fact, dict) or fact.get("source") not in kb.sources:
            problems.append(f"ERROR: sources.yml: fact {fact_id} needs a source id from sources")
        elif not isinstance(fact.get("markers", []), list):
            problems.append(f"ERROR: sources.yml: fact {fact_id}: markers must be a list")
    documents = {**kb.documents, **(extra_documents or {})}
    context = kb.base_context()
    for name in FLAGGED_FILES:
        for where, entry in flagged_entries(documents.get(name) or {}, name):
            cited = entry.get("facts") or []
            for fact_id in cited:
                if fact_id not in facts:
                    problems.append(f"ERROR: {where}: fact {fact_id!r} is not in sources.yml facts")
            stated = list(dict.fromkeys([*(f for f in cited if f in facts),
                                         *facts_in(kb, "\n".join(entry_texts(entry, context)))]))
            unconfirmed = [f for f in stated if not source_confirmed(kb, facts[f].get("source"))]
            source = entry.get("source")
            if entry.get("verified") is True and not source_confirmed(kb, source):
                problems.append(f"ERROR: {where}: verified: true, but its source {source!r} is not "
                                "confirmed (sources.yml status): make it verified: false")
            elif entry.get("verified") is True and unconfirmed:
                problems.append(f"ERROR: {where}: verified: true, but it states the unconfirmed fact(s) "
                                f"{', '.join(unconfirmed)}, verified: false everywhere else")
            elif entry.get("verified") is False and source_confirmed(kb, source) and not unconfirmed:
                problems.append(f"ERROR: {where}: verified: false, but its source {source!r} and every "
                                "fact it states are confirmed: the same facts are verified: true elsewhere")
    for index, entry in enumerate((kb.documents.get("diseases.yml") or {}).get("diseases") or []):
        if not isinstance(entry, dict):
            continue
        source = kb.sources.get(entry.get("source")) or {}
        if not str(source.get("document") or "").strip():
            problems.append(f"ERROR: diseases.yml: {entry.get('name') or index + 1} cites no document "
                            f"(source {entry.get('source')!r} has no `document`): cite one or remove the entry")
    return problems


def check_reply_governance(kb: KnowledgeBase, label: str, messages: Sequence[str], hotline: str,
                           outside_nanchong: bool = False) -> List[str]:
    """Rules 4-5 on one rendered reply: an unconfirmed fact said with exactly one hedge; a
    reply for someone who may be outside 南充 that gives the hotline adds the area code,
    marked unverified."""
    problems: List[str] = []
    text = "\n".join(messages)
    unconfirmed = unconfirmed_facts_in(kb, text)
    hedges = HEDGE.findall(text)
    if unconfirmed and len(hedges) != 1:
        problems.append(f"ERROR: {label}: states {', '.join(unconfirmed)} (one unconfirmed source) with "
                        f"{len(hedges)} hedges: say it with exactly one (“以…为准”)")
    note = area_code_note(kb)
    outside = outside_nanchong or bool(OUTSIDE_WORDS.search(text.replace(note, "")))
    if outside and hotline and hotline in text and not note:
        problems.append(f"ERROR: {label}: gives {hotline} to someone who may be outside 南充, but "
                        "contacts.yml hotline_local.number has no area code (\"0817-12393\") to add")
    elif outside and hotline and hotline in text and note not in text:
        problems.append(f"ERROR: {label}: gives {hotline} to someone who may be outside 南充: add "
                        f"“{note}” (topics.yml: outside_nanchong: true uses caveat_outside)")
    return problems

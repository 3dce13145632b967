"""`make validate-knowledge`: every file under knowledge/ checked, and the hotline written once.

    python -m tools.validate_knowledge            # exit 1 on errors

Checks the knowledge base (assistant/knowledge_checks.py), the guide's steps (rendered
once each), the WeChat menu, the named-text files (every text rendered), the domain's
responses, the privacy notice (it names the configured retention period, and the WeChat
welcome carries it), that no rendered reply states a number the sources do not give (time limits,
ratios, amounts, in digits or Chinese numerals: knowledge_checks.invented_numbers), and
that no hotline-like number in code, domain, web assets or knowledge differs from
knowledge/contacts.yml (texts in knowledge/ must write it as {hotline}), and that the
content flags tell the truth (knowledge_checks.check_governance / check_reply_governance:
verified only on confirmed sources, one flag per shared fact, every disease citing a
document, one hedge for an unconfirmed fact, the area code for readers outside 南充).
"""
import argparse
import pathlib
import re
import string
import sys
from typing import Iterable, List

import yaml

from assistant import guide
from assistant.contacts import DEFAULTS, contact_context, contact_fields, last_resort
from assistant.guide.loading import all_replies
from assistant.content import TextsError, privacy_notice, texts
from assistant.knowledge import KnowledgeBase, KnowledgeError
from assistant.knowledge_checks import (
    DOMAIN_DIR, check_governance, check_reply_governance, disease_samples, invented_numbers, source_texts,
    validate,
)
from assistant.presentation import SOFT_CHARS, long_messages, reply_problems
from core import defaults, retention
from wechat_channel.endpoint import REPLY_KEYS
from wechat_channel.menu import MenuError, load_menu

ROOT = defaults.ROOT
KNOWLEDGE_DIR = defaults.KNOWLEDGE_DIR

# Files of named texts and what each needs.
TEXT_FILES = ("progress_replies", "channel_texts", "responses")
REQUIRED_TEXTS = {
    "channel_texts": ["plain_buttons", "privacy_notice"] + [f"wechat_{key}" for key in REPLY_KEYS],
}
# The privacy notice as people read it: with the default retention period filled in, alone
# (the widget) and in the WeChat welcome with its numbered lines.
NOTICE_LABEL = "channel_texts.yml privacy_notice"
WELCOME_LABEL = "wechat_menu.yml welcome"
LAST_RESORT_KEYS = ("answers_unavailable", "handoff", "guide_unavailable", "not_understood",
                    "progress_unavailable")

# Numbers about this service itself, not about the insurance rules, each allowed in its
# own text: the console's sign-in lockout (web/app.py LOGIN_WINDOW_SECONDS; a test keeps
# the two equal).
SERVICE_NUMBERS = {"channel_texts.yml console_too_many_failures": ["15 分钟"]}
# … and how long conversations are kept (CONVERSATION_RETENTION_DAYS), in the privacy notice.
_RETENTION = [f"{retention.days_text(retention.DEFAULT_DAYS)} 天"]
SERVICE_NUMBERS.update({f"{NOTICE_LABEL} (default period)": _RETENTION, WELCOME_LABEL: _RETENTION})

# Where a hotline could be written out: code, the domain, web assets and knowledge texts.
SCANNED = ("actions", "assistant", "channels", "core", "progress_service", "tools", "web",
           "wechat_channel", "domain", "knowledge")
SCANNED_SUFFIXES = {".py", ".yml", ".yaml", ".js", ".html", ".css", ".txt"}
# Chinese public-service hotlines are five digits starting 123, optionally with an area
# code in front; an id such as hotline_<number> in sources.yml is not one.
HOTLINE_LIKE = re.compile(r"(?<![0-9A-Za-z_.])(?:0\d{2,3}-)?(123\d\d)(?![0-9A-Za-z_])")


def _placeholder_names(template: str) -> List[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def check_text_files(directory: pathlib.Path) -> List[str]:
    problems = []
    for name in TEXT_FILES:
        try:
            named = texts(name, directory)
        except TextsError as error:
            problems.append(f"ERROR: {error}")
            continue
        for required in REQUIRED_TEXTS.get(name, []):
            if required not in named:
                problems.append(f"ERROR: {name}.yml: text {required!r} missing")
        for key, template in named.templates.items():
            sample = {field: "…" for field in _placeholder_names(template)}
            try:
                named.render(key, **sample)
            except (KeyError, ValueError, IndexError) as error:
                problems.append(f"ERROR: {name}.yml: {key} does not render: {error!r}")
    return problems


def check_privacy_notice(directory: pathlib.Path) -> List[str]:
    """The notice names the period the deployment configures ({retention_days}, never a
    number of its own), and the WeChat welcome carries it ({privacy_notice})."""
    problems = []
    try:
        template = texts("channel_texts", directory).templates.get("privacy_notice")
    except TextsError:
        template = None  # reported by check_text_files
    if template is not None and "retention_days" not in _placeholder_names(template):
        problems.append("ERROR: channel_texts.yml: privacy_notice must name the retention period as "
                        "{retention_days} (CONVERSATION_RETENTION_DAYS), not as a number")
    try:
        menu = yaml.safe_load((directory / "wechat_menu.yml").read_text(encoding="utf-8")) or {}
        welcome = str(((menu.get("welcome") or {}).get("text")) or "")
    except (OSError, yaml.YAMLError, AttributeError):
        welcome = None  # reported with the menu's own check
    if welcome is not None and "{privacy_notice}" not in welcome:
        problems.append("ERROR: wechat_menu.yml: the welcome text must carry {privacy_notice} "
                        "(what is stored, for how long, who can see it)")
    return problems


def check_contacts(directory: pathlib.Path) -> List[str]:
    path = directory / "contacts.yml"
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        return [f"ERROR: contacts.yml: {error}"]
    problems = []
    fields = contact_fields(document)
    if fields["hotline"] != DEFAULTS["hotline"]:
        problems.append(f"ERROR: contacts.yml hotline {fields['hotline']} differs from the built-in "
                        f"default in assistant/contacts.py ({DEFAULTS['hotline']}); change both")
    last_resort = document.get("last_resort") or {}
    for key in LAST_RESORT_KEYS:
        template = last_resort.get(key)
        if not isinstance(template, str) or not template.strip():
            problems.append(f"ERROR: contacts.yml: last_resort.{key} missing")
            continue
        try:
            template.format_map(fields)
        except (KeyError, ValueError, IndexError) as error:
            problems.append(f"ERROR: contacts.yml: last_resort.{key} does not render: {error!r}")
    return problems


def _scanned_files(root: pathlib.Path) -> Iterable[pathlib.Path]:
    for folder in SCANNED:
        base = root / folder
        if base.exists():
            for path in sorted(base.rglob("*")):
                if path.is_file() and path.suffix in SCANNED_SUFFIXES and "generated" not in path.parts:
                    yield path


def check_hotline_written_once(root: pathlib.Path, hotline: str) -> List[str]:
    """No other hotline-like number anywhere; in knowledge/ texts the number itself only in
    contacts.yml and in source titles (sources.yml)."""
    problems = []
    own = {"contacts.yml", "sources.yml"}
    for path in _scanned_files(root):
        relative = path.relative_to(root)
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            for match in HOTLINE_LIKE.finditer(line):
                if match.group(1) != hotline:
                    problems.append(f"ERROR: {relative}:{number}: hotline-like number {match.group(0)} "
                                    f"differs from contacts.yml ({hotline})")
                elif relative.parts[0] == "knowledge" and path.name not in own \
                        and not line.lstrip().startswith("#"):
                    problems.append(f"ERROR: {relative}:{number}: write the hotline as {{hotline}} "
                                    "(from contacts.yml), not as a number")
    return problems


def rendered_replies(kb: KnowledgeBase, knowledge_dir: pathlib.Path):
    """(label, messages of one reply) for every reply the bot can render from knowledge/."""
    for topic_id in kb.topics:
        yield f"topics.yml {topic_id}", kb.answer_topic(topic_id).messages
    for topic_id in ("disease_coverage", "materials"):
        if topic_id in kb.topics:
            for label, names, unknown, said in disease_samples(kb):
                yield f"topics.yml {topic_id} {label}", kb.answer_topic(topic_id, names, unknown, said).messages
    first_two = [intent for intent, entry in kb.intents.items() if entry.get("title")][:2]
    question = kb.fallback_question(first_two)
    if question is not None:
        yield "topics.yml fallback question", question.messages
    for name, answer in (("handoff", kb.handoff()), ("not_understood", kb.not_understood()),
                         ("no_content", kb.no_content()), ("rephrase", kb.rephrase())):
        yield f"topics.yml fallback {name}", answer.messages
    data = guide.load_guide(knowledge_dir / "guide_steps.yml")
    for label, reply in all_replies(data):
        yield f"guide_steps.yml {label}", [reply.text]
    contacts = contact_context(knowledge_dir)
    for name in TEXT_FILES:
        named = texts(name, knowledge_dir)
        for key, template in named.templates.items():
            # the hotline as said (the reply rules count it), other values as "…"
            sample = {field: contacts.get(field, "…") for field in _placeholder_names(template)}
            yield f"{name}.yml {key}", [named.render(key, **sample)]
    for key in LAST_RESORT_KEYS:
        yield f"contacts.yml last_resort.{key}", [last_resort(key, knowledge_dir)]
    notice = privacy_notice(retention.DEFAULT_DAYS, knowledge_dir)
    yield f"{NOTICE_LABEL} (default period)", [notice]
    menu = load_menu(knowledge_dir / "wechat_menu.yml",
                     placeholders={**contact_context(knowledge_dir), "privacy_notice": notice})
    yield WELCOME_LABEL, ["\n".join([menu.welcome_text] + [
        f"{index}. {entry.title}" for index, entry in enumerate(menu.welcome_buttons, 1)])]


def for_outside_nanchong(kb: KnowledgeBase, label: str) -> bool:
    """Whether the reply is a topic marked `outside_nanchong: true` (its readers may be
    outside 南充); labels are rendered_replies' ("topics.yml other_place")."""
    parts = label.split()
    return len(parts) > 1 and parts[0] == "topics.yml" and \
        bool((kb.topics.get(parts[1]) or {}).get("outside_nanchong"))


def check_reply_rules(kb: KnowledgeBase, knowledge_dir: pathlib.Path) -> List[str]:
    """Every rendered reply: no message over the hard limit, the hedge and the hotline at
    most once, no number the sources do not give; the messages over the soft limit listed
    as warnings."""
    hotline = contact_context(knowledge_dir)["hotline"]
    sources = source_texts(kb)
    problems, long = [], []
    for label, messages in rendered_replies(kb, knowledge_dir):
        problems += [f"ERROR: {label}: {problem}" for problem in reply_problems(messages, hotline)]
        problems += check_reply_governance(kb, label, messages, hotline, for_outside_nanchong(kb, label))
        allowed = sources + SERVICE_NUMBERS.get(label, [])
        for message in messages:
            for number in invented_numbers(message, allowed):
                problems.append(f"ERROR: {label}: “{number}” is not in the sources (sources.yml): "
                                "time limits, ratios, amounts and counts are not written down")
        long += [f"{label} ({length})" for length in long_messages(messages)]
    problems, long = list(dict.fromkeys(problems)), list(dict.fromkeys(long))  # the guide renders twice
    if long:
        problems.append(f"WARNING: {len(long)} messages over {SOFT_CHARS} characters: " + "; ".join(long))
    return problems


def validate_all(knowledge_dir: pathlib.Path = KNOWLEDGE_DIR, domain_dir: pathlib.Path = DOMAIN_DIR,
                 root: pathlib.Path = ROOT) -> List[str]:
    try:
        kb = KnowledgeBase.load(knowledge_dir)
    except KnowledgeError as error:
        return [f"ERROR: {error}"]
    problems = validate(kb, domain_dir)
    problems += guide.validate_file(knowledge_dir / "guide_steps.yml", sources=list(kb.sources))
    try:
        steps = yaml.safe_load((knowledge_dir / "guide_steps.yml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        steps = {}  # reported by guide.validate_file
    problems += check_governance(kb, {"guide_steps.yml": steps})
    try:
        load_menu(knowledge_dir / "wechat_menu.yml", placeholders=contact_context(knowledge_dir))
    except MenuError as error:
        problems.append(f"ERROR: wechat_menu.yml: {error}")
    problems += check_text_files(knowledge_dir)
    problems += check_privacy_notice(knowledge_dir)
    problems += check_contacts(knowledge_dir)
    try:
        problems += check_reply_rules(kb, knowledge_dir)
    except Exception as error:  # noqa: BLE001 - a broken file is reported above; say what failed here
        problems.append(f"ERROR: rendering every reply failed: {error!r}")
    problems += check_hotline_written_once(root, contact_context(knowledge_dir)["hotline"])
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Check knowledge/*.yml")
    parser.add_argument("--validate", action="store_true", help="validate (the default action)")
    parser.add_argument("--knowledge", default=str(KNOWLEDGE_DIR))
    parser.add_argument("--domain", default=str(DOMAIN_DIR))
    args = parser.parse_args(argv)
    knowledge_dir = pathlib.Path(args.knowledge)
    problems = validate_all(knowledge_dir, pathlib.Path(args.domain))
    for problem in problems:
        print(problem)
    errors = [problem for problem in problems if problem.startswith("ERROR")]
    try:
        kb = KnowledgeBase.load(knowledge_dir)
        aliases = sum(len(d.aliases) for d in kb.diseases)
        summary = (f"{len(kb.topics)} topics, {len(kb.intents)} intents, {len(kb.diseases)} diseases "
                   f"({aliases} aliases), {len(kb.channels)} channels, {len(kb.sources)} sources")
    except KnowledgeError:
        summary = "unreadable"
    print(f"knowledge: {summary} — " + ("FAILED" if errors else "OK"))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

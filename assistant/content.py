"""Cached access to everything the bot says: the one place actions and the console read
knowledge/ through. Each file is re-read when it changes (core/reload.py); a broken edit
keeps the last good version in service.

    get_knowledge()            knowledge/{sources,contacts,channels,diseases,topics,intents}.yml
    load_guide()               knowledge/guide_steps.yml (assistant/guide/)
    texts("progress_replies")  a file of named texts, {hotline} etc. filled from contacts.yml
    privacy_notice(days)       the privacy notice of the widget and the WeChat welcome
"""
import pathlib
from typing import Any, Dict, Mapping

import yaml

from assistant.contacts import contact_context
from assistant.guide import load_guide  # noqa: F401 - re-exported: one access point
from assistant.knowledge import FILES, KnowledgeBase, KnowledgeError
from assistant.knowledge_checks import validate
from core import defaults
from core.reload import ReloadingFiles, shared
from core.retention import days_text

KNOWLEDGE_DIR = defaults.KNOWLEDGE_DIR


def _load_checked(directory: pathlib.Path) -> KnowledgeBase:
    candidate = KnowledgeBase.load(directory)
    errors = [e for e in validate(candidate, domain_dir=None) if e.startswith("ERROR")]
    if errors:
        raise KnowledgeError("; ".join(errors[:3]))
    return candidate


def get_knowledge(directory: pathlib.Path = KNOWLEDGE_DIR) -> KnowledgeBase:
    """The knowledge base, loaded on first use and reloaded when a file changes."""
    directory = pathlib.Path(directory).resolve()
    cache = shared(("knowledge", str(directory)), lambda: ReloadingFiles(
        [directory / name for name in FILES], lambda: _load_checked(directory),
        errors=(KnowledgeError,)))
    return cache.get()


class TextsError(ValueError):
    """A texts file is missing, unparsable or lacks a text."""


class Texts:
    """Named texts from one YAML file (name -> template)."""

    def __init__(self, templates: Mapping[str, str], source: str,
                 directory: pathlib.Path = KNOWLEDGE_DIR):
        self.templates = dict(templates)
        self.source = source
        self.directory = directory  # where contacts.yml is read from

    def __contains__(self, name: str) -> bool:
        return name in self.templates

    def render(self, key: str, /, **variables: Any) -> str:
        if key not in self.templates:
            raise TextsError(f"{self.source}: no text named {key!r}")
        values: Dict[str, Any] = dict(contact_context(self.directory))
        values.update({key: "" if value is None else value for key, value in variables.items()})
        return self.templates[key].format_map(values).strip()


def _read_texts(path: pathlib.Path) -> Texts:
    try:
        with path.open(encoding="utf-8") as handle:
            document = yaml.safe_load(handle) or {}
    except (OSError, yaml.YAMLError) as error:
        raise TextsError(f"{path.name}: {error}") from error
    if not isinstance(document, dict) or not all(isinstance(v, str) for v in document.values()):
        raise TextsError(f"{path.name}: must map names to texts")
    return Texts(document, path.name, path.parent)


def texts(name: str, directory: pathlib.Path = KNOWLEDGE_DIR) -> Texts:
    """knowledge/<name>.yml as named texts (cached, re-read on change)."""
    path = (pathlib.Path(directory) / f"{name}.yml").resolve()
    cache = shared(("texts", str(path)), lambda: ReloadingFiles(
        [path], lambda: _read_texts(path), errors=(TextsError,)))
    return cache.get()


def privacy_notice(retention_days: float, directory: pathlib.Path = KNOWLEDGE_DIR) -> str:
    """knowledge/channel_texts.yml privacy_notice naming the configured retention period
    (CONVERSATION_RETENTION_DAYS, read by each process's settings: web/config.py,
    wechat_channel/config.py)."""
    return texts("channel_texts", directory).render("privacy_notice",
                                                    retention_days=days_text(retention_days))

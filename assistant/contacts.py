"""Hotline, service window and the last-resort texts, from knowledge/contacts.yml.

A leaf module (PyYAML only): everything that speaks (knowledge answers, the guide, the
progress replies, channel texts) fills {hotline}, {hotline_name}, {hotline_description}
and {window} from here, so the number is written once, in knowledge/contacts.yml.
Never raises: when the file cannot be read the built-in defaults below are used (the
validator checks they agree with the file).
"""
import logging
import pathlib
from typing import Any, Dict

import yaml

from core import defaults
from core.reload import ReloadingFiles, shared

logger = logging.getLogger(__name__)

CONTACTS_FILE = "contacts.yml"

# Used only when knowledge/contacts.yml itself cannot be read.
DEFAULTS = {"hotline": "12393", "hotline_name": "医保服务热线", "hotline_description": "",
            "window": "医保经办大厅"}
DEFAULT_LAST_RESORT = "抱歉，暂时答不上来。请拨打{hotline_name} {hotline}。"


def contact_fields(contacts: Dict[str, Any]) -> Dict[str, str]:
    """The placeholders for texts, from the parsed contacts.yml."""
    hotline = contacts.get("hotline") or {}
    window = contacts.get("window") or {}
    return {
        "hotline": str(hotline.get("number") or DEFAULTS["hotline"]),
        "hotline_name": str(hotline.get("name") or DEFAULTS["hotline_name"]),
        "hotline_description": str(hotline.get("description", "")),
        "window": str(window.get("name") or DEFAULTS["window"]),
    }


def _read(path: pathlib.Path) -> Dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        document = yaml.safe_load(handle) or {}
    if not isinstance(document, dict):
        raise ValueError(f"{path}: top level must be a mapping")
    return document


def load_contacts(directory: pathlib.Path = defaults.KNOWLEDGE_DIR) -> Dict[str, Any]:
    """The parsed contacts.yml (cached, re-read on change); {} when it cannot be read."""
    path = pathlib.Path(directory).resolve() / CONTACTS_FILE
    cache = shared(("contacts", str(path)), lambda: ReloadingFiles([path], lambda: _read(path)))
    try:
        return cache.get()
    except Exception:  # noqa: BLE001 - this is the last-resort path
        logger.exception("knowledge/contacts.yml could not be read; using the default hotline")
        return {}


def contact_context(directory: pathlib.Path = defaults.KNOWLEDGE_DIR) -> Dict[str, str]:
    """{hotline}, {hotline_name}, {hotline_description}, {window}."""
    return contact_fields(load_contacts(directory))


def with_contacts(template: str, directory: pathlib.Path = defaults.KNOWLEDGE_DIR) -> str:
    """A text with {hotline}/{hotline_name}/{window} filled from knowledge/contacts.yml."""
    return template.format_map(contact_context(directory))


def last_resort(key: str, directory: pathlib.Path = defaults.KNOWLEDGE_DIR) -> str:
    """A text said when the rest of knowledge/ is unusable (contacts.yml `last_resort`)."""
    document = load_contacts(directory)
    template = str((document.get("last_resort") or {}).get(key) or DEFAULT_LAST_RESORT)
    try:
        return template.format_map(contact_fields(document))
    except (KeyError, ValueError, IndexError):
        return DEFAULT_LAST_RESORT.format_map(DEFAULTS)

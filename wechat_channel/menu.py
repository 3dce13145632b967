"""knowledge/wechat_menu.yml: the welcome shown on subscribe and the CLICK menu keys.

An entry names either an `intent` (sent to the bot as `/intent`) or a `text` (sent as if
the user had typed it, so the NLU decides). Loaded once at start-up; errors are raised
early with the file name.
"""
import dataclasses
import pathlib
from typing import Dict, List, Mapping, Optional, Tuple

import yaml


class MenuError(ValueError):
    pass


@dataclasses.dataclass
class MenuEntry:
    title: str
    payload: str


@dataclasses.dataclass
class Menu:
    welcome_text: str
    welcome_buttons: List[MenuEntry]
    clicks: Dict[str, MenuEntry]
    unknown_click_reply: str

    def click(self, key: Optional[str]) -> Optional[MenuEntry]:
        return self.clicks.get(key or "")

    @property
    def welcome_button_pairs(self) -> List[Tuple[str, str]]:
        return [(entry.title, entry.payload) for entry in self.welcome_buttons]


def _entry(raw: Mapping, where: str) -> MenuEntry:
    if not isinstance(raw, Mapping) or not str(raw.get("title") or "").strip():
        raise MenuError(f"{where}: needs a title")
    intent, text = raw.get("intent"), raw.get("text")
    if bool(intent) == bool(text):
        raise MenuError(f"{where}: give exactly one of intent or text")
    payload = f"/{str(intent).strip()}" if intent else str(text).strip()
    return MenuEntry(title=str(raw["title"]).strip(), payload=payload)


def _fill(text: str, placeholders: Mapping[str, str]) -> str:
    for name, value in placeholders.items():
        text = text.replace("{" + name + "}", str(value))
    return text


def parse_menu(data: Mapping, source: str = "menu",
               placeholders: Optional[Mapping[str, str]] = None) -> Menu:
    """`placeholders` ({hotline} and the like) are filled in the menu's texts."""
    placeholders = placeholders or {}
    if not isinstance(data, Mapping):
        raise MenuError(f"{source}: not a mapping")
    welcome = data.get("welcome") or {}
    text = _fill(str(welcome.get("text") or "").strip(), placeholders)
    if not text:
        raise MenuError(f"{source}: welcome.text is required")
    unknown_click_reply = _fill(str(data.get("unknown_click_reply") or "").strip(), placeholders)
    if not unknown_click_reply:
        raise MenuError(f"{source}: unknown_click_reply is required")
    buttons = [
        _entry(raw, f"{source}: welcome.buttons[{i}]")
        for i, raw in enumerate(welcome.get("buttons") or [])
    ]
    clicks = {}
    for key, raw in (data.get("clicks") or {}).items():
        clicks[str(key)] = _entry(raw, f"{source}: clicks.{key}")
    return Menu(
        welcome_text=text,
        welcome_buttons=buttons,
        clicks=clicks,
        unknown_click_reply=unknown_click_reply,
    )


def load_menu(path: pathlib.Path, placeholders: Optional[Mapping[str, str]] = None) -> Menu:
    path = pathlib.Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise MenuError(f"cannot read {path}: {exc}") from exc
    return parse_menu(data, str(path), placeholders)

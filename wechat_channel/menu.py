"""knowledge/wechat_menu.yml: the welcome shown on subscribe and the CLICK menu keys.

An entry names either an `intent` (sent to the bot as `/intent`) or a `text` (sent as if
the user had typed it, so the NLU decides). Loaded once at start-up; errors are raised
early with the file name. `buttons:` is the account's custom menu; `Menu.create_body()`
is the JSON body of WeChat's POST /cgi-bin/menu/create (`make wechat-menu`).
"""
import dataclasses
import pathlib
from typing import Any, Dict, List, Mapping, Optional, Tuple

import yaml


class MenuError(ValueError):
    pass


# WeChat's limits for menu/create: 1-3 buttons, 1-5 sub-buttons, names in UTF-8 bytes.
MAX_BUTTONS, MAX_SUB_BUTTONS = 3, 5
MAX_NAME_BYTES, MAX_SUB_NAME_BYTES, MAX_KEY_BYTES = 16, 60, 128


@dataclasses.dataclass
class MenuButton:
    name: str
    key: Optional[str] = None  # a CLICK button
    sub_buttons: List["MenuButton"] = dataclasses.field(default_factory=list)

    def as_json(self) -> Dict[str, Any]:
        if self.sub_buttons:
            return {"name": self.name, "sub_button": [b.as_json() for b in self.sub_buttons]}
        return {"type": "click", "name": self.name, "key": self.key}


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
    buttons: List[MenuButton] = dataclasses.field(default_factory=list)

    def create_body(self) -> Dict[str, Any]:
        """The body of POST /cgi-bin/menu/create: {"button": [...]}."""
        if not self.buttons:
            raise MenuError("the menu file has no buttons: nothing to create")
        return {"button": [button.as_json() for button in self.buttons]}

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


def _byte_size(text: str) -> int:
    return len(text.encode("utf-8"))


def _button(raw: Any, where: str, clicks: Mapping[str, MenuEntry], sub: bool) -> MenuButton:
    if not isinstance(raw, Mapping):
        raise MenuError(f"{where}: not a mapping")
    name = str(raw.get("name") or "").strip()
    limit = MAX_SUB_NAME_BYTES if sub else MAX_NAME_BYTES
    if not name or _byte_size(name) > limit:
        raise MenuError(f"{where}: name must be 1-{limit} UTF-8 bytes")
    key, subs = raw.get("key"), raw.get("sub_buttons")
    if sub and subs:
        raise MenuError(f"{where}: a sub-button cannot have sub_buttons")
    if bool(key) == bool(subs):
        raise MenuError(f"{where}: give exactly one of key or sub_buttons")
    if key:
        key = str(key).strip()
        if key not in clicks or _byte_size(key) > MAX_KEY_BYTES:
            raise MenuError(f"{where}: key {key} is not one of clicks:")
        return MenuButton(name=name, key=key)
    if not isinstance(subs, list) or not 1 <= len(subs) <= MAX_SUB_BUTTONS:
        raise MenuError(f"{where}: 1-{MAX_SUB_BUTTONS} sub_buttons")
    return MenuButton(name=name, sub_buttons=[
        _button(item, f"{where}.sub_buttons[{i}]", clicks, sub=True) for i, item in enumerate(subs)
    ])


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
    raw_buttons = data.get("buttons") or []
    if not isinstance(raw_buttons, list) or len(raw_buttons) > MAX_BUTTONS:
        raise MenuError(f"{source}: buttons: at most {MAX_BUTTONS}")
    menu_buttons = [_button(raw, f"{source}: buttons[{i}]", clicks, sub=False)
                    for i, raw in enumerate(raw_buttons)]
    return Menu(
        welcome_text=text,
        welcome_buttons=buttons,
        clicks=clicks,
        unknown_click_reply=unknown_click_reply,
        buttons=menu_buttons,
    )


def load_menu(path: pathlib.Path, placeholders: Optional[Mapping[str, str]] = None) -> Menu:
    path = pathlib.Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise MenuError(f"cannot read {path}: {exc}") from exc
    return parse_menu(data, str(path), placeholders)

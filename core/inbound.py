"""What every channel does with a person's text before the bot sees it (docs/security.md).

One function for all channels (REST, socket.io, the widget, WeChat), so the rules are
the same everywhere:
- a full ID number is masked to its last 4 characters (core.privacy);
- typed text never starts with "/": Rasa reads "/intent{...}" as a command with entities,
  and our normaliser turns a full-width "／" into "/"; only a button the bot offered to
  this conversation may send such a payload (OfferedPayloads, kept by the channel);
- the text is cut to MAX_TEXT_CHARS, after masking, so a cut never leaves part of an ID
  number unmasked.
"""
import collections
import re
import threading
import time
from typing import Any, Callable, Iterable, Mapping, Optional

from core.privacy import mask_id_card_numbers

# Longer than any question people type here (replies are at most 200 characters); a
# longer text is cut, not refused, so a pasted paragraph still gets an answer.
MAX_TEXT_CHARS = 500
# Read before masking, so an ID number across the cut is still seen whole.
_MASK_WINDOW = MAX_TEXT_CHARS + 128
# Slashes of any width and anything Rasa strips before it looks for "/".
_LEADING_COMMAND = re.compile(r"^[\s/\uff0f\u2044\u2215\u29f8\u2571]+")


def typed_text(text: Optional[str]) -> str:
    """Typed (or spoken) text as the bot may see it: no leading slash, ID numbers masked,
    at most MAX_TEXT_CHARS characters."""
    text = text if isinstance(text, str) else ""
    # a lone surrogate ("\ud800" is valid JSON) cannot be stored anywhere: "?" instead
    text = text.encode("utf-8", "replace").decode("utf-8")
    stripped = _LEADING_COMMAND.sub("", text)
    if not stripped and text.strip():
        return "?"  # only slashes: nothing to understand, and nothing Rasa may run
    # masked again after the cut: cutting a longer digit run (not an ID) can leave one
    return mask_id_card_numbers(mask_id_card_numbers(stripped[:_MASK_WINDOW])[:MAX_TEXT_CHARS]).rstrip()


def incoming_text(text: Optional[str], offered: Iterable[str] = ()) -> str:
    """A message from a channel: a payload of a button the bot offered to this conversation
    goes through unchanged; everything else is typed text (typed_text)."""
    if isinstance(text, str) and text.strip() in set(offered):
        return text.strip()
    return typed_text(text)


def offered_in_events(events: Iterable[Mapping[str, Any]]) -> frozenset:
    """The "/…" payloads of the buttons the bot sent after the conversation's last user
    message (stored events as dicts): what the person may tap now, as any replica that
    reads the shared tracker store sees it."""
    payloads: set = set()
    for event in events:
        if event.get("event") == "user":
            payloads = set()
        elif event.get("event") == "bot":
            data = event.get("data") or {}
            for key in ("buttons", "quick_replies"):
                for button in data.get(key) or []:
                    payload = button.get("payload") if isinstance(button, dict) else None
                    if isinstance(payload, str) and payload.strip().startswith("/"):
                        payloads.add(payload.strip())
    return frozenset(payloads)


class OfferedPayloads:
    """The button payloads the bot last offered to each conversation: the latest turn's
    buttons, as the widget and WeChat only let the latest set be tapped. Bounded (least
    recently used conversations are forgotten) and per process; with several Rasa replicas a
    tap that reaches another replica is checked against the shared tracker store instead
    (channels/inbound.offered_to, offered_in_events)."""

    def __init__(self, max_conversations: int = 10000, ttl_seconds: float = 24 * 3600.0,
                 clock: Callable[[], float] = time.monotonic):
        self.max_conversations = max_conversations
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self._items: "collections.OrderedDict[str, tuple]" = collections.OrderedDict()
        self._lock = threading.Lock()

    def remember(self, conversation: str, payloads: Iterable[str]) -> None:
        payloads = frozenset(p for p in payloads if isinstance(p, str) and p.strip().startswith("/"))
        with self._lock:
            self._items.pop(conversation, None)
            if payloads:
                self._items[conversation] = (self.clock() + self.ttl_seconds, payloads)
                while len(self._items) > self.max_conversations:
                    self._items.popitem(last=False)

    def offered(self, conversation: str) -> frozenset:
        with self._lock:
            item = self._items.get(conversation)
            if item is None:
                return frozenset()
            if item[0] < self.clock():
                del self._items[conversation]
                return frozenset()
            self._items.move_to_end(conversation)
            return item[1]

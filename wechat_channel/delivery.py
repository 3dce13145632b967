"""Per-process state of the channel: retry dedupe, remembered buttons, held replies.

All of it is in memory and bounded (LRU + TTL). With several Rasa replicas, route each
OpenID to the same replica (sticky routing on the `openid` query parameter, see
docs/wechat.md); otherwise a retry or a "1" may land on a replica that does not know it.
"""
import asyncio
import collections
import dataclasses
import logging
import time
import unicodedata
from typing import Any, Awaitable, Callable, Generic, List, Optional, Sequence, Tuple, TypeVar

logger = logging.getLogger(__name__)

V = TypeVar("V")


class TTLCache(Generic[V]):
    """An LRU map whose entries also expire `ttl` seconds after they were last written."""

    def __init__(self, max_size: int, ttl: float, clock: Callable[[], float] = time.monotonic):
        self.max_size, self.ttl, self.clock = max_size, ttl, clock
        self._data: "collections.OrderedDict[str, Tuple[float, V]]" = collections.OrderedDict()

    def get(self, key: str) -> Optional[V]:
        entry = self._data.get(key)
        if entry is None:
            return None
        if self.clock() - entry[0] > self.ttl:
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return entry[1]

    def set(self, key: str, value: V) -> None:
        self._data[key] = (self.clock(), value)
        self._data.move_to_end(key)
        while len(self._data) > self.max_size:
            self._data.popitem(last=False)

    def pop(self, key: str) -> Optional[V]:
        value = self.get(key)
        self._data.pop(key, None)
        return value

    def __len__(self) -> int:
        return len(self._data)


Button = Tuple[str, str]  # (title, payload)


def _normalise_choice(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).strip()
    return text.rstrip(".。、）)").strip()


class ButtonMemory:
    """The last buttons offered to each user, so "1", "2" or a tapped line picks a payload."""

    def __init__(self, max_users: int = 10000, ttl: float = 24 * 3600.0,
                 clock: Callable[[], float] = time.monotonic):
        self._cache: TTLCache[List[Button]] = TTLCache(max_users, ttl, clock)

    def remember(self, user: str, buttons: Sequence[Button]) -> None:
        if buttons:
            self._cache.set(user, list(buttons))

    def forget(self, user: str) -> None:
        self._cache.pop(user)

    def resolve(self, user: str, text: str, menu_id: Optional[str] = None) -> Optional[str]:
        buttons = self._cache.get(user)
        if not buttons:
            return None
        choice = _normalise_choice(text)
        for index, (title, payload) in enumerate(buttons, start=1):
            if menu_id == str(index) and choice == _normalise_choice(title):
                return payload
        if choice.isdigit() and 1 <= int(choice) <= len(buttons):
            return buttons[int(choice) - 1][1]
        for index, (title, payload) in enumerate(buttons, start=1):
            if choice in (_normalise_choice(title), f"{index}. {_normalise_choice(title)}"):
                return payload
        return None


@dataclasses.dataclass
class HeldReply:
    text: str
    continued: bool  # the rest of a long reply (as opposed to a late answer)


class PendingReplies:
    """Replies that could not be sent (passive-only account, quota, API down):
    delivered with the user's next passive reply."""

    def __init__(self, max_users: int = 10000, ttl: float = 48 * 3600.0,
                 max_per_user: int = 5, clock: Callable[[], float] = time.monotonic):
        self._cache: TTLCache[List[HeldReply]] = TTLCache(max_users, ttl, clock)
        self.max_per_user = max_per_user

    def add(self, user: str, text: str, continued: bool = False, front: bool = False) -> None:
        held = self._cache.get(user) or []
        entry = HeldReply(text, continued)
        if front:  # the rest of the reply being shown now: it comes next
            held = [entry] + held[max(0, len(held) - self.max_per_user + 1):]
        else:  # too many held replies: the oldest go
            held = (held + [entry])[-self.max_per_user:]
        self._cache.set(user, held)

    def peek(self, user: str) -> List[HeldReply]:
        return list(self._cache.get(user) or [])

    def pop(self, user: str) -> List[HeldReply]:
        return self._cache.pop(user) or []


_SUPERSEDED = object()


@dataclasses.dataclass
class _Item:
    created: float
    task: Optional["asyncio.Future[None]"] = None
    waiter: Optional["asyncio.Future[Any]"] = None
    state: str = "running"  # running | answered (passive reply given) | late (async delivery)
    reply: Optional[str] = None


class InFlight:
    """Runs each message's work once, however many times WeChat retries it.

    An attempt waits up to `deadline` for the work. If the work finishes while an attempt
    is waiting, that attempt answers passively (`passive(result)` → reply text) and later
    retries get the same text. If the newest attempt gives up (deadline, dropped
    connection), the item is "late": every further retry gets None (→ "success") and the
    result goes to `late(result)` exactly once. A new retry supersedes an older waiting
    attempt (WeChat has dropped that connection), which then returns None.
    """

    def __init__(self, ttl: float = 120.0, max_items: int = 10000,
                 clock: Callable[[], float] = time.monotonic):
        self.ttl, self.max_items, self.clock = ttl, max_items, clock
        self._items: "collections.OrderedDict[str, _Item]" = collections.OrderedDict()
        self.runs = 0
        self.joins = 0

    def _expire(self) -> None:
        now = self.clock()
        excess = len(self._items) - self.max_items
        for key, item in list(self._items.items()):  # oldest first
            if excess <= 0 and now - item.created <= self.ttl:
                break
            if item.task is not None and item.task.done():
                del self._items[key]
                excess -= 1

    async def attempt(self, key: str, work: Callable[[], Awaitable[Any]], deadline: float,
                      passive: Callable[[Any], Optional[str]],
                      late: Callable[[Any], Awaitable[None]]) -> Optional[str]:
        self._expire()
        item = self._items.get(key)
        if item is None:
            item = _Item(created=self.clock())
            self._items[key] = item
            self.runs += 1
            item.task = asyncio.ensure_future(self._run(item, work, passive, late))
        else:
            self.joins += 1
        if item.state == "answered":
            return item.reply
        if item.state == "late":
            return None
        if item.waiter is not None and not item.waiter.done():
            item.waiter.set_result(_SUPERSEDED)
        waiter = asyncio.get_running_loop().create_future()
        item.waiter = waiter
        try:
            await asyncio.wait({waiter}, timeout=deadline)
        except asyncio.CancelledError:  # WeChat dropped the connection
            self._give_up(item, waiter)
            raise
        if waiter.done():
            result = waiter.result()
            return None if result is _SUPERSEDED else result
        self._give_up(item, waiter)
        return None

    @staticmethod
    def _give_up(item: _Item, waiter: "asyncio.Future[Any]") -> None:
        if waiter.done():
            return
        waiter.cancel()
        if item.waiter is waiter:
            item.waiter = None
            if item.state == "running":
                item.state = "late"

    async def _run(self, item: _Item, work, passive, late) -> None:
        try:
            result = await work()
        except Exception:  # work is expected to handle its own failures
            logger.exception("wechat: message work failed")
            result = None
        if item.state == "running" and item.waiter is not None and not item.waiter.done():
            try:
                item.reply = passive(result)
            except Exception:
                logger.exception("wechat: composing the passive reply failed")
                item.reply = None
            item.state = "answered"
            item.waiter.set_result(item.reply)
            return
        item.state = "late"
        try:
            await late(result)
        except Exception:
            logger.exception("wechat: late delivery failed")

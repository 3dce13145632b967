"""Delivery state machines of the channel: retry dedupe, remembered buttons, held replies.

InFlight runs each message's work once in this process; with a shared `claims` store
(wechat_channel/state.py: Redis) it also runs it once across replicas and hands the
stored result to a retry that reaches another replica. ButtonMemory and PendingReplies
are the in-memory, bounded (LRU + TTL) forms of the per-user state; state.py keeps the
same data in Redis when several replicas share it.
"""
import asyncio
import collections
import dataclasses
import inspect
import logging
import time
import unicodedata
from typing import (
    Any, Awaitable, Callable, Generic, List, Optional, Protocol, Sequence, Set, Tuple, TypeVar,
)

from core import metrics

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


def pick_button(buttons: Sequence[Button], text: str,
                menu_id: Optional[str] = None) -> Optional[str]:
    """The payload a reply picks from the offered buttons: the tapped line (bizmsgmenu
    sends its id and title), a number ("1", "２", "1."), or a title; None otherwise."""
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

    def get(self, user: str) -> List[Button]:
        return list(self._cache.get(user) or [])

    def resolve(self, user: str, text: str, menu_id: Optional[str] = None) -> Optional[str]:
        return pick_button(self._cache.get(user) or [], text, menu_id)


@dataclasses.dataclass
class HeldReply:
    text: str
    continued: bool  # the rest of a long reply (as opposed to a late answer)


def add_held(held: Sequence[HeldReply], entry: HeldReply, front: bool,
             max_per_user: int) -> List[HeldReply]:
    """A user's held replies after holding one more (at most `max_per_user` kept)."""
    if front:  # the rest of the reply being shown now: it comes next
        return [entry] + list(held[max(0, len(held) - max_per_user + 1):])
    return (list(held) + [entry])[-max_per_user:]  # too many held replies: the oldest go


class PendingReplies:
    """Replies that could not be sent (passive-only account, quota, API down):
    delivered with the user's next passive reply."""

    def __init__(self, max_users: int = 10000, ttl: float = 48 * 3600.0,
                 max_per_user: int = 5, clock: Callable[[], float] = time.monotonic):
        self._cache: TTLCache[List[HeldReply]] = TTLCache(max_users, ttl, clock)
        self.max_per_user = max_per_user

    def add(self, user: str, text: str, continued: bool = False, front: bool = False) -> None:
        held = self._cache.get(user) or []
        self._cache.set(user, add_held(held, HeldReply(text, continued), front, self.max_per_user))

    def peek(self, user: str) -> List[HeldReply]:
        return list(self._cache.get(user) or [])

    def pop(self, user: str) -> List[HeldReply]:
        return self._cache.pop(user) or []


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What became of a message, as other replicas see it (stored with its claim)."""
    state: str  # running | answered (the passive reply is `reply`) | late (async delivery)
    reply: Optional[str] = None


class Claims(Protocol):
    """Who runs a message, and its outcome (wechat_channel/state.py implements it)."""

    async def claim(self, key: str) -> bool:
        """True for the first caller for `key` (set-if-absent with expiry)."""

    async def settle(self, key: str, outcome: Outcome) -> None:
        """Store the outcome of a claimed message (for retries on other replicas)."""

    async def outcome(self, key: str) -> Optional[Outcome]:
        """The stored outcome; None when the key is unknown or expired (a claim whose
        process stopped renewing it), Outcome("unknown") when the store cannot say."""

    async def renew(self, key: str) -> None:
        """Extend a running claim's lease (called every `renew_every` seconds while the
        work runs; a store without leases has renew_every None)."""


_SUPERSEDED = object()


@dataclasses.dataclass
class _Item:
    key: str
    created: float
    task: Optional["asyncio.Future[None]"] = None
    waiter: Optional["asyncio.Future[Any]"] = None
    # running | answering (the passive reply is being composed) | answered (passive reply
    # given) | late (async delivery)
    state: str = "running"
    reply: Optional[str] = None
    owned: bool = False  # this process claimed the message and runs its work
    claiming: Optional["asyncio.Future[None]"] = None
    heartbeat: Optional["asyncio.Future[None]"] = None


class InFlight:
    """Runs each message's work once, however many times WeChat retries it.

    An attempt waits up to `deadline` for the work. If the work finishes while an attempt
    is waiting, that attempt answers passively (`passive(result)` → reply text, a plain
    value or awaitable) and later retries get the same text. If the newest attempt gives
    up (deadline, dropped connection), the item is "late": every further retry gets None
    (→ "success") and the result goes to `late(result)` exactly once. A new retry
    supersedes an older waiting attempt (WeChat has dropped that connection), which then
    returns None.

    With `claims` (a store shared by several processes), the first process to claim a
    message runs it and stores its outcome; an attempt in a process that did not claim
    it polls the stored outcome until its deadline: the same passive reply, or None.
    The owner renews its claim while the work runs; if the owner stops (killed), the
    claim lapses and a waiting attempt elsewhere claims the message and runs it.
    """

    def __init__(self, ttl: float = 120.0, max_items: int = 10000,
                 clock: Callable[[], float] = time.monotonic,
                 claims: Optional[Claims] = None, poll_interval: float = 0.1):
        self.ttl, self.max_items, self.clock = ttl, max_items, clock
        self.claims, self.poll_interval = claims, poll_interval
        self._items: "collections.OrderedDict[str, _Item]" = collections.OrderedDict()
        self._publishing: Set["asyncio.Future[None]"] = set()
        self.runs = 0
        self.joins = 0
        self.remote_waits = 0  # attempts answered from another process's outcome

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
                      passive: Callable[[Any], Any],
                      late: Callable[[Any], Awaitable[None]]) -> Optional[str]:
        self._expire()
        loop = asyncio.get_running_loop()
        until = loop.time() + deadline
        item = self._items.get(key)
        if item is None:
            item = _Item(key=key, created=self.clock())
            self._items[key] = item
            if self.claims is None:
                self._start(item, work, passive, late)
            else:  # goes on even if this attempt is cancelled meanwhile
                item.claiming = asyncio.ensure_future(
                    self._claim_and_start(item, work, passive, late))
        else:
            self.joins += 1
        if item.claiming is not None and item.claiming.done() and not item.owned:
            return await self._wait_elsewhere(item, until, work, passive, late)
        if item.state == "answered":
            return item.reply
        if item.state == "late":
            return None
        if item.waiter is not None and not item.waiter.done():
            item.waiter.set_result(_SUPERSEDED)
        # waiting before the claim is settled: work that finishes at once still finds us
        waiter = loop.create_future()
        item.waiter = waiter
        try:
            if item.claiming is not None and not item.claiming.done():
                await asyncio.shield(item.claiming)
            if item.owned:
                await asyncio.wait({waiter}, timeout=max(0.0, until - loop.time()))
        except asyncio.CancelledError:  # WeChat dropped the connection
            self._give_up(item, waiter)
            raise
        if not item.owned:  # another process runs it: wait for its outcome
            self._give_up(item, waiter)
            return await self._wait_elsewhere(item, until, work, passive, late)
        if waiter.done():
            result = waiter.result()
            return None if result is _SUPERSEDED else result
        self._give_up(item, waiter)
        return None

    def _start(self, item: _Item, work, passive, late) -> None:
        item.owned = True
        self.runs += 1
        item.task = asyncio.ensure_future(self._run(item, work, passive, late))
        every = getattr(self.claims, "renew_every", None)
        if every:
            item.heartbeat = asyncio.ensure_future(self._heartbeat(item.key, every))

    async def _heartbeat(self, key: str, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await self.claims.renew(key)
            except Exception:
                logger.exception("wechat: renewing a message claim failed")

    async def _claim_and_start(self, item: _Item, work, passive, late) -> None:
        try:
            owned = await self.claims.claim(item.key)
        except Exception:  # the store maps its own errors; this is the last resort
            logger.exception("wechat: claiming a message failed; running it here")
            owned = True
        if owned:
            self._start(item, work, passive, late)
        else:
            item.task = asyncio.get_running_loop().create_future()
            item.task.set_result(None)  # nothing runs here: expires like a finished item

    async def _wait_elsewhere(self, item: _Item, until: float, work, passive, late,
                              take_over: bool = True) -> Optional[str]:
        """Poll the outcome stored by the process that runs the message, until `until`.
        A claim that lapsed (its process stopped) is taken over once: run it here."""
        if self._items.get(item.key) is item:
            del self._items[item.key]  # a later retry asks the store again
        self.remote_waits += 1
        loop = asyncio.get_running_loop()
        while True:
            try:
                outcome = await self.claims.outcome(item.key)
            except Exception:
                logger.exception("wechat: reading a message outcome failed")
                outcome = Outcome("unknown")
            if outcome is None and take_over and loop.time() < until:
                logger.warning("wechat: a message's claim lapsed; running it here")
                return await self._take_over(item.key, until, work, passive, late)
            if outcome is None or outcome.state == "late":
                return None
            if outcome.state == "answered":
                return outcome.reply
            if loop.time() + self.poll_interval >= until:
                return None  # still running there: that process delivers it late
            await asyncio.sleep(self.poll_interval)

    async def _take_over(self, key: str, until: float, work, passive, late) -> Optional[str]:
        loop = asyncio.get_running_loop()
        item = self._items.get(key)
        if item is None:
            item = _Item(key=key, created=self.clock())
            self._items[key] = item
            await self._claim_and_start(item, work, passive, late)
        if not item.owned:  # another process took it over first
            return await self._wait_elsewhere(item, until, work, passive, late, take_over=False)
        return await self.attempt(key, work, max(0.0, until - loop.time()), passive, late)

    def _publish(self, item: _Item) -> None:
        if self.claims is None:
            return
        outcome = Outcome(item.state, item.reply if item.state == "answered" else None)
        task = asyncio.ensure_future(self._settle(item.key, outcome))
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    async def _settle(self, key: str, outcome: Outcome) -> None:
        try:
            await self.claims.settle(key, outcome)
        except Exception:
            logger.exception("wechat: storing a message outcome failed")

    def _give_up(self, item: _Item, waiter: "asyncio.Future[Any]") -> None:
        if waiter.done():
            return
        waiter.cancel()
        if item.waiter is waiter:
            item.waiter = None
            if item.state == "running" and item.owned:  # ("answering": _run decides)
                item.state = "late"
                self._publish(item)

    async def _run(self, item: _Item, work, passive, late) -> None:
        try:
            result = await work()
        except Exception:  # work is expected to handle its own failures
            logger.exception("wechat: message work failed")
            result = None
        finally:
            if item.heartbeat is not None:
                item.heartbeat.cancel()
        if item.state == "running" and item.waiter is not None and not item.waiter.done():
            item.state = "answering"
            try:
                reply = passive(result)
                if inspect.isawaitable(reply):
                    reply = await reply
            except Exception:
                logger.exception("wechat: composing the passive reply failed")
                reply = None
            item.reply = reply
            waiter = item.waiter  # the newest attempt, if one superseded the first
            if waiter is not None and not waiter.done():
                item.state = "answered"
                waiter.set_result(reply)
                self._publish(item)
                return
            # the connection dropped while the reply was composed: it goes out late
            result, item.reply = reply, None
        item.state = "late"
        self._publish(item)
        try:
            await late(result)
        except Exception:
            metrics.WECHAT_LATE.labels(result="error").inc()
            logger.exception("wechat: late delivery failed")
        else:
            metrics.WECHAT_LATE.labels(result="ok").inc()  # sent, or held for the next message

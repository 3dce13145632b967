"""Where the channel keeps what outlives one request: message claims with their outcome
(retry dedupe), signed requests already seen (replay protection), the last buttons offered
to each user, and held replies.

`StateStore` is the interface the endpoint uses. Two implementations:

    MemoryStateStore   this process only, bounded (LRU + TTL); the default (`make run`)
    RedisStateStore    shared by every replica and kept across restarts; chosen when
                       WECHAT_STATE_REDIS_URL is set (wechat_channel/config.py)

Redis layout (all keys start with the prefix, `mzmtb:wechat` by default; values are JSON
unless said otherwise; every key expires):

    <prefix>:claim:<dedupe key>   {"state": "running|answered|late", "reply": null}   dedupe TTL
    <prefix>:reply:<dedupe key>   the passive reply (JSON string)                    30 s
    <prefix>:request:<signature>  SHA-256 hex of the request (not JSON)              until stale
    <prefix>:buttons:<openid>     [[title, payload], …]                              24 h
    <prefix>:held:<openid>        list of {"text": …, "continued": bool}             48 h
    <prefix>:inbound:<openid>     "1": the user wrote within WeChat's 48 h window     48 h

A claim is SET NX PX: the first replica runs the bot, the others read its outcome. A
running claim is a lease (8 s) that its replica renews every 2 s while the bot runs; when
the replica is killed the lease lapses, and a retry waiting elsewhere runs the message.
Once settled ("answered"/"late") the claim is kept for the dedupe TTL, which outlasts the
timestamp tolerance (config.py), so a replay never runs the bot again; the reply itself is
kept only for WeChat's retries (30 s).
A request key is SET NX PX with the digest of the request (method, unsigned parameters,
body): a second request with the same signature is accepted only with the same digest,
until its timestamp goes stale.
Button and held-reply keys expire their TTL after the last write, as in memory. Values
hold only what the bot said (replies, button titles and payloads), never what a user typed.
When Redis cannot be reached the channel keeps answering: a message is run where it
arrived, a signed request is checked against this replica's memory only, an unknown menu
means "1" goes to the bot as text, and the failure is logged.
"""
import abc
import collections
import json
import logging
import time
import urllib.parse
import uuid
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from redis import asyncio as aioredis
from redis.exceptions import RedisError

from .api_client import mask_openid
from .config import DEFAULT_STATE_PREFIX
from .delivery import (
    Button, ButtonMemory, HeldReply, Outcome, PendingReplies, TTLCache,
)

logger = logging.getLogger(__name__)


class SeenRequests:
    """Signed requests seen lately, in this process: signature -> (digest, expires at).

    Bounded: past `max_size` the oldest go (WeChat would have to push more than that within
    the timestamp tolerance for an entry to go before its timestamp is stale)."""

    def __init__(self, max_size: int = 100000, clock: Callable[[], float] = time.monotonic):
        self.max_size, self.clock = max_size, clock
        self._data: "collections.OrderedDict[str, Tuple[str, float]]" = collections.OrderedDict()

    def check(self, key: str, digest: str, ttl: float) -> bool:
        now = self.clock()
        while self._data:  # entries expire in about insertion order
            oldest = next(iter(self._data.values()))
            if oldest[1] > now:
                break
            self._data.popitem(last=False)
        seen = self._data.get(key)
        if seen is not None and seen[1] > now:
            return seen[0] == digest
        self._data[key] = (digest, now + ttl)
        while len(self._data) > self.max_size:
            self._data.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._data)


class StateStore(abc.ABC):
    """The channel's shared state. Every method is a coroutine; none raises for a store
    that cannot be reached (implementations log and fall back)."""

    shared = False  # visible to other processes (and kept across restarts)

    def __init__(self, claim_ttl: float = 120.0, button_ttl: float = 24 * 3600.0,
                 held_ttl: float = 48 * 3600.0, max_held: int = 5):
        self.claim_ttl, self.button_ttl, self.held_ttl = claim_ttl, button_ttl, held_ttl
        self.max_held = max_held

    # --- message claims (delivery.Claims) ----------------------------------------------
    @abc.abstractmethod
    async def claim(self, key: str) -> bool:
        """True for the first caller for `key` within the claim TTL."""

    @abc.abstractmethod
    async def settle(self, key: str, outcome: Outcome) -> None:
        """Store the outcome of a claimed message; the claim TTL starts again."""

    @abc.abstractmethod
    async def outcome(self, key: str) -> Optional[Outcome]:
        """The stored outcome; None when unknown or expired, Outcome("unknown") when the
        store cannot be read."""

    renew_every: Optional[float] = None  # seconds between renewals of a running claim

    async def renew(self, key: str) -> None:
        """Extend the lease of a claim that is still running (stores with leases)."""

    # --- replay protection -------------------------------------------------------------
    @abc.abstractmethod
    async def remember_request(self, key: str, digest: str, ttl: float) -> bool:
        """Remember a signed request (`key`: its signature) for `ttl` seconds. True when it
        is new or was seen with the same `digest` (WeChat repeating itself), False when the
        same signature came with another digest (a replay with another body)."""

    # --- buttons -----------------------------------------------------------------------
    @abc.abstractmethod
    async def buttons(self, user: str) -> List[Button]:
        """The last buttons offered to `user` ([] when none or expired)."""

    @abc.abstractmethod
    async def remember_buttons(self, user: str, buttons: Sequence[Button]) -> None:
        """Replace the user's buttons; no buttons keeps the previous menu valid."""

    # --- held replies --------------------------------------------------------------------
    @abc.abstractmethod
    async def hold(self, user: str, reply: HeldReply, front: bool = False) -> None:
        """Keep a reply for the user's next message (at most `max_held`, the oldest go)."""

    @abc.abstractmethod
    async def held(self, user: str) -> List[HeldReply]:
        """The held replies, left in place."""

    @abc.abstractmethod
    async def take_held(self, user: str) -> List[HeldReply]:
        """The held replies, removed (atomically: one reply delivers them)."""

    # --- WeChat's 48-hour customer-service window (status notifications) ------------------
    INBOUND_WINDOW = 48 * 3600.0

    async def note_inbound(self, user: str) -> None:
        """The user just sent something (message, menu click, follow): customer-service
        messages may reach them for the next 48 hours."""

    async def within_window(self, user: str) -> bool:
        """True when the user's last message is less than 48 hours old."""
        return False

    # --- the user left -------------------------------------------------------------------
    @abc.abstractmethod
    async def forget_user(self, user: str) -> None:
        """Drop the user's buttons, held replies and window (unsubscribe)."""

    async def close(self) -> None:
        pass


class MemoryStateStore(StateStore):
    """One process: what the channel did before there was a store (LRU + TTL)."""

    def __init__(self, claim_ttl: float = 120.0, button_ttl: float = 24 * 3600.0,
                 held_ttl: float = 48 * 3600.0, max_held: int = 5, max_users: int = 10000,
                 max_claims: int = 10000, max_requests: int = 100000,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__(claim_ttl, button_ttl, held_ttl, max_held)
        self._claims: TTLCache[Outcome] = TTLCache(max_claims, claim_ttl, clock)
        self.requests = SeenRequests(max_requests, clock)
        self.button_memory = ButtonMemory(max_users, button_ttl, clock)
        self.pending = PendingReplies(max_users, held_ttl, max_held, clock)
        self.inbound: TTLCache[bool] = TTLCache(max_users, self.INBOUND_WINDOW, clock)

    async def claim(self, key: str) -> bool:
        if self._claims.get(key) is not None:
            return False
        self._claims.set(key, Outcome("running"))
        return True

    async def settle(self, key: str, outcome: Outcome) -> None:
        self._claims.set(key, outcome)

    async def outcome(self, key: str) -> Optional[Outcome]:
        return self._claims.get(key)

    async def remember_request(self, key: str, digest: str, ttl: float) -> bool:
        return self.requests.check(key, digest, ttl)

    async def buttons(self, user: str) -> List[Button]:
        return self.button_memory.get(user)

    async def remember_buttons(self, user: str, buttons: Sequence[Button]) -> None:
        self.button_memory.remember(user, buttons)

    async def hold(self, user: str, reply: HeldReply, front: bool = False) -> None:
        self.pending.add(user, reply.text, continued=reply.continued, front=front)

    async def held(self, user: str) -> List[HeldReply]:
        return self.pending.peek(user)

    async def take_held(self, user: str) -> List[HeldReply]:
        return self.pending.pop(user)

    async def note_inbound(self, user: str) -> None:
        self.inbound.set(user, True)

    async def within_window(self, user: str) -> bool:
        return bool(self.inbound.get(user))

    async def forget_user(self, user: str) -> None:
        self.button_memory.forget(user)
        self.pending.pop(user)
        self.inbound.pop(user)


def redacted_url(url: str) -> str:
    """The Redis URL without its password, for logs."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or parts.path or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path if parts.hostname else ''}"


class RedisStateStore(StateStore):
    """Every replica's state in one Redis (redis.asyncio: no blocking call on the loop)."""

    shared = True
    # A running claim names its owner (a token per claim), so a replica that lost its lease
    # (a stalled loop) can neither keep another replica's claim alive nor overwrite its outcome.
    # PEXPIRE only while the claim is still this owner's running one (never a settled one).
    RENEW = ("if redis.call('GET', KEYS[1]) == ARGV[1] then "
             "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0")
    # The outcome is written only by the owner of the running claim (or when the key expired):
    # the settled claim (no reply) for the dedupe TTL, the reply under its own key, shorter.
    SETTLE = ("local v = redis.call('GET', KEYS[1]) "
              "if v == false or v == ARGV[1] then "
              "redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) "
              "if ARGV[4] ~= '' then redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[5]) end "
              "return 1 end return 0")
    # WeChat retries a message at most three times within about 15 s: a reply (which may
    # be a progress lookup's result) is kept that long, not for the whole dedupe window;
    # a replay after that finds the settled claim and gets "success".
    SETTLED_KEEP = 30.0

    def __init__(self, client: "aioredis.Redis", prefix: str = DEFAULT_STATE_PREFIX,
                 claim_ttl: float = 120.0, button_ttl: float = 24 * 3600.0,
                 held_ttl: float = 48 * 3600.0, max_held: int = 5, claim_lease: float = 8.0):
        super().__init__(claim_ttl, button_ttl, held_ttl, max_held)
        self.client = client
        self.prefix = prefix.rstrip(":")
        self.claim_lease = claim_lease
        self.renew_every = claim_lease / 4
        self.settled_ttl = min(claim_ttl, self.SETTLED_KEEP)  # the reply's
        self._running: Dict[str, str] = {}  # claim key -> this replica's running value
        # Redis down: requests are checked against this replica's memory (as claims are)
        self.local_requests = SeenRequests()

    @classmethod
    def from_url(cls, url: str, timeout: float = 1.0, **kwargs: Any) -> "RedisStateStore":
        """No connection yet: the first command connects, in the running event loop."""
        client = aioredis.Redis.from_url(url, socket_timeout=timeout,
                                         socket_connect_timeout=timeout,
                                         decode_responses=True)
        logger.info("wechat: shared channel state in Redis at %s", redacted_url(url))
        return cls(client, **kwargs)

    def key(self, kind: str, name: str) -> str:
        return f"{self.prefix}:{kind}:{name}"

    @staticmethod
    def _ms(seconds: float) -> int:
        return max(1, int(seconds * 1000))

    def _failed(self, what: str, user: Optional[str] = None) -> None:
        who = f" for {mask_openid(user)}" if user else ""
        logger.warning("wechat: Redis unavailable, %s%s", what, who, exc_info=True)

    # --- message claims ------------------------------------------------------------------
    async def claim(self, key: str) -> bool:
        running = json.dumps({"state": "running", "reply": None, "owner": uuid.uuid4().hex})
        try:
            claimed = bool(await self.client.set(self.key("claim", key), running, nx=True,
                                                 px=self._ms(self.claim_lease)))
        except (RedisError, OSError):
            self._failed("running the message here without a claim")
            return True
        if claimed:
            self._running[key] = running
        return claimed

    async def renew(self, key: str) -> None:
        running = self._running.get(key)
        if running is None:
            return
        try:
            await self.client.eval(self.RENEW, 1, self.key("claim", key), running,
                                   self._ms(self.claim_lease))
        except (RedisError, OSError):
            self._failed("a running claim was not renewed")

    async def settle(self, key: str, outcome: Outcome) -> None:
        running = self._running.pop(key, "")
        value = json.dumps({"state": outcome.state, "reply": None})
        reply = json.dumps(outcome.reply, ensure_ascii=False) if outcome.reply is not None else ""
        try:
            written = await self.client.eval(self.SETTLE, 2, self.key("claim", key),
                                             self.key("reply", key), running, value,
                                             self._ms(self.claim_ttl), reply,
                                             self._ms(self.settled_ttl))
        except (RedisError, OSError):
            self._failed("a message outcome is not shared")
            return
        if not written:
            logger.warning("wechat: a message's claim passed to another replica; its outcome stands")

    async def outcome(self, key: str) -> Optional[Outcome]:
        try:
            raw, reply = await self.client.mget(self.key("claim", key), self.key("reply", key))
        except (RedisError, OSError):
            self._failed("a retry cannot see the outcome")
            return Outcome("unknown")
        if raw is None:
            return None
        data = json.loads(raw)
        return Outcome(data["state"], json.loads(reply) if reply is not None else data.get("reply"))

    # --- replay protection -----------------------------------------------------------------
    async def remember_request(self, key: str, digest: str, ttl: float) -> bool:
        name = self.key("request", key)
        try:
            for _ in range(2):  # a key that expires between SET and GET: set it again
                if await self.client.set(name, digest, nx=True, px=self._ms(ttl)):
                    return True
                seen = await self.client.get(name)
                if seen is not None:
                    return seen == digest
        except (RedisError, OSError):
            self._failed("a signed request is checked against this replica only")
            return self.local_requests.check(key, digest, ttl)
        return True

    # --- buttons ---------------------------------------------------------------------------
    async def buttons(self, user: str) -> List[Button]:
        try:
            raw = await self.client.get(self.key("buttons", user))
        except (RedisError, OSError):
            self._failed("the last menu is unknown", user)
            return []
        return [(title, payload) for title, payload in json.loads(raw)] if raw else []

    async def remember_buttons(self, user: str, buttons: Sequence[Button]) -> None:
        if not buttons:
            return
        value = json.dumps([[title, payload] for title, payload in buttons], ensure_ascii=False)
        try:
            await self.client.set(self.key("buttons", user), value, px=self._ms(self.button_ttl))
        except (RedisError, OSError):
            self._failed("the menu is not remembered", user)

    # --- held replies ----------------------------------------------------------------------
    # A list of JSON entries, changed in MULTI/EXEC transactions (atomic, no retries):
    # the same order and limit as delivery.add_held.
    @staticmethod
    def _encode_held(reply: HeldReply) -> str:
        return json.dumps({"text": reply.text, "continued": reply.continued}, ensure_ascii=False)

    @staticmethod
    def _decode_held(raw: Sequence[str]) -> List[HeldReply]:
        entries = [json.loads(item) for item in raw or []]
        return [HeldReply(entry["text"], bool(entry["continued"])) for entry in entries]

    async def hold(self, user: str, reply: HeldReply, front: bool = False) -> None:
        key, value = self.key("held", user), self._encode_held(reply)
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                if front:  # the rest of the reply being shown now: it comes next
                    if self.max_held > 1:
                        pipe.ltrim(key, -(self.max_held - 1), -1)
                    else:
                        pipe.delete(key)
                    pipe.lpush(key, value)
                else:  # too many held replies: the oldest go
                    pipe.rpush(key, value)
                    pipe.ltrim(key, -self.max_held, -1)
                pipe.pexpire(key, self._ms(self.held_ttl))
                await pipe.execute()
        except (RedisError, OSError):
            logger.error("wechat: Redis unavailable, a held reply for %s is lost",
                         mask_openid(user), exc_info=True)

    async def held(self, user: str) -> List[HeldReply]:
        try:
            return self._decode_held(await self.client.lrange(self.key("held", user), 0, -1))
        except (RedisError, OSError):
            self._failed("held replies unknown", user)
            return []

    async def take_held(self, user: str) -> List[HeldReply]:
        key = self.key("held", user)
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                raw, _ = await pipe.lrange(key, 0, -1).delete(key).execute()
        except (RedisError, OSError):
            self._failed("held replies wait for the next message", user)
            return []
        return self._decode_held(raw)

    # --- the 48-hour window ------------------------------------------------------------------
    async def note_inbound(self, user: str) -> None:
        try:
            await self.client.set(self.key("inbound", user), "1",
                                  px=self._ms(self.INBOUND_WINDOW))
        except (RedisError, OSError):
            self._failed("the 48 h window is not recorded", user)

    async def within_window(self, user: str) -> bool:
        try:
            return bool(await self.client.exists(self.key("inbound", user)))
        except (RedisError, OSError):
            self._failed("the 48 h window is unknown (taken as closed)", user)
            return False

    async def forget_user(self, user: str) -> None:
        try:
            await self.client.delete(self.key("buttons", user), self.key("held", user),
                                     self.key("inbound", user))
        except (RedisError, OSError):
            self._failed("the user's state expires on its own", user)

    async def close(self) -> None:
        await self.client.close(close_connection_pool=True)


def state_store(settings: Any, clock: Callable[[], float] = time.monotonic) -> StateStore:
    """The store the settings ask for: Redis when `state_redis_url` is set, else memory."""
    ttls = dict(claim_ttl=settings.dedupe_ttl, button_ttl=settings.button_memory_ttl,
                held_ttl=settings.pending_ttl)
    if getattr(settings, "state_redis_url", None):
        return RedisStateStore.from_url(settings.state_redis_url,
                                        prefix=settings.state_key_prefix, **ttls)
    return MemoryStateStore(max_users=settings.button_memory_size, clock=clock, **ttls)

"""The console's throttles: failure counters shared by every web replica (Redis) or kept in
this process (bounded memory), the sign-in policy built on them, and the gate around scrypt.

Counters (`FailureCounters`): per key, the times of recent failures within a window.
    MemoryCounters   this process only; at most `max_keys` keys (least recently used go
                     first) and `max_per_key` times per key, every entry expires with its
                     window: a flood of distinct names or addresses cannot grow memory.
    RedisCounters    one sorted set per key (`<prefix>:<key>`, score = time of the failure,
                     PEXPIRE = window), updated by one Lua script, so two replicas count
                     the same failures. When Redis cannot be reached it counts in a
                     MemoryCounters of its own (per process), logs a warning (at most once
                     a minute) and tries Redis again after a few seconds: never a 5xx.
The clock is the caller's (injectable in tests), not Redis's.

Sign-in (`SignInGuard`), checked before any password hash is computed:
    per account name (lower-cased, known or not): the first ACCOUNT_FREE failures within
        ACCOUNT_WINDOW cost nothing; after that each attempt must wait a back-off from the
        last failure that doubles with every further failure (60 s, 120 s, … up to
        15 minutes), whichever address it comes from;
    per client address (the real one: `request.remote_addr`, which sanic takes from the
        trusted proxy's header when SANIC_REAL_IP_HEADER / SANIC_PROXIES_COUNT is set):
        ADDRESS_LIMIT failures within ADDRESS_WINDOW, over all names, then 429 until the
        window has passed.
    a browser that signed in as the account before (its device cookie, web/agents.py) has
        a back-off of its own: a stranger's failures cannot lock the agent out there.
A successful sign-in clears the account's failures (not the address's).
"""
import abc
import asyncio
import collections
import itertools
import logging
import secrets
import time
from typing import Awaitable, Callable, Deque, Optional, Tuple, TypeVar

from redis import asyncio as aioredis
from redis.exceptions import RedisError

logger = logging.getLogger("web.limits")

DEFAULT_PREFIX = "mzmtb:web"

ACCOUNT_FREE = 5               # failures per account name before the back-off starts
ACCOUNT_WINDOW = 3600          # failures older than this are forgotten
ACCOUNT_BASE_DELAY = 60        # the first back-off; doubles with each further failure
ACCOUNT_MAX_DELAY = 900
ADDRESS_LIMIT = 20             # failures per client address ...
ADDRESS_WINDOW = 900           # ... within this many seconds

T = TypeVar("T")


class FailureCounters(abc.ABC):
    @abc.abstractmethod
    async def record(self, key: str, now: float, window: float) -> Tuple[int, float]:
        """Add a failure at `now`; (failures within the window, time of the latest)."""

    @abc.abstractmethod
    async def state(self, key: str, now: float, window: float) -> Tuple[int, float]:
        """(failures within the window, time of the latest or 0)."""

    @abc.abstractmethod
    async def clear(self, key: str) -> None:
        ...


class MemoryCounters(FailureCounters):
    def __init__(self, max_keys: int = 10000, max_per_key: int = 64):
        self.max_keys, self.max_per_key = max_keys, max_per_key
        self._data: "collections.OrderedDict[str, Deque[float]]" = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    def _recent(self, key: str, now: float, window: float) -> Optional[Deque[float]]:
        times = self._data.get(key)
        if times is None:
            return None
        while times and times[0] <= now - window:
            times.popleft()
        if not times:
            del self._data[key]
            return None
        return times

    def _expire_oldest(self, now: float, window: float) -> None:
        # the least recently used keys first: drop those whose window has passed
        for key in list(itertools.islice(self._data, 8)):
            self._recent(key, now, window)

    async def record(self, key: str, now: float, window: float) -> Tuple[int, float]:
        times = self._recent(key, now, window)
        if times is None:
            times = self._data[key] = collections.deque(maxlen=self.max_per_key)
        self._data.move_to_end(key)
        times.append(now)
        self._expire_oldest(now, window)
        while len(self._data) > self.max_keys:
            self._data.popitem(last=False)
        return len(times), now

    async def state(self, key: str, now: float, window: float) -> Tuple[int, float]:
        times = self._recent(key, now, window)
        return (len(times), times[-1]) if times else (0, 0.0)

    async def clear(self, key: str) -> None:
        self._data.pop(key, None)


# KEYS[1] the set; ARGV: now, window start, member, window in ms, cap (members kept)
_RECORD = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if ARGV[3] ~= '' then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[3])
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[5]) - 1)
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
local count = redis.call('ZCARD', KEYS[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
return {count, last[2] or '0'}
"""


class RedisCounters(FailureCounters):
    def __init__(self, url: str, prefix: str = DEFAULT_PREFIX, fallback: Optional[MemoryCounters] = None,
                 max_per_key: int = 64, retry_after: float = 5.0, timeout: float = 0.5,
                 monotonic: Callable[[], float] = time.monotonic):
        self.url, self.prefix = url, prefix.rstrip(":")
        self.fallback = fallback or MemoryCounters()
        self.max_per_key, self.retry_after, self.timeout = max_per_key, retry_after, timeout
        self.monotonic = monotonic
        self._client = None
        self._down_until = 0.0
        self._warned_at = -1e9

    def _redis(self):
        if self._client is None:
            self._client = aioredis.Redis.from_url(
                self.url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout)
        return self._client

    def _failed(self, error: BaseException) -> None:
        now = self.monotonic()
        self._down_until = now + self.retry_after
        if now - self._warned_at >= 60:
            self._warned_at = now
            logger.warning("Redis (%s) unreachable (%s): console throttles count in this "
                           "process only until it answers again", redacted(self.url),
                           type(error).__name__)

    async def _run(self, key: str, now: float, window: float, member: str) -> Tuple[int, float]:
        count, last = await asyncio.wait_for(self._redis().eval(
            _RECORD, 1, f"{self.prefix}:{key}", repr(now), repr(now - window), member,
            int(window * 1000) + 1, self.max_per_key), timeout=self.timeout * 2)
        return int(count), float(last)

    async def _either(self, key: str, now: float, window: float, member: str,
                      local: Callable[[], Awaitable[T]]):
        if self.monotonic() >= self._down_until:
            try:
                return await self._run(key, now, window, member)
            except (RedisError, OSError, asyncio.TimeoutError) as error:
                self._failed(error)
        return await local()

    async def record(self, key: str, now: float, window: float) -> Tuple[int, float]:
        member = f"{now!r}:{secrets.token_hex(4)}"
        return await self._either(key, now, window, member,
                                  lambda: self.fallback.record(key, now, window))

    async def state(self, key: str, now: float, window: float) -> Tuple[int, float]:
        return await self._either(key, now, window, "", lambda: self.fallback.state(key, now, window))

    async def clear(self, key: str) -> None:
        await self.fallback.clear(key)
        if self.monotonic() >= self._down_until:
            try:
                await asyncio.wait_for(self._redis().delete(f"{self.prefix}:{key}"),
                                       timeout=self.timeout * 2)
            except (RedisError, OSError, asyncio.TimeoutError) as error:
                self._failed(error)

    async def close(self) -> None:
        if self._client is not None:
            try:
                await self._client.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass
            self._client = None


def redacted(url: str) -> str:
    """A Redis URL for the log, without its password."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"


def counters(redis_url: str = "", prefix: str = DEFAULT_PREFIX) -> FailureCounters:
    return RedisCounters(redis_url, prefix) if redis_url else MemoryCounters()


class WindowLimit:
    """At most `limit` failures per key within `window` seconds (the conversation-code
    throttle: wrong codes per agent)."""

    def __init__(self, store: FailureCounters, name: str, limit: int, window: float,
                 clock: Callable[[], float] = time.time):
        self.store, self.name, self.limit, self.window, self.clock = store, name, limit, window, clock

    def _key(self, key: str) -> str:
        return f"{self.name}:{key}"

    async def blocked(self, key: str) -> bool:
        count, _ = await self.store.state(self._key(key), self.clock(), self.window)
        return count >= self.limit

    async def failed(self, key: str) -> None:
        await self.store.record(self._key(key), self.clock(), self.window)

    async def clear(self, key: str) -> None:
        await self.store.clear(self._key(key))


def account_delay(failures: int) -> float:
    """Seconds an account must rest after its latest failure."""
    if failures < ACCOUNT_FREE:
        return 0.0
    return float(min(ACCOUNT_MAX_DELAY, ACCOUNT_BASE_DELAY * 2 ** (failures - ACCOUNT_FREE)))


class SignInGuard:
    def __init__(self, store: FailureCounters, clock: Callable[[], float] = time.time,
                 address_limit: int = ADDRESS_LIMIT, address_window: float = ADDRESS_WINDOW):
        self.store, self.clock = store, clock
        self.address_limit, self.address_window = address_limit, address_window

    @staticmethod
    def _account(username: str, device: str = "") -> str:
        key = "login:account:" + (username or "").strip().lower()[:64]
        return key + ":device:" + device[:32] if device else key

    @staticmethod
    def _address(address: str) -> str:
        return "login:address:" + (address or "-")[:64]

    async def wait_seconds(self, username: str, address: str, device: str = "") -> float:
        """0 when a sign-in may be tried now; else how long to wait (for Retry-After).
        `device`: an id of the browser when it signed in as this account before (its
        device cookie): then the account's back-off counts this browser's failures only."""
        now = self.clock()
        count, last = await self.store.state(self._address(address), now, self.address_window)
        if count >= self.address_limit:
            # the oldest failure leaves the window at the latest after a full window
            return float(self.address_window)
        count, last = await self.store.state(self._account(username, device), now, ACCOUNT_WINDOW)
        rest = last + account_delay(count) - now if count else 0.0
        return max(0.0, rest)

    async def failed(self, username: str, address: str, device: str = "") -> None:
        now = self.clock()
        await self.store.record(self._account(username, device), now, ACCOUNT_WINDOW)
        await self.store.record(self._address(address), now, self.address_window)

    async def succeeded(self, username: str, device: str = "") -> None:
        # only the count this sign-in was checked against: a stranger's failures on the
        # account stay when its agent signs in from a known browser
        await self.store.clear(self._account(username, device))


class HashGate:
    """At most `concurrency` password hashes at a time (scrypt: ~0.3 s CPU and 32 MiB
    each). A sign-in waits up to `wait_seconds` for its turn, and at most `max_waiting`
    wait; the rest are refused at once (429)."""

    def __init__(self, concurrency: int = 2, wait_seconds: float = 3.0, max_waiting: int = 16):
        self.concurrency, self.wait_seconds, self.max_waiting = concurrency, wait_seconds, max_waiting
        self._semaphore: Optional[asyncio.Semaphore] = None
        self._waiting = 0
        self.active = 0
        self.peak = 0

    async def run(self, function: Callable[[], Awaitable[T]]) -> Tuple[bool, Optional[T]]:
        """(True, result) when it ran; (False, None) when refused."""
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.concurrency)
        if not self._semaphore.locked():
            await self._semaphore.acquire()  # free: taken without yielding
        else:
            if self._waiting >= self.max_waiting:
                return False, None
            self._waiting += 1
            try:
                await asyncio.wait_for(self._semaphore.acquire(), timeout=self.wait_seconds)
            except asyncio.TimeoutError:
                return False, None
            finally:
                self._waiting -= 1
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            return True, await function()
        finally:
            self.active -= 1
            self._semaphore.release()

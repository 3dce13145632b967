"""The console's limits (issue 16), without services: the sign-in throttle per account and
per address, its bounded memory, the gate around scrypt, the cookie rule, the absolute
session lifetime and the per-agent lookup limits. Clocks are injected; nothing sleeps
except the two small web app processes at the end.
"""
import asyncio
import sqlite3
import threading

import pytest
import requests

from web import limits
from web.agents import AgentStore
from web.config import WebConfig, plain_development

from test_web_console_api import PASSWORD, free_port, start_web


class Clock:
    def __init__(self, now=1_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


def run(coroutine):
    return asyncio.run(coroutine)


# --- sign-in throttle ------------------------------------------------------------------
def test_an_account_backs_off_whatever_address_the_guesses_come_from():
    """The old throttle keyed on (name, address): rotating addresses allowed unlimited
    guessing. Now the account's failures count from every address."""
    clock = Clock()
    guard = limits.SignInGuard(limits.MemoryCounters(), clock=clock)

    async def scenario():
        for index in range(limits.ACCOUNT_FREE):
            assert await guard.wait_seconds("li", f"10.0.0.{index}") == 0
            await guard.failed("li", f"10.0.0.{index}")
        # a sixth address: the account itself now waits, 60 s after the last failure
        assert await guard.wait_seconds("Li", "10.0.9.9") == limits.ACCOUNT_BASE_DELAY
        clock.now += limits.ACCOUNT_BASE_DELAY
        assert await guard.wait_seconds("li", "10.0.9.9") == 0
        await guard.failed("li", "10.0.9.9")  # the 6th failure doubles the wait
        assert await guard.wait_seconds("li", "10.0.9.10") == 2 * limits.ACCOUNT_BASE_DELAY
        clock.now += 2 * limits.ACCOUNT_BASE_DELAY
        for _ in range(6):  # ... up to the cap
            await guard.failed("li", "10.0.9.11")
        assert await guard.wait_seconds("li", "10.0.9.12") == limits.ACCOUNT_MAX_DELAY
        # another account is not affected; the window forgets
        assert await guard.wait_seconds("wang", "10.0.9.12") == 0
        clock.now += limits.ACCOUNT_WINDOW + 1
        assert await guard.wait_seconds("li", "10.0.9.12") == 0

    run(scenario())


def test_one_address_spraying_names_is_limited_and_a_success_clears_only_the_account():
    clock = Clock()
    guard = limits.SignInGuard(limits.MemoryCounters(), clock=clock)

    async def scenario():
        for index in range(limits.ADDRESS_LIMIT):
            assert await guard.wait_seconds(f"user{index}", "203.0.113.7") == 0
            await guard.failed(f"user{index}", "203.0.113.7")
        assert await guard.wait_seconds("fresh-name", "203.0.113.7") > 0
        assert await guard.wait_seconds("fresh-name", "203.0.113.8") == 0  # another address
        await guard.succeeded("user0")
        assert await guard.wait_seconds("user0", "203.0.113.7") > 0  # the address stays limited
        clock.now += limits.ADDRESS_WINDOW + 1
        assert await guard.wait_seconds("fresh-name", "203.0.113.7") == 0

    run(scenario())


def test_the_throttle_memory_is_bounded_under_a_flood_of_names():
    """The old throttle kept an entry for every name ever tried, for ever."""
    clock = Clock()
    store = limits.MemoryCounters(max_keys=500, max_per_key=8)
    guard = limits.SignInGuard(store, clock=clock)

    async def scenario():
        for index in range(5000):
            await guard.failed(f"name-{index}", f"198.51.{index // 250}.{index % 250}")
            clock.now += 0.01
        assert len(store) <= 500
        for _ in range(100):  # one key's history is bounded too
            await store.record("login:account:one", clock(), 3600)
        assert (await store.state("login:account:one", clock(), 3600))[0] == 8
        clock.now += 3601  # expired keys go as soon as they are met
        await store.record("late", clock(), 60)
        assert (await store.state("login:account:one", clock(), 3600))[0] == 0

    run(scenario())


def test_redis_down_degrades_to_this_process_with_a_warning(caplog):
    closed = f"redis://127.0.0.1:{free_port()}/0"
    clock = Clock()
    counters = limits.RedisCounters(closed, prefix="test:web:down", timeout=0.2)
    guard = limits.SignInGuard(counters, clock=clock)

    async def scenario():
        for _ in range(limits.ACCOUNT_FREE):
            assert await guard.wait_seconds("li", "127.0.0.1") == 0
            await guard.failed("li", "127.0.0.1")
        assert await guard.wait_seconds("li", "127.0.0.1") > 0
        await guard.succeeded("li")
        assert await guard.wait_seconds("li", "127.0.0.1") == 0
        await counters.close()

    with caplog.at_level("WARNING", logger="web.limits"):
        run(scenario())
    warnings = [record for record in caplog.records if "Redis" in record.getMessage()]
    assert len(warnings) == 1  # once, not per request


# --- scrypt gate -----------------------------------------------------------------------
def test_at_most_two_password_hashes_run_at_once_and_the_flood_beyond_gets_refused():
    gate = limits.HashGate(concurrency=2, wait_seconds=0.3, max_waiting=4)
    release = threading.Event()

    async def slow_hash():
        await asyncio.get_running_loop().run_in_executor(None, release.wait, 2)
        return True

    async def scenario():
        tasks = [asyncio.ensure_future(gate.run(slow_hash)) for _ in range(12)]
        await asyncio.sleep(0.05)
        assert gate.active == 2
        refused_at_once = sum(1 for task in tasks if task.done())
        assert refused_at_once == 12 - 2 - 4  # only max_waiting may queue
        await asyncio.sleep(0.4)  # the queued ones give up after wait_seconds
        release.set()
        results = await asyncio.gather(*tasks)
        assert sum(1 for ran, _ in results if ran) == 2
        assert gate.peak == 2

    run(scenario())


def test_the_real_password_check_goes_through_the_gate(tmp_path):
    store = AgentStore(tmp_path / "agents.db")
    store.add_agent("li", PASSWORD)
    gate = limits.HashGate(concurrency=2, wait_seconds=60, max_waiting=64)

    async def check(password):
        loop = asyncio.get_running_loop()
        return await gate.run(lambda: loop.run_in_executor(None, store.check_password, "li", password))

    async def scenario():
        return await asyncio.gather(*[check("wrong-password" if i else PASSWORD) for i in range(3)])

    results = run(scenario())
    assert [valid for _, valid in results] == [True] + [False] * 2
    assert gate.peak == 2


# --- cookie and session lifetime -------------------------------------------------------
@pytest.mark.parametrize("environ, secure", [
    ({}, False),  # make run: loopback, plain http
    ({"WEB_HOST": "localhost"}, False),
    ({"WEB_HOST": "127.0.0.1", "WEB_PUBLIC_URL": "https://help.example.gov.cn"}, True),  # behind TLS
    ({"WEB_HOST": "0.0.0.0"}, True),
    ({"WEB_HOST": "10.1.2.3", "WEB_PUBLIC_URL": "http://10.1.2.3:8080"}, True),
    ({"WEB_HOST": "0.0.0.0", "AGENT_COOKIE_SECURE": "0"}, False),  # explicit wins
    ({"AGENT_COOKIE_SECURE": "1"}, True),
    ({"AGENT_COOKIE_SECURE": "auto", "WEB_HOST": "::1"}, False),
])
def test_cookies_are_secure_unless_plain_development_on_loopback(environ, secure):
    assert WebConfig.from_env(environ).cookie_secure is secure


def test_plain_development_needs_both_a_loopback_host_and_a_plain_loopback_url():
    assert plain_development("127.0.0.1", "http://localhost:8080")
    assert not plain_development("127.0.0.1", "https://localhost:8080")
    assert not plain_development("192.168.1.5", "http://127.0.0.1:8080")


def test_a_session_ends_8_hours_after_sign_in_however_active(tmp_path):
    """The old sessions lived as long as the agent kept clicking."""
    clock = Clock()
    store = AgentStore(tmp_path / "agents.db", idle_seconds=3600, clock=clock)
    assert store.max_seconds == 8 * 3600
    store.add_agent("li", PASSWORD)
    token, csrf = store.open_session("li")
    for _ in range(8):
        clock.now += 3599
        assert store.touch_session(token) == ("li", csrf)
    clock.now += 10  # active within every hour, but now past 8 hours
    assert store.touch_session(token) is None
    assert WebConfig.from_env({}).session_max_seconds == 8 * 3600
    assert WebConfig.from_env({"AGENT_SESSION_MAX_SECONDS": "3600"}).session_max_seconds == 3600


# --- per-agent lookup limits -----------------------------------------------------------
def test_lookups_per_agent_are_limited_per_window_and_per_day_and_audited(tmp_path):
    clock = Clock()
    store = AgentStore(tmp_path / "agents.db", clock=clock)
    store.add_agent("li", PASSWORD)
    store.add_agent("wang", PASSWORD)
    windows = [(6, 600), (15, 86400)]  # the defaults are 60 and 300 (web/config.py)
    for _ in range(6):
        row = store.reserve("li", "application", "NC********23", windows)
        assert row is not None
        store.finish(row, "NC********23", "found")
        clock.now += 1
    assert store.reserve("li", "application", "NC********23", windows) is None
    assert store.reserve("wang", "application", "NC********23", windows) is not None
    assert store.audit_rows(1)[0]["username"] == "wang"
    assert [row["outcome"] for row in store.audit_rows(3)][1:] == ["rate_limited", "found"]
    # refused attempts do not count; after 10 minutes the next 6, up to 15 a day
    allowed = 6
    for _ in range(4):
        clock.now += 601
        while store.reserve("li", "application", "x", windows) is not None:
            allowed += 1
    assert allowed == 15
    clock.now += 86400
    assert store.reserve("li", "application", "x", windows) is not None
    config = WebConfig.from_env({})
    assert (config.lookups_per_10_minutes, config.lookups_per_day) == (60, 300)


def test_the_console_refuses_lookups_past_the_limit_with_a_chinese_message(tmp_path):
    closed = f"http://127.0.0.1:{free_port()}"
    app = start_web(tmp_path, rasa_url=closed, progress_url=closed,
                    AGENT_LOOKUPS_PER_10_MINUTES="3", AGENT_LOOKUPS_PER_DAY="300")
    try:
        http, csrf = app.signed_in()
        headers = {"X-CSRF-Token": csrf}
        statuses = [http.post(f"{app.url}/agent/api/search", json={"q": f"NC202500012{i}"},
                              headers=headers, timeout=10).status_code for i in range(4)]
        assert statuses == [200, 200, 200, 429]
        refused = http.post(f"{app.url}/agent/api/search", json={"q": "NC2025000129"},
                            headers=headers, timeout=10)
        assert refused.status_code == 429 and "查询次数已达上限" in refused.json()["error"]
        assert "每 10 分钟 3 次" in refused.json()["error"]
        # questions are not lookups
        assert http.post(f"{app.url}/agent/api/search", json={"q": "要带什么材料"},
                         headers=headers, timeout=15).status_code == 200
        rows = AgentStore(app.db).audit_rows()
        application_rows = [row for row in rows if row["kind"] == "application"]
        assert [row["outcome"] for row in application_rows][:2] == ["rate_limited", "rate_limited"]
        assert [row["outcome"] for row in application_rows][2:] == ["unavailable"] * 3
        assert all("*" in row["subject"] for row in application_rows)
    finally:
        app.process.terminate()
        app.process.wait(timeout=10)


def test_the_console_sign_in_backs_off_with_retry_after_and_sets_secure_cookies_off_loopback(tmp_path):
    closed = f"http://127.0.0.1:{free_port()}"
    app = start_web(tmp_path, rasa_url=closed, progress_url=closed,
                    WEB_PUBLIC_URL="https://help.example.gov.cn")
    try:
        page = requests.get(f"{app.url}/agent", timeout=5)
        assert "Secure" in page.headers["Set-Cookie"]
        token = page.cookies.get("agent_csrf")
        attempt = lambda password: requests.post(  # noqa: E731
            f"{app.url}/agent/api/login", json={"username": "li", "password": password},
            cookies={"agent_csrf": token}, headers={"X-CSRF-Token": token}, timeout=10)
        assert [attempt("bad-guess-x").status_code for _ in range(5)] == [401] * 5
        refused = attempt(PASSWORD)
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "60"
        assert "1 分钟" in refused.json()["error"]
    finally:
        app.process.terminate()
        app.process.wait(timeout=10)


def test_the_sign_in_wait_is_told_in_minutes():
    from web.app import too_many_failures

    assert "1 分钟" in too_many_failures(60)
    assert "15 分钟" in too_many_failures(900)
    assert "3 分钟" in too_many_failures(121)


def test_settings_are_read_from_the_environment():
    config = WebConfig.from_env({"AGENT_DATABASE_URL": "postgresql://u@db/agents",
                                 "WEB_STATE_REDIS_URL": "redis://r:6379/1", "AGENT_HASH_CONCURRENCY": "3",
                                 "AGENT_LOOKUPS_PER_DAY": "100"})
    assert config.agent_store_location == "postgresql://u@db/agents"
    assert config.state_redis_url == "redis://r:6379/1" and config.state_redis_prefix == "mzmtb:web"
    assert config.hash_concurrency == 3 and config.lookups_per_day == 100
    assert WebConfig.from_env({}).agent_store_location.endswith("agents.db")
    with pytest.raises(ValueError):
        WebConfig.from_env({"WEB_STATE_REDIS_URL": "http://r"})


def test_the_address_limit_uses_the_trusted_proxys_header(tmp_path):
    """Behind the proxy every agent has the proxy's address: the limit must count the client
    the proxy names (SANIC_REAL_IP_HEADER), as the progress service's lockout does."""
    closed = f"http://127.0.0.1:{free_port()}"
    app = start_web(tmp_path, rasa_url=closed, progress_url=closed,
                    SANIC_REAL_IP_HEADER="x-real-ip", AGENT_SIGNIN_ADDRESS_LIMIT="3")
    try:
        page = requests.get(f"{app.url}/agent", timeout=5)
        token = page.cookies.get("agent_csrf")

        def attempt(name, address):
            return requests.post(
                f"{app.url}/agent/api/login", json={"username": name, "password": "bad-guess-x"},
                cookies={"agent_csrf": token}, timeout=10,
                headers={"X-CSRF-Token": token, "X-Real-IP": address}).status_code

        assert [attempt(f"name{i}", "203.0.113.5") for i in range(3)] == [401] * 3
        assert attempt("name9", "203.0.113.5") == 429  # a new name, the same client
        assert attempt("name9", "203.0.113.6") == 401  # another client behind the same proxy
        assert attempt("li", "203.0.113.7") == 401
    finally:
        app.process.terminate()
        app.process.wait(timeout=10)


def test_a_strangers_failures_do_not_lock_the_agent_out_of_a_browser_that_signed_in_before(tmp_path):
    closed = f"http://127.0.0.1:{free_port()}"
    app = start_web(tmp_path, rasa_url=closed, progress_url=closed)
    try:
        owner, _ = app.signed_in()  # the agent's own browser: gets the device cookie
        assert owner.cookies.get("agent_device")
        stranger = requests.Session()
        stranger.get(f"{app.url}/agent", timeout=5)
        headers = {"X-CSRF-Token": stranger.cookies.get("agent_csrf")}
        codes = [stranger.post(f"{app.url}/agent/api/login", json={"username": "li", "password": "bad-guess"},
                               headers=headers, timeout=10).status_code for _ in range(6)]
        assert codes == [401] * 5 + [429]
        again = owner.post(f"{app.url}/agent/api/login", json={"username": "li", "password": PASSWORD},
                           headers={"X-CSRF-Token": owner.cookies.get("agent_csrf")}, timeout=10)
        assert again.status_code == 200
        # the stranger still waits, and a device cookie of another account changes nothing
        assert stranger.post(f"{app.url}/agent/api/login", json={"username": "li", "password": PASSWORD},
                             headers=headers, timeout=10).status_code == 429
        forged = stranger.post(f"{app.url}/agent/api/login", json={"username": "li", "password": PASSWORD},
                               headers=headers, cookies={"agent_device": "made-up"}, timeout=10)
        assert forged.status_code == 429
    finally:
        app.process.terminate()
        app.process.wait(timeout=10)


def test_device_tokens_are_stored_hashed_and_expire(tmp_path):
    clock = Clock()
    store = AgentStore(tmp_path / "agents.db", clock=clock)
    store.add_agent("li", PASSWORD)
    token = store.remember_device("li")
    assert store.device_user(token) == "li" and store.device_user("other") is None
    with sqlite3.connect(str(tmp_path / "agents.db")) as db:
        assert token not in str(db.execute("SELECT * FROM devices").fetchall())
    clock.now += 31 * 24 * 3600
    assert store.device_user(token) is None

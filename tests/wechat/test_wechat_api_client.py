"""Stable access token cache and customer-service sends against the fake WeChat API."""
import asyncio
import socket

from wechat_channel.api_client import WeChatApiClient, mask_openid

from wechat_fakes import APPID, APPSECRET


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _client(fake, clock=None, timeout=2.0):
    return WeChatApiClient(fake.api_base, APPID, APPSECRET, timeout=timeout,
                           clock=clock or Clock())


def test_token_is_cached_and_renewed_five_minutes_before_expiry(fake_wechat):
    clock = Clock()

    async def scenario():
        client = _client(fake_wechat, clock)
        try:
            assert (await client.send_text("oA", "一")).ok
            clock.now += 7200 - 301  # still more than 5 minutes left
            assert (await client.send_text("oA", "二")).ok
            assert fake_wechat.token_calls == 1
            clock.now += 2  # now less than 5 minutes left
            assert (await client.send_text("oA", "三")).ok
            assert fake_wechat.token_calls == 2
        finally:
            await client.close()

    asyncio.run(scenario())
    assert [call["token"] for call in fake_wechat.send_calls] == ["TOKEN-1", "TOKEN-1", "TOKEN-2"]
    assert fake_wechat.messages_to("oA") == ["一", "二", "三"]


def test_one_refresh_at_a_time(fake_wechat):
    fake_wechat.token_delay = 0.3

    async def scenario():
        client = _client(fake_wechat)
        try:
            return await asyncio.gather(*(client.send_text(f"o{i}", "并发") for i in range(8)))
        finally:
            await client.close()

    results = asyncio.run(scenario())
    assert all(result.ok for result in results)
    assert fake_wechat.token_calls == 1


def test_token_errors_refresh_and_retry_only_once(fake_wechat):
    async def scenario():
        client = _client(fake_wechat)
        try:
            await client.access_token()
            fake_wechat.invalidate_tokens()
            fake_wechat.send_errors.extend([42001])  # the fresh token is refused too
            return await client.send_text("oA", "过期")
        finally:
            await client.close()

    result = asyncio.run(scenario())
    assert (result.kind, result.errcode) == ("token", 42001)
    assert len(fake_wechat.send_calls) == 2 and fake_wechat.token_calls == 2


def test_error_codes_are_mapped(fake_wechat):
    async def scenario():
        client = _client(fake_wechat)
        try:
            kinds = []
            for code in (45015, 45047, 48001, 45002, 40003):
                fake_wechat.send_errors.append(code)
                kinds.append((await client.send_text("oA", "x")).kind)
            return kinds
        finally:
            await client.close()

    assert asyncio.run(scenario()) == ["window", "quota", "no_permission", "too_long", "error"]


def test_bad_appsecret_and_unreachable_api_give_errors_not_exceptions(fake_wechat):
    silent = socket.socket()  # accepts connections, never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(5)

    async def scenario():
        wrong = WeChatApiClient(fake_wechat.api_base, APPID, "wrong", timeout=1.0)
        hanging = WeChatApiClient(f"http://127.0.0.1:{silent.getsockname()[1]}", APPID,
                                  APPSECRET, timeout=0.3)
        try:
            return (await wrong.send_text("oA", "x")).kind, (await hanging.send_text("oA", "x")).kind
        finally:
            await wrong.close()
            await hanging.close()

    try:
        assert asyncio.run(scenario()) == ("error", "error")
    finally:
        silent.close()
    assert fake_wechat.sent == []


def test_openids_are_masked_in_logs():
    assert mask_openid("oyORnuP8q7ou2gfYjqLzSIWZf0rs") == "oyOR…rs"
    assert "P8q7ou2gfYjq" not in mask_openid("oyORnuP8q7ou2gfYjqLzSIWZf0rs")


# --- stable_token hands out a refused token again: force_refresh -------------------------
def test_a_refused_token_returned_again_is_force_refreshed_and_the_call_retried(fake_wechat):
    fake_wechat.stable_tokens = True  # WeChat's cache: the same token until forced

    async def scenario():
        client = _client(fake_wechat)
        try:
            await client.access_token()
            fake_wechat.invalidate_tokens()  # e.g. /cgi-bin/token used elsewhere
            return await client.send_text("oA", "强制刷新")
        finally:
            await client.close()

    result = asyncio.run(scenario())
    assert result.ok and fake_wechat.messages_to("oA") == ["强制刷新"]
    assert [r["force_refresh"] for r in fake_wechat.token_requests] == [False, False, True]
    assert [call["token"] for call in fake_wechat.send_calls] == ["TOKEN-1", "TOKEN-3"]


def test_forced_refreshes_are_throttled(fake_wechat):
    fake_wechat.stable_tokens = True
    clock = Clock()

    async def scenario():
        client = _client(fake_wechat, clock)
        try:
            await client.access_token()
            fake_wechat.invalidate_tokens()
            first = await client.send_text("oA", "一")
            clock.now += 30
            fake_wechat.invalidate_tokens()  # refused again within the minute
            second = await client.send_text("oA", "二")
            third = await client.send_text("oA", "三")  # no new stable_token call at all
            calls_while_throttled = len(fake_wechat.token_requests)
            clock.now += 31  # a minute after the forced refresh
            fourth = await client.send_text("oA", "四")
            return [r.kind for r in (first, second, third, fourth)], calls_while_throttled
        finally:
            await client.close()

    kinds, calls_while_throttled = asyncio.run(scenario())
    assert kinds == ["ok", "token", "token", "ok"]
    assert calls_while_throttled == 4  # first fetch, refused + forced, refused (throttled)
    assert [r["force_refresh"] for r in fake_wechat.token_requests] == \
        [False, False, True, False, False, True]
    assert fake_wechat.messages_to("oA") == ["一", "四"]


def test_concurrent_callers_share_one_forced_refresh(fake_wechat):
    fake_wechat.stable_tokens = True

    async def scenario():
        client = _client(fake_wechat)
        try:
            await client.access_token()
            fake_wechat.invalidate_tokens()
            fake_wechat.token_delay = 0.2
            return await asyncio.gather(*(client.send_text(f"o{i}", "并发") for i in range(8)))
        finally:
            await client.close()

    results = asyncio.run(scenario())
    assert all(result.ok for result in results)
    assert [r["force_refresh"] for r in fake_wechat.token_requests] == [False, False, True]


def test_the_fake_keeps_minting_new_tokens_by_default(fake_wechat):
    async def scenario():
        client = _client(fake_wechat)
        try:
            first = await client.access_token()
            return first, await client.access_token(rejected=first)
        finally:
            await client.close()

    assert asyncio.run(scenario()) == ("TOKEN-1", "TOKEN-2")
    assert [r["force_refresh"] for r in fake_wechat.token_requests] == [False, False]

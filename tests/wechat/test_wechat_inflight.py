"""The dedupe / delivery state machine without HTTP."""
import asyncio

from wechat_channel.delivery import ButtonMemory, InFlight, PendingReplies, TTLCache
from wechat_fakes import Recorder


def _run(scenario):
    return asyncio.run(scenario())


def test_dropped_connection_sends_the_answer_late_exactly_once():
    rec = Recorder()

    async def scenario():
        inflight = InFlight()
        first = asyncio.ensure_future(inflight.attempt("k", rec.work(0.3), 2.0, rec.on_passive, rec.on_late))
        await asyncio.sleep(0.1)
        first.cancel()  # WeChat hung up (sanic cancels the handler)
        await asyncio.sleep(0.01)
        second = await inflight.attempt("k", rec.work(0.3), 2.0, rec.on_passive, rec.on_late)
        await asyncio.sleep(0.4)
        third = await inflight.attempt("k", rec.work(0.3), 2.0, rec.on_passive, rec.on_late)
        return second, third

    assert _run(scenario) == (None, None)
    assert (rec.runs, rec.passive, rec.late) == (1, [], ["答案"])


def test_newest_waiting_attempt_gets_the_passive_reply():
    rec = Recorder()

    async def scenario():
        inflight = InFlight()
        first = asyncio.ensure_future(inflight.attempt("k", rec.work(0.3), 2.0, rec.on_passive, rec.on_late))
        await asyncio.sleep(0.1)
        second = await inflight.attempt("k", rec.work(0.3), 2.0, rec.on_passive, rec.on_late)
        return await first, second

    assert _run(scenario) == (None, "答案")
    assert (rec.runs, rec.passive, rec.late) == (1, ["答案"], [])


def test_deadline_then_late_and_retries_answer_success():
    rec = Recorder()

    async def scenario():
        inflight = InFlight()
        first = await inflight.attempt("k", rec.work(0.3), 0.1, rec.on_passive, rec.on_late)
        second = await inflight.attempt("k", rec.work(0.3), 0.1, rec.on_passive, rec.on_late)
        await asyncio.sleep(0.35)
        other = await inflight.attempt("k2", rec.work(0.0, "另一个"), 0.1, rec.on_passive, rec.on_late)
        return first, second, other

    assert _run(scenario) == (None, None, "另一个")
    assert (rec.runs, rec.late) == (2, ["答案"])


def test_finished_items_expire():
    clock = [0.0]
    rec = Recorder()

    async def scenario():
        inflight = InFlight(ttl=60, clock=lambda: clock[0])
        await inflight.attempt("k", rec.work(0), 1, rec.on_passive, rec.on_late)
        clock[0] = 61
        await inflight.attempt("k", rec.work(0), 1, rec.on_passive, rec.on_late)

    _run(scenario)
    assert rec.runs == 2  # a "retry" after the TTL is a new message


def test_lru_and_ttl_bounds():
    clock = [0.0]
    cache = TTLCache(max_size=2, ttl=10, clock=lambda: clock[0])
    cache.set("a", 1), cache.set("b", 2)
    cache.get("a")
    cache.set("c", 3)  # evicts b, the least recently used
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    clock[0] = 11
    assert cache.get("a") is None


def test_button_memory_is_per_user_and_bounded():
    memory = ButtonMemory(max_users=2)
    memory.remember("u1", [("材料", "/m"), ("地点", "/w")])
    memory.remember("u2", [("是", "/affirm")])
    memory.remember("u3", [("否", "/deny")])
    assert memory.resolve("u1", "1") is None  # evicted
    assert memory.resolve("u2", "1.") == "/affirm" and memory.resolve("u2", "是") == "/affirm"
    assert memory.resolve("u3", "2") is None and memory.resolve("u3", "随便说") is None


def test_pending_replies_keep_order_and_limit():
    pending = PendingReplies(max_per_user=3)
    for i in range(5):
        pending.add("u", f"晚到{i}")
    pending.add("u", "续", continued=True, front=True)
    assert [h.text for h in pending.pop("u")] == ["续", "晚到3", "晚到4"]
    assert pending.pop("u") == []
    pending.add("u", "晚到"), pending.add("u", "续", continued=True, front=True)
    assert [(h.text, h.continued) for h in pending.pop("u")] == [("续", True), ("晚到", False)]

"""The offer of status-change notifications after a lookup (actions/progress.py, issue 19):
only in WeChat, only for a found application whose status can still change, and a store
that fails costs the offer, never the answer."""
import asyncio

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.progress import ActionCheckProgress
from core.progress_client import LookupResult
from core.status_subscriptions import DECLINE_PAYLOAD, SUBSCRIBE_PAYLOAD, SubscriptionStore

OPENID = "oACTuser000000000000000001"


class FoundClient:
    def __init__(self, status):
        self.status = status

    async def lookup_async(self, number, suffix, requester):
        return LookupResult("found", {"application_no": number, "status": self.status,
                                      "applicant_name_masked": "李*明", "disease": "糖尿病",
                                      "status_updated_at": "2025-03-04T15:20:00+08:00",
                                      "history": []})


def tracker(channel):
    events = [{"event": "user", "text": "5678", "input_channel": channel,
               "parse_data": {"intent": {"name": "inform_application"}, "entities": []}}]
    return Tracker(OPENID, {"application_no": "NC2025000102", "id_last4": "5678",
                            "lookup_attempts": 0},
                   {"text": "5678", "intent": {"name": "inform_application"}, "entities": []},
                   events, False, None, {}, "progress_form")


@pytest.fixture
def store(tmp_path):
    opened = SubscriptionStore(f"sqlite:///{tmp_path / 'subs.db'}")
    yield opened
    opened.close()


def run(status, channel, subscriptions):
    dispatcher = CollectingDispatcher()
    action = ActionCheckProgress(client=FoundClient(status), subscriptions=subscriptions)
    asyncio.run(action.run(dispatcher, tracker(channel), {}))
    return dispatcher.messages


def test_wechat_gets_the_offer_and_the_store_the_pending_choice(store):
    messages = run("accepted", "wechat", lambda: store)
    assert "已受理" in messages[0]["text"]
    offer = messages[-1]
    assert offer["text"] == "状态有变化时通知我？"
    assert [b["payload"] for b in offer["buttons"]] == [SUBSCRIBE_PAYLOAD, DECLINE_PAYLOAD]
    assert "NC2025000102" not in str(offer)
    assert store.accept(OPENID) == "NC2025000102"


@pytest.mark.parametrize("status, channel", [("approved", "wechat"), ("rejected", "wechat"),
                                             ("withdrawn", "wechat"), ("accepted", "web"),
                                             ("accepted", "rest")])
def test_no_offer_for_a_final_status_or_another_channel(store, status, channel):
    messages = run(status, channel, lambda: store)
    assert not any(m.get("buttons") for m in messages)
    assert "通知我" not in str(messages)
    assert store.accept(OPENID) is None


def test_a_broken_store_costs_only_the_offer():
    def broken():
        raise RuntimeError("database down")

    messages = run("accepted", "wechat", broken)
    assert "已受理" in messages[0]["text"] and "通知我" not in str(messages)

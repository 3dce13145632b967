"""The status-subscription store (core/status_subscriptions.py) on SQLite and PostgreSQL,
and the signed status event (core/status_events.py). Issue 19, docs/operations.md
"Status-change notifications"."""
import json
import os
import stat
import threading

import pytest

from core import status_events
from core.status_subscriptions import (
    OFFER_SECONDS, SUBSCRIPTION_SECONDS, SubscriptionStore,
)
from tests.foundation.status_store_support import clock, store, url  # noqa: F401 (fixtures)

OPENID_A, OPENID_B = "oTESTuserA0000000000000001", "oTESTuserB0000000000000002"


def test_an_offer_becomes_one_subscription_per_pair(store, clock):
    assert store.accept(OPENID_A) is None  # nothing offered
    store.offer(OPENID_A, "NC2025000101", "accepted")
    assert store.accept(OPENID_A) == "NC2025000101"
    clock.now += 60
    assert store.accept(OPENID_A) == "NC2025000101"  # tapped again: renewed, not doubled
    store.offer(OPENID_B, "NC2025000101", "accepted")
    store.accept(OPENID_B)
    subscribers = store.subscribers("NC2025000101")
    assert [s.openid for s in subscribers] == [OPENID_A, OPENID_B]
    assert subscribers[0].expires_at == clock.now + SUBSCRIPTION_SECONDS
    assert store.subscribers("NC2025000102") == []


def test_an_old_offer_or_a_declined_one_subscribes_nothing(store, clock):
    store.offer(OPENID_A, "NC2025000101", "accepted")
    clock.now += OFFER_SECONDS + 1
    assert store.accept(OPENID_A) is None
    store.offer(OPENID_A, "NC2025000101", "accepted")
    store.decline(OPENID_A)
    assert store.accept(OPENID_A) is None
    assert store.subscribers("NC2025000101") == []


def test_the_latest_offer_is_the_one_accepted(store):
    store.offer(OPENID_A, "NC2025000101", "accepted")
    store.offer(OPENID_A, "NC2025000102", "submitted")
    assert store.accept(OPENID_A) == "NC2025000102"
    assert store.subscribers("NC2025000101") == []


def test_subscriptions_expire_after_ninety_days_and_are_purged(store, clock):
    store.offer(OPENID_A, "NC2025000101", "accepted")
    store.accept(OPENID_A)
    clock.now += SUBSCRIPTION_SECONDS + 1
    assert store.subscribers("NC2025000101") == []
    assert store.purge() >= 1
    assert store.subscriptions_of(OPENID_A) == []


def test_cancel_ends_every_subscription_of_the_user_only(store):
    for number in ("NC2025000101", "NC2025000102"):
        store.offer(OPENID_A, number, "accepted")
        store.accept(OPENID_A)
    store.offer(OPENID_B, "NC2025000101", "accepted")
    store.accept(OPENID_B)
    assert store.cancel(OPENID_A) == 2
    assert store.cancel(OPENID_A) == 0
    assert [s.openid for s in store.subscribers("NC2025000101")] == [OPENID_B]


def test_a_change_is_claimed_once_even_by_racing_replicas(store, url, clock):
    store.offer(OPENID_A, "NC2025000101", "accepted")
    store.accept(OPENID_A)
    subscription = store.subscribers("NC2025000101")[0]
    other = SubscriptionStore(url, clock=clock)  # a second replica on the same database
    try:
        results = []

        def claim(on):
            results.append(on.claim(subscription, "approved", "2026-12-03 10:00:00+08:00"))

        threads = [threading.Thread(target=claim, args=(on,)) for on in (store, other) * 4]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results) == [False] * 7 + [True]
        # another change of the same subscription is a new claim
        assert store.claim(subscription, "approved", "2026-12-04 10:00:00+08:00")
        # a released claim (nothing went out) may be claimed again
        store.release(subscription, "approved", "2026-12-04 10:00:00+08:00")
        assert other.claim(subscription, "approved", "2026-12-04 10:00:00+08:00")
    finally:
        other.close()


def test_settling_records_the_outcome_and_the_last_told_status(store):
    store.offer(OPENID_A, "NC2025000101", "accepted")
    store.accept(OPENID_A)
    subscription = store.subscribers("NC2025000101")[0]
    assert store.claim(subscription, "need_more", "t1")
    store.settle(subscription, "need_more", "t1", "sent")
    assert store.outcomes("NC2025000101") == ["sent"]
    assert store.subscribers("NC2025000101")[0].status == "need_more"
    store.drop(OPENID_A, "NC2025000101")
    assert store.subscribers("NC2025000101") == []


def test_the_sqlite_file_is_private(tmp_path):
    path = tmp_path / "state" / "subscriptions.db"
    SubscriptionStore(f"sqlite:///{path}").close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


# --- the signed event -----------------------------------------------------------------------
SECRET = "events-secret-for-tests"
NOW = 1_800_000_000.0


def signed(body: bytes, secret: str = SECRET, now: float = NOW):
    headers = status_events.signed_headers(secret, body, now)
    return headers[status_events.TIMESTAMP_HEADER], headers[status_events.SIGNATURE_HEADER]


def test_a_signed_event_verifies_and_parses():
    body = status_events.event_body("NC2025000101", "approved", "2026-12-03 10:00:00+08:00")
    timestamp, signature = signed(body)
    assert status_events.verify(SECRET, timestamp, signature, body, NOW + 10)
    event = status_events.parse_event(body)
    assert (event.application_no, event.status) == ("NC2025000101", "approved")


@pytest.mark.parametrize("case", ["wrong_secret", "other_body", "old", "future", "no_secret",
                                  "missing", "garbage_timestamp", "garbage_signature",
                                  "non_ascii"])
def test_anything_else_does_not_verify(case):
    body = status_events.event_body("NC2025000101", "approved", "t")
    timestamp, signature = signed(body)
    secret, now = SECRET, NOW
    if case == "wrong_secret":
        timestamp, signature = signed(body, secret="another")
    elif case == "other_body":
        body = status_events.event_body("NC2025000102", "approved", "t")
    elif case == "old":
        now = NOW + status_events.TOLERANCE_SECONDS + 1
    elif case == "future":
        now = NOW - status_events.TOLERANCE_SECONDS - 1
    elif case == "no_secret":
        secret = ""
    elif case == "missing":
        timestamp = None
    elif case == "garbage_timestamp":
        timestamp = "1e9"
    elif case == "garbage_signature":
        signature = "zz" * 32
    elif case == "non_ascii":
        signature = "é" * 64
    assert not status_events.verify(secret, timestamp, signature, body, now)


@pytest.mark.parametrize("body", [
    b"", b"[]", b"\xff\xfe", b"{" * 5000,
    json.dumps({"application_no": "nc 1", "status": "approved", "status_updated_at": "t"}).encode(),
    json.dumps({"application_no": "NC2025000101", "status": "lost", "status_updated_at": "t"}).encode(),
    json.dumps({"application_no": "NC2025000101", "status": "approved"}).encode(),
    json.dumps({"application_no": "NC2025000101", "status": "approved",
                "status_updated_at": "t" * 65}).encode(),
])
def test_a_body_that_is_no_event_is_refused(body):
    assert status_events.parse_event(body) is None

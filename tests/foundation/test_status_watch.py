"""The widget's status watches (core/status_subscriptions.py `start_watch`,
`record_status`, `watch_changes`, `forget_watches`) on SQLite and PostgreSQL, and the web
channel's parsing of a returning visitor's tokens. Issue 19, docs/web.md "Status changes"."""
import asyncio
import hashlib

import pytest
import sqlalchemy as sa

from channels.web import WebOutputChannel, parse_status_changes, status_change_line
from core.status_subscriptions import (
    OFFER_SECONDS, SUBSCRIPTION_SECONDS, WATCH_KEY, WATCH_OFFER,
    sane_watch_token, watches_table,
)
from tests.foundation.status_store_support import clock, store, url  # noqa: F401 (fixtures)

SENDER_A, SENDER_B = "web-0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9", "web-1f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
NUMBER = "NC2025000104"


def watch(store, sender=SENDER_A, number=NUMBER, status="accepted"):
    store.offer(sender, number, status)
    token = store.start_watch(sender)
    assert sane_watch_token(token)
    return token


def test_an_offer_becomes_one_watch_with_a_random_token(store):
    assert store.start_watch(SENDER_A) is None  # nothing offered
    first = watch(store)
    assert store.start_watch(SENDER_A) is None  # the offer is used up
    second = watch(store)
    assert first != second
    # only the hash is stored, never the token
    with store.engine.connect() as db:
        rows = db.execute(sa.select(watches_table)).fetchall()
    assert {row.token_hash for row in rows} == {
        hashlib.sha256(token.encode()).hexdigest() for token in (first, second)}
    assert all(first not in str(tuple(row)) for row in rows)


def test_a_change_is_told_once_and_only_to_the_watchers_of_its_number(store):
    token = watch(store)
    other = watch(store, SENDER_B, "NC2025000101", "accepted")
    assert store.watch_changes([token, other]) == ([], [])  # nothing changed yet
    assert store.record_status(NUMBER, "expert_review") == 1
    changes, forget = store.watch_changes([token, other])
    assert [(c.token, c.application_no, c.status) for c in changes] == [
        (token, NUMBER, "expert_review")]
    assert forget == []
    assert store.watch_changes([token, other]) == ([], [])  # seen: not again
    store.record_status(NUMBER, "need_more")
    store.record_status(NUMBER, "expert_review")
    # back to what the visitor saw: nothing to tell
    assert store.watch_changes([token]) == ([], [])


def test_a_final_status_is_told_then_the_watch_ends(store):
    token = watch(store)
    store.record_status(NUMBER, "approved")
    changes, forget = store.watch_changes([token])
    assert [c.status for c in changes] == ["approved"] and forget == [token]
    assert store.watch_changes([token]) == ([], [token])
    assert store.record_status(NUMBER, "rejected") == 0


def test_unknown_expired_and_cancelled_tokens_are_to_be_forgotten(store, clock):
    stranger = "A" * 32
    assert store.watch_changes([stranger]) == ([], [stranger])
    old = watch(store)
    clock.now += SUBSCRIPTION_SECONDS + 1
    store.record_status(NUMBER, "approved")
    assert store.watch_changes([old]) == ([], [old])
    assert store.purge() >= 1
    kept = watch(store)
    assert store.forget_watches([kept, stranger]) == 1
    assert store.watch_changes([kept]) == ([], [kept])


def test_an_offer_older_than_its_time_gives_no_watch(store, clock):
    store.offer(SENDER_A, NUMBER, "accepted")
    clock.now += OFFER_SECONDS + 1
    assert store.start_watch(SENDER_A) is None


@pytest.mark.parametrize("body", [
    None, [], "x", {"tokens": "A" * 32}, {"tokens": ["A" * 32] * 4}, {"tokens": ["short"]},
    {"tokens": ["A" * 65]}, {"tokens": ["A" * 31 + "!"]}, {"tokens": ["Ä" * 32]},
    {"tokens": [1234567890123456]}, {"tokens": [None]}, {"tokens": ["A" * 32], "cancel": "yes"},
])
def test_garbage_is_refused(body):
    parsed, reason = parse_status_changes(body)
    assert parsed is None and reason


def test_tokens_are_taken_as_sent():
    token = "Ab-_" * 8
    assert parse_status_changes({"tokens": [token, token]}) == (
        {"tokens": [token], "cancel": False}, None)
    assert parse_status_changes({"tokens": [], "cancel": True})[0] == {"tokens": [], "cancel": True}


def test_the_line_names_only_the_masked_number_and_the_status():
    line = status_change_line(NUMBER, "expert_review")
    assert NUMBER not in line and "专家" in line and "查进度" in line and len(line) <= 120


def test_the_output_channel_swaps_the_marker_for_a_token_and_leaves_the_event_alone(store):
    async def opened():
        return store

    async def run():
        marker = {WATCH_KEY: WATCH_OFFER}  # as Rasa passes it: the tracker event's own dict
        store.offer(SENDER_A, NUMBER, "accepted")
        channel = WebOutputChannel(opened)
        await channel.send_custom_json(SENDER_A, marker)
        assert marker == {WATCH_KEY: WATCH_OFFER}
        [message] = channel.messages
        token = message["custom"][WATCH_KEY]["token"]
        assert sane_watch_token(token) and set(message["custom"][WATCH_KEY]) == {"token"}
        # no fresh offer (used up), or not a widget session: nothing at all
        await channel.send_custom_json(SENDER_A, dict(marker))
        store.offer("agent-console-0123456789abcdef", NUMBER, "accepted")
        await channel.send_custom_json("agent-console-0123456789abcdef", dict(marker))
        assert len(channel.messages) == 1
        # any other custom message passes as before
        await channel.send_custom_json(SENDER_A, {"other": 1})
        assert channel.messages[-1]["custom"] == {"other": 1}
        return token

    token = asyncio.run(run())
    store.record_status(NUMBER, "need_more")
    assert [c.status for c in store.watch_changes([token])[0]] == ["need_more"]

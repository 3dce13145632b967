"""The lockout under attack, through the running progress service (SQLite and PostgreSQL):
parallel bursts cannot pass the limit, a stranger cannot lock the owner out, and any
header value gets 401, never 500 (issue 16)."""
import concurrent.futures
import datetime as dt
import random
import threading

import pytest
import sqlalchemy as sa

from progress_helpers import EXAMPLE_CSV, run_import
from core.agent_tokens import issue_agent_token
from progress_service import db
from progress_service.db import make_engine
from progress_service.store import ProgressStore, Record
from tests.support import raw_header_request

NUMBER = "NC2025000104"  # need_more, suffix 1357
PATH = f"/api/v1/applications/{NUMBER}"
BURST = 40


@pytest.fixture
def service(database_url, start_service, service_secrets):
    done = run_import(EXAMPLE_CSV, database_url, service_secrets)
    assert done.returncode == 0, done.stderr
    return start_service(database_url, PROGRESS_LOCKOUT_WINDOW_SECONDS=600)


def public(service, suffix, sender):
    return {"X-API-Key": service.secrets["PROGRESS_API_KEY"], "X-Id-Last4": suffix, "X-Sender": sender}


def burst(service, suffixes, sender):
    """All requests at once (released together by a barrier); their status codes."""
    barrier = threading.Barrier(len(suffixes))

    def one(suffix):
        barrier.wait()
        return service.request("GET", PATH, public(service, suffix, sender))[0]

    with concurrent.futures.ThreadPoolExecutor(len(suffixes)) as pool:
        return list(pool.map(one, suffixes))


def test_a_parallel_burst_is_evaluated_exactly_five_times_and_then_never_answers(service):
    statuses = burst(service, [f"{n:04d}" for n in range(2000, 2000 + BURST)], "attacker")
    assert statuses.count(404) == 5, statuses  # evaluated: the limit, not one more
    assert statuses.count(429) == BURST - 5, statuses
    # the right suffix inside a later burst: still refused, the record never comes back
    suffixes = [f"{n:04d}" for n in range(3000, 3000 + BURST - 4)] + ["1357"] * 4
    random.Random(16).shuffle(suffixes)
    statuses = burst(service, suffixes, "attacker")
    assert set(statuses) == {429}, statuses


def test_a_strangers_failures_do_not_lock_the_owner_out(service):
    assert service.request("GET", PATH, public(service, "1357", "owner"))[0] == 200
    for attempt in range(5):
        assert service.request("GET", PATH, public(service, f"000{attempt}", "stranger"))[0] == 404
    assert service.request("GET", PATH, public(service, "1357", "stranger"))[0] == 429
    status, body, _ = service.request("GET", PATH, public(service, "1357", "owner"))
    assert status == 200 and body["status"] == "need_more"
    # someone asking for the first time is not affected by the stranger either
    assert service.request("GET", PATH, public(service, "1357", "owner-on-a-new-phone"))[0] == 200


def test_many_strangers_step_the_number_up_for_new_identities_only(service):
    assert service.request("GET", PATH, public(service, "1357", "owner"))[0] == 200
    # 20 identities (PROGRESS_LOCKOUT_NUMBER_MAX_FAILURES: 4 x 5), one guess each
    statuses = [service.request("GET", PATH, public(service, "9999", f"bot-{n}"))[0] for n in range(24)]
    assert statuses == [404] * 20 + [429] * 4
    # a new identity, even with the right suffix, must wait; the owner, who proved it, goes on
    assert service.request("GET", PATH, public(service, "1357", "new-identity"))[0] == 429
    status, body, _ = service.request("GET", PATH, public(service, "1357", "owner"))
    assert status == 200 and body["status"] == "need_more"
    # and the step-up is logged (masked), once
    log = service.log()
    assert log.count("step-up") == 1 and NUMBER not in log


def raw_get(service, path, headers, method="GET", body=b""):
    """A request with header values as raw bytes (non-ASCII, undecodable)."""
    return raw_header_request(service.port, method, path, headers, body, timeout=10)[0]


@pytest.mark.parametrize("value", ["é".encode("utf-8"), b"\xff\xfe", "钥匙".encode("utf-8"), b"k\x80ey"])
def test_non_ascii_secrets_in_headers_are_refused_not_a_server_error(service, value):
    key = service.secrets["PROGRESS_API_KEY"].encode("ascii")
    assert raw_get(service, PATH, {"X-API-Key": value, "X-Id-Last4": b"1357"}) == 401
    token = issue_agent_token("li", service.secrets["PROGRESS_AGENT_SECRET"]).encode("ascii")
    for forged in (value, token[:-2] + value, b"v1." + value + b".1.abc"):
        assert raw_get(service, PATH, {"X-API-Key": key, "X-Agent-Token": forged}) == 401
    assert raw_get(service, PATH, {"X-API-Key": key, "X-Id-Last4": b"0000", "X-Sender": value}) == 404
    assert raw_get(service, PATH + "/status", {"X-API-Key": value}, "POST", b'{"status": "approved"}') == 401
    assert raw_get(service, PATH, {"X-API-Key": key, "X-Id-Last4": value}) == 400
    assert "internal error" not in service.log()


def test_a_match_gives_its_reservations_back_and_old_windows_are_cleaned_up(database_url):
    """The store on its own, with a clock: only failures count, and counters of windows
    that are over do not pile up."""
    now = [1000.0]
    engine = make_engine(database_url)
    store = ProgressStore(engine, "k", window_seconds=60, clock=lambda: now[0])
    store.upsert(Record(NUMBER, "accepted", dt.datetime(2025, 3, 2, 10), id_last4="1357",
                        applicant_name="王芳", submitted_at=dt.datetime(2025, 3, 1, 9)))
    for _ in range(20):  # many right answers never lock anyone
        assert store.lookup_public(NUMBER, "1357", "owner").kind == "found"
    for _ in range(4):
        assert store.lookup_public(NUMBER, "0000", "owner").kind == "no_match"
    assert store.lookup_public(NUMBER, "1357", "owner").kind == "found"  # clears its 4 failures
    assert [store.lookup_public(NUMBER, "0000", "owner").kind for _ in range(6)] == ["no_match"] * 5 + ["locked"]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(db.lockout_counters)).scalar() == 3
    now[0] += 3600  # the window is long over: the next failure cleans up
    assert store.lookup_public("NC2099000001", "0000", "someone").kind == "no_match"
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(db.lockout_counters)).scalar() == 3
        assert conn.execute(sa.select(sa.func.count()).select_from(db.trusted_identities)).scalar() == 1
    engine.dispose()

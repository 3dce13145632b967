"""Retention of the console's audit rows (AUDIT_RETENTION_DAYS, core/retention.py) and of
expired conversation codes, applied by `make purge-conversations`
(tools/purge_conversations.py), on SQLite and PostgreSQL (a schema of its own, dropped
afterwards; unreachable: skipped locally, a failure under CI=true).
"""
import contextlib
import time

import pytest
import sqlalchemy as sa

from core import retention
from core.conversation_codes import CodeStore
from core.status_subscriptions import SubscriptionStore
from tests.support import postgres_schema
from tools import purge_conversations
from web.agents import AgentStore

DAY = 86400


@contextlib.contextmanager
def database(kind, tmp_path):
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'state' / 'agents.db'}", f"sqlite:///{tmp_path / 'state' / 'codes.db'}"
    else:
        with postgres_schema("audit_retention") as url:
            yield url, url  # the cluster's layout: one database


@pytest.fixture(params=["sqlite", "postgresql"])
def urls(request, tmp_path):
    with database(request.param, tmp_path) as found:
        yield found


def audit_ages(url):
    engine = sa.create_engine(url, future=True)
    try:
        with engine.connect() as db:
            rows = db.execute(sa.text("select at, kind from audit order by at")).fetchall()
    finally:
        engine.dispose()
    now = time.time()
    return [(round((now - at) / DAY), kind) for at, kind in rows]


def test_audit_rows_older_than_the_period_are_deleted_and_the_rest_kept(urls, tmp_path, capsys):
    console_url, codes_url = urls
    now = time.time()
    for age_days, kind in ((400, "application"), (185, "conversation"), (183, "question"), (2, "application")):
        store = AgentStore(console_url, clock=lambda age=age_days: now - age * DAY)
        store.audit("li", kind, "NC********01", "found")
        store.close()
    fresh = CodeStore(codes_url, key="k")
    fresh_code = fresh.issue("web-new").code
    fresh.close()
    old_codes = CodeStore(codes_url, key="k", clock=lambda: now - 3 * DAY)  # expired 2 days ago
    old_codes.issue("web-old")
    old_codes.close()
    env = {"AGENT_DATABASE_URL": console_url, "CONVERSATION_CODES_DATABASE_URL": codes_url,
           "STATUS_SUBSCRIPTIONS_DATABASE_URL": f"sqlite:///{tmp_path / 'status.db'}"}

    assert purge_conversations.main(["--no-conversations"], environ=env) == 0
    out = capsys.readouterr().out
    assert "audit retention 184 days: deleted 2 console audit rows; 1 expired conversation codes" in out, out
    assert audit_ages(console_url) == [(183, "question"), (2, "application")]
    store = CodeStore(codes_url)
    assert store.find(fresh_code) is not None
    store.close()

    # a shorter period from the environment; a second run finds nothing more
    assert purge_conversations.main(["--no-conversations"], environ={**env, "AUDIT_RETENTION_DAYS": "30"}) == 0
    assert audit_ages(console_url) == [(2, "application")]
    assert purge_conversations.main(["--no-conversations"], environ={**env, "AUDIT_RETENTION_DAYS": "30"}) == 0
    assert "deleted 0 console audit rows" in capsys.readouterr().out


def test_expired_status_subscriptions_go_with_the_same_job(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'status.db'}"
    now = time.time()
    for age_days, openid in ((100, "oOLD"), (1, "oNEW")):  # subscriptions last 90 days
        store = SubscriptionStore(url, clock=lambda age=age_days: now - age * DAY)
        store.offer(openid, "NC2025000104", "accepted")
        assert store.accept(openid) is not None
        store.close()
    env = {"AGENT_DATABASE_URL": f"sqlite:///{tmp_path / 'agents.db'}",
           "CONVERSATION_CODES_DATABASE_URL": f"sqlite:///{tmp_path / 'codes.db'}",
           "STATUS_SUBSCRIPTIONS_DATABASE_URL": url}
    assert purge_conversations.main(["--no-conversations"], environ=env) == 0
    assert "expired status subscriptions" in capsys.readouterr().out
    engine = sa.create_engine(url, future=True)
    try:
        with engine.connect() as db:  # the row itself is gone, not only out of date
            left = db.execute(sa.text("select openid from status_subscriptions")).scalars().all()
    finally:
        engine.dispose()
    assert left == ["oNEW"]


@pytest.mark.parametrize("bad", ["0", "-5", "abc", "inf"])
def test_a_bad_period_stops_the_job_before_it_deletes_anything(tmp_path, bad, capsys):
    url = f"sqlite:///{tmp_path / 'agents.db'}"
    store = AgentStore(url, clock=lambda: time.time() - 1000 * DAY)
    store.audit("li", "question", "", "knowledge")
    store.close()
    env = {"AGENT_DATABASE_URL": url, "AUDIT_RETENTION_DAYS": bad,
           "CONVERSATION_CODES_DATABASE_URL": f"sqlite:///{tmp_path / 'codes.db'}"}
    assert purge_conversations.main(["--no-conversations"], environ=env) == 2
    assert "AUDIT_RETENTION_DAYS" in capsys.readouterr().err
    assert len(audit_ages(url)) == 1


def test_missing_databases_are_not_created(tmp_path, capsys):
    env = {"AGENT_DB": str(tmp_path / "none" / "agents.db"),
           "CONVERSATION_CODES_DATABASE_URL": f"sqlite:///{tmp_path / 'none' / 'codes.db'}"}
    assert purge_conversations.main(["--no-conversations"], environ=env) == 0
    assert "no console database; no code database" in capsys.readouterr().out
    assert not (tmp_path / "none" / "agents.db").exists() and not (tmp_path / "none" / "codes.db").exists()


def test_the_conversation_and_audit_parts_run_in_one_job(tmp_path, capsys):
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text("tracker_store:\n  type: channels.tracker_store.PrivateSQLTrackerStore\n"
                         f"  dialect: sqlite\n  db: {tmp_path / 'tracker.db'}\n", encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'agents.db'}"
    store = AgentStore(url, clock=lambda: time.time() - 200 * DAY)
    store.audit("li", "question", "", "knowledge")
    store.close()
    env = {"AGENT_DATABASE_URL": url, "CONVERSATION_CODES_DATABASE_URL": f"sqlite:///{tmp_path / 'codes.db'}"}
    assert purge_conversations.main(["--endpoints", str(endpoints)], environ=env) == 0
    out = capsys.readouterr().out
    assert "retention 30 days: deleted 0 events" in out and "deleted 1 console audit rows" in out
    assert purge_conversations.main(["--endpoints", str(endpoints), "--no-audit"], environ=env) == 0
    assert "audit" not in capsys.readouterr().out


def test_the_default_period_is_six_months_at_least():
    assert retention.audit_retention_days({}) == retention.DEFAULT_AUDIT_DAYS == 184
    assert retention.audit_retention_days({"AUDIT_RETENTION_DAYS": "1"}) == 1

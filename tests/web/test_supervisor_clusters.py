"""The supervisor page's parts without the stack (issue 19): clustering of unanswered
questions (core/unanswered_clusters.py), the read-only tracker reader (core/tracker_reader.py)
on SQLite and PostgreSQL, the period, and the agents' role column on old databases."""
import asyncio
import contextlib
import datetime as dt
import os
import random
import sqlite3
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa
import yaml
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, SlotSet, UserUttered

from channels.tracker_store import PrivateSQLTrackerStore
from core.formats import CHINA_TZ
from core.tracker_reader import StoreConfigError, TrackerReader, url_from_endpoints
from core.unanswered import (ASKED_HUMAN, CLARIFICATION, HANDOFF, THUMBS_DOWN, Row, candidate_clusters,
                             candidates_document, unanswered_rows)
from core.unanswered_clusters import (CANDIDATES_HEADER, candidates_yaml, group_questions, read_rows,
                                      selected_candidates, weeks_between)
from tests.conftest import ROOT, make_settings
from tests.support import postgres_schema
from tools.cluster import ClusterSettings, build_cluster
from tools.stack import build_services
from web.agents import AGENT, SUPERVISOR, AccountError, AgentStore
from web.config import WebConfig
from web.supervisor import PeriodError, parse_period, period_bounds

# 2026-11-03 10:00 Asia/Shanghai: a Tuesday of ISO week 45
T0 = dt.datetime(2026, 11, 3, 10, 0, tzinfo=CHINA_TZ).timestamp()
WEEK = 7 * 86400


def row(text, outcome=CLARIFICATION, at=T0, guess="ask_materials", conversation="c1"):
    return Row(timestamp=at, conversation=conversation, channel="web", text=text,
               intents=[(guess, 0.4)] if guess else [], outcome=outcome, next_intent="left")


SAMPLE = [
    row("那个东西是啥"), row("那個東西是什麼？", at=T0 + WEEK), row("那个东西是什么", outcome=HANDOFF),
    row("那个东西是啥", outcome=f"{CLARIFICATION}+{THUMBS_DOWN}", at=T0 + WEEK),
    row("异地就医怎么备案", guess="ask_remote"), row("异地就医怎么备案啊", outcome=THUMBS_DOWN, guess="ask_remote"),
    row("qwerty asdf", guess="ask_channel"),
    row("转人工", outcome=ASKED_HUMAN, guess="ask_human"),     # understood: not a candidate
    row("/ask_materials", guess="ask_materials"),            # a button press
    row("［已隐去］", guess="check_progress"),                 # a redacted lookup
    row("？？？", outcome=HANDOFF, guess=""),                   # no words
]


def partition(clusters):
    return sorted(sorted(q.key for q in cluster.questions) for cluster in clusters)


def test_similar_questions_group_and_different_ones_do_not():
    grouping = group_questions(SAMPLE)
    assert partition(grouping.clusters) == [["qwertyasdf"], ["异地就医怎么备案", "异地就医怎么备案啊"],
                                            ["那个东西是什么", "那个东西是啥"]]
    first = grouping.clusters[0]  # largest first
    assert first.count == 4 and [q.key for q in first.questions] == ["那个东西是什么", "那个东西是啥"]
    assert first.questions[0].texts == {"那個東西是什麼？": 1, "那个东西是什么": 1}
    assert first.weeks == {"2026-W45": 2, "2026-W46": 2}
    assert first.outcomes == {CLARIFICATION: 3, HANDOFF: 1, THUMBS_DOWN: 1}
    assert first.top_guess == "ask_materials"
    assert [cluster.count for cluster in grouping.clusters] == [4, 2, 1] and grouping.left_out == 0


def test_the_clustering_is_deterministic_and_the_candidates_files():
    shuffled = list(SAMPLE)
    random.Random(7).shuffle(shuffled)
    once, again = group_questions(SAMPLE), group_questions(shuffled)
    assert [(c.id, c.count, [q.key for q in c.questions]) for c in once.clusters] == [
        (c.id, c.count, [q.key for q in c.questions]) for c in again.clusters]
    # the same groups as `make report-unanswered CANDIDATES=1` (core.unanswered.candidate_clusters)
    assert candidates_document(selected_candidates(once.clusters)) == candidates_document(candidate_clusters(SAMPLE))


def test_single_link_chains_and_a_cap_on_questions():
    rows = [row("abcdefgh"), row("abcdefxy"), row("cdefxyzw"), row("完全不同的问题")]
    grouping = group_questions(rows)
    # abcdefgh ~ abcdefxy (5 of 9 bigrams) ~ cdefxyzw (5 of 9), though abcdefgh and
    # cdefxyzw share only 3 of 11: single link makes one cluster of the chain
    assert partition(grouping.clusters) == [["abcdefgh", "abcdefxy", "cdefxyzw"], ["完全不同的问题"]]
    capped = group_questions(rows + [row("abcdefgh")], max_questions=2)
    assert sum(cluster.count for cluster in capped.clusters) == 3 and capped.left_out == 2


def test_export_of_selected_questions_is_the_candidates_yaml():
    grouping = group_questions(SAMPLE)
    text = candidates_yaml(selected_candidates(grouping.clusters, {"那个东西是啥", "qwertyasdf"}))
    assert text.startswith(CANDIDATES_HEADER)
    document = yaml.safe_load(text)
    assert document["version"] == "3.1"
    assert [(item["intent"], item["metadata"]["count"]) for item in document["nlu"]] == [
        ("TO_REVIEW_ask_materials", 2), ("TO_REVIEW_ask_channel", 1)]
    assert document["nlu"][0]["examples"] == "- 那个东西是啥\n"  # only the selected question
    assert document["nlu"][0]["metadata"]["weeks"] == {"2026-W45": 1, "2026-W46": 1}
    assert "|" in text.split("examples:")[1].splitlines()[0]  # Rasa's literal block
    assert selected_candidates(grouping.clusters, set()) == []


def test_the_period_defaults_to_four_weeks_and_refuses_nonsense():
    today = dt.date(2026, 12, 3)
    assert parse_period(None, None, today) == (dt.date(2026, 11, 6), today)
    assert parse_period("2026-11-01", "2026-11-30", today) == (dt.date(2026, 11, 1), dt.date(2026, 11, 30))
    for since, until in [("2026-12-04", "2026-12-03"), ("x", None), (5, None), ("2024-01-01", "2026-01-01"),
                         ("2026-11-01T00:00:00", None), (None, "2026-02-30")]:
        with pytest.raises(PeriodError):
            parse_period(since, until, today)
    since, until = period_bounds(dt.date(2026, 11, 1), dt.date(2026, 11, 30))
    assert until - since == 30 * 86400
    assert weeks_between(since, until) == ["2026-W44", "2026-W45", "2026-W46", "2026-W47", "2026-W48", "2026-W49"]


# --- the reader: what PrivateSQLTrackerStore wrote, without Rasa ----------------------------
@pytest.fixture(scope="module")
def domain():
    return Domain.load(str(ROOT / "domain"))


def user(text, at, intent="nlu_fallback"):
    ranking = [{"name": "nlu_fallback", "confidence": 0.5}, {"name": "ask_materials", "confidence": 0.3},
               {"name": "ask_channel", "confidence": 0.2}]
    parse = {"intent": {"name": intent, "confidence": 0.5}, "entities": [], "text": text, "intent_ranking": ranking}
    return UserUttered(text, parse["intent"], [], parse, timestamp=at, input_channel="rest")


def clarified(text, at):
    return [user(text, at), ActionExecuted("action_fallback_ladder", timestamp=at),
            BotUttered("您是想问“要带什么材料”，还是“在哪里办”？", timestamp=at),
            SlotSet("fallback_stage", "asked", timestamp=at), ActionExecuted("action_listen", timestamp=at)]


def save(store, sender, events, domain):
    async def go():
        tracker = await store.retrieve(sender) or store.init_tracker(sender)
        tracker.update_with_events(events, domain, override_timestamp=False)
        await store.save(tracker)
    asyncio.run(go())


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_the_reader_reads_what_the_store_wrote(dialect, domain, tmp_path):
    with postgres_schema("supervisor_reader") if dialect == "postgresql" else contextlib.nullcontext() as url:
        if dialect == "sqlite":
            path = tmp_path / ".state" / "rasa-tracker.db"
            options, text = {"dialect": "sqlite", "db": str(path)}, f"  dialect: sqlite\n  db: {path}\n"
        else:
            options, text = {"dialect": "postgresql", "host": url}, f"  dialect: postgresql\n  url: \"{url}\"\n"
        store = PrivateSQLTrackerStore(domain=domain, purge_in_background=False, **options)
        now = time.time()
        start = [ActionExecuted("action_session_start", timestamp=now - 60), SessionStarted(timestamp=now - 60),
                 ActionExecuted("action_listen", timestamp=now - 60)]
        save(store, "visitor-1", start + clarified("那个东西是啥", now - 50), domain)
        save(store, "visitor-2", start + clarified("那個東西是什麼", now - 40), domain)
        endpoints = tmp_path / "endpoints.yml"
        endpoints.write_text("tracker_store:\n  type: channels.tracker_store.PrivateSQLTrackerStore\n" + text,
                             encoding="utf-8")
        reader = TrackerReader.from_endpoints(endpoints)
        try:
            assert reader.conversations_since(now - 3600) == store.conversations_since(now - 3600)
            assert reader.conversation_events("visitor-1") == store.conversation_events("visitor-1")
            rows = read_rows(reader, now - 3600, None)
            assert [(r.text, r.outcome) for r in rows] == [("那个东西是啥", CLARIFICATION), ("那個東西是什麼", CLARIFICATION)]
            assert [r.text for r in rows] == [
                r.text for s in store.conversations_since(now - 3600)
                for r in unanswered_rows(s, store.conversation_events(s), now - 3600)]
            assert len(group_questions(rows).clusters) == 1
        finally:
            reader.close()
            store.close()


def test_the_reader_takes_the_endpoints_files_variables_and_creates_no_file(tmp_path):
    production = ROOT / "deploy" / "endpoints.production.yml"
    env = {"DB_HOST": "db.internal", "DB_PORT": "5433", "DB_USER": "rasa", "DB_PASSWORD": "p@ss",
           "DB_NAME": "mzmtb", "DB_LOGIN_DB": "postgres"}
    url = url_from_endpoints(production, env)
    assert (url.drivername, url.host, url.port, url.username, url.password, url.database) == (
        "postgresql", "db.internal", 5433, "rasa", "p@ss", "mzmtb")
    with pytest.raises(StoreConfigError):
        url_from_endpoints(production, {})
    other = tmp_path / "endpoints.yml"
    other.write_text("tracker_store:\n  type: mongod\n", encoding="utf-8")
    with pytest.raises(StoreConfigError):
        url_from_endpoints(other, {})
    missing = tmp_path / "none" / "rasa-tracker.db"
    other.write_text(f"tracker_store:\n  type: SQL\n  dialect: sqlite\n  db: {missing}\n", encoding="utf-8")
    reader = TrackerReader.from_endpoints(other)
    assert reader.conversations_since(0) == [] and reader.conversation_events("x") == []
    assert not missing.exists()
    assert str(url_from_endpoints(ROOT / "endpoints.yml", {})) == f"sqlite:///{os.path.abspath('.state/rasa-tracker.db')}"


# --- the role column -------------------------------------------------------------------------
OLD_SCHEMA = """
CREATE TABLE agents (username TEXT PRIMARY KEY, password_hash TEXT NOT NULL, created_at REAL NOT NULL);
INSERT INTO agents VALUES ('old_li', 'scrypt$1$1$1$AAAA$AAAA', 1.0);
"""


def test_an_old_sqlite_database_gets_the_role_column(tmp_path):
    path = tmp_path / "agents.db"
    with sqlite3.connect(str(path)) as db:
        db.executescript(OLD_SCHEMA)
    store = AgentStore(path)
    try:
        assert store.role("old_li") == AGENT and store.role("nobody") is None
        store.add_agent("boss", "long-secret-pass-1", role=SUPERVISOR)
        store.add_agent("boss", "long-secret-pass-2")  # a new password keeps the role
        assert store.role("boss") == SUPERVISOR
        store.add_agent("boss", "long-secret-pass-2", role=AGENT)
        assert store.role("boss") == AGENT
        with pytest.raises(AccountError):
            store.add_agent("boss", "long-secret-pass-2", role="admin")
    finally:
        store.close()
    AgentStore(path).close()  # a second start finds the column


def test_an_old_postgresql_database_gets_the_role_column():
    with postgres_schema("supervisor_roles") as url:
        engine = sa.create_engine(url, future=True)
        with engine.begin() as db:
            for statement in OLD_SCHEMA.strip().split(";\n"):
                db.execute(sa.text(statement.strip().rstrip(";")))
        engine.dispose()
        first, second = AgentStore(url), AgentStore(url)  # two replicas starting
        try:
            assert first.role("old_li") == AGENT
            first.add_agent("boss", "long-secret-pass-1", role=SUPERVISOR)
            assert second.role("boss") == SUPERVISOR
        finally:
            first.close()
            second.close()


def test_the_command_sets_the_role(tmp_path):
    db = tmp_path / "agents.db"
    env = dict(os.environ, PASSWORD="long-secret-pass-1", PYTHONPATH=str(ROOT))

    def run(*args):
        return subprocess.run([sys.executable, "-m", "web.agents", "--db", str(db), *args], cwd=ROOT, env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)

    assert run("add", "--role", "supervisor", "boss").returncode == 0
    assert run("add", "li").returncode == 0
    assert run("add", "--role", "admin", "wang").returncode == 2
    assert run("list").stdout.split("\n")[:2] == ["boss supervisor", "li"]


def test_every_web_process_is_told_the_store_rasa_uses(tmp_path):
    """make run: the endpoints file Rasa gets; make run-cluster: the production file, whose
    ${DB_*} the web replicas resolve from their own environment (PostgreSQL)."""
    settings = make_settings(tmp_path / "stack", tmp_path / "model.tar.gz")
    web = next(s for s in build_services(settings, {}) if s.name == "web")
    assert web.env["TRACKER_ENDPOINTS"] == str(settings.endpoints)
    assert WebConfig.from_env(web.env).tracker_endpoints == str(settings.endpoints)
    services, env = build_cluster(ClusterSettings(state_dir=tmp_path / "cluster"), {"DB_NAME": "mzmtb_x"})
    replicas = [s for s in services if s.name.startswith("web-")]
    assert len(replicas) == 2
    for replica in replicas:
        url = url_from_endpoints(replica.env["TRACKER_ENDPOINTS"], {**env, **replica.env})
        assert (url.drivername, url.database) == ("postgresql", "mzmtb_x")

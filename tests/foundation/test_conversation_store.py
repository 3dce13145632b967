"""channels/tracker_store.py: lookup credentials redacted at rest, retention, file modes.

Each store test runs on a real SQLite file and on the PostgreSQL at 127.0.0.1:5432
(database `test` as `postgres`, a schema of its own per test, dropped afterwards;
PROGRESS_TEST_PG_URL overrides the server). Conversations are fed turn by turn as Rasa
does (retrieve, append the turn's events, save), with the events Rasa writes for a
lookup; tests/progress/test_progress_at_rest.py does the same through the running stack.
"Nothing remains" is checked on the raw table: every text column and every string of the
JSON, decoded (tests/stored_conversations.py).
"""
import asyncio
import contextlib
import json
import os
import stat
import time
import uuid

import pytest
import sqlalchemy as sa
from rasa.core.tracker_store import TrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted, ActiveLoop, BotUttered, SessionStarted, SlotSet, UserUttered,
)
from rasa.utils.endpoints import read_endpoint_config

from channels import tracker_store as store_module
from channels.config import ConversationStoreSettings
from channels.tracker_store import PLACEHOLDER, PrivateSQLTrackerStore, redact_event, redaction_plan
from core.private_files import private_sqlite_file
from tests.conftest import ROOT
from tests.stored_conversations import still_stored, stored_texts
from tests.support import postgres_schema

NUMBER, SUFFIX = "NC2025000104", "1357"
DISEASE, NOTE, NAME = "尿毒症透析", "请补充近半年的完整病历和加盖医院公章的诊断证明书", "王*"
RESULT = (f"{NAME}的{DISEASE}申请：需补充材料（2025年3月9日 16:40更新）。\n"
          f"需要补充：{NOTE}。\n具体怎么补充，以通知和官方要求为准，可拨打 12393 咨询。")
SECRETS = [NUMBER, NUMBER[2:], SUFFIX, DISEASE, NOTE, "诊断证明书", "王*的"]


@pytest.fixture(scope="module")
def domain():
    return Domain.load(str(ROOT / "domain"))


@pytest.fixture(params=["sqlite", "postgresql"])
def make_store(request, tmp_path, domain):
    """Builds stores on one database (a fresh SQLite file or PostgreSQL schema)."""
    stores = []
    settings = ConversationStoreSettings(retention_days=30, abandoned_lookup_minutes=60,
                                         purge_interval_minutes=0)
    cleanup = contextlib.ExitStack()
    if request.param == "sqlite":
        path = tmp_path / ".state" / "rasa-tracker.db"
        options = {"dialect": "sqlite", "db": str(path)}
    else:
        options = {"dialect": "postgresql", "host": cleanup.enter_context(postgres_schema("tracker_test"))}

    def make(**overrides):
        store = PrivateSQLTrackerStore(domain=domain, settings=overrides.pop("settings", settings),
                                       purge_in_background=False, **{**options, **overrides})
        stores.append(store)
        return store

    make.kind = request.param
    yield make
    for store in stores:
        store.close()
    cleanup.close()


def run(coroutine):
    return asyncio.run(coroutine)


def raw_rows(store):
    """Every row of the table as the database holds it, and the stored text (see
    tests/stored_conversations.py: every text column and JSON string, decoded)."""
    with store.engine.connect() as connection:
        rows = connection.execute(sa.text("select * from events order by id")).fetchall()
    return rows, "\n".join(stored_texts(row._mapping for row in rows))


def assert_nothing_remains(store, secrets=SECRETS):
    rows, _ = raw_rows(store)
    found = still_stored((row._mapping for row in rows), secrets)
    assert not found, f"still stored: {found}"


# --- conversations as Rasa writes them -------------------------------------------------
def user(text, intent="nlu_fallback", number=None, at=None):
    entities = ([{"entity": "application_no", "start": text.index(number), "end": text.index(number) + len(number),
                  "value": number, "extractor": "RegexEntityExtractor"}] if number else [])
    parse_data = {"intent": {"name": intent, "confidence": 0.9}, "entities": entities, "text": text,
                  "message_id": uuid.uuid4().hex, "metadata": {}, "text_tokens": [[0, len(text)]],
                  "intent_ranking": [{"name": intent, "confidence": 0.9}]}
    return UserUttered(text, parse_data["intent"], entities, parse_data, timestamp=at,
                       input_channel="rest", metadata={"client": "c1"})


def session_start(at=None):
    return [ActionExecuted("action_session_start", timestamp=at), SessionStarted(timestamp=at),
            ActionExecuted("action_listen", timestamp=at)]


def ask_number_turn(text="帮我查NC2025000104的进度", number=NUMBER, at=None):
    """The first message: the form starts with the number and asks for the suffix."""
    return [user(text, "check_progress", number=number if number in text else None, at=at),
            ActionExecuted("progress_form", timestamp=at), ActiveLoop("progress_form", timestamp=at),
            SlotSet("application_no", number, timestamp=at), SlotSet("requested_slot", "id_last4", timestamp=at),
            BotUttered("请告诉我申请人身份证号码的最后4位（最后一位可能是X）。", timestamp=at),
            ActionExecuted("action_listen", timestamp=at)]


def suffix_turn(text=SUFFIX, suffix=SUFFIX, reply=RESULT, at=None):
    """The suffix: the form ends, the lookup runs, answers and clears the slots."""
    return [user(text, at=at), ActionExecuted("progress_form", timestamp=at),
            SlotSet("id_last4", suffix, timestamp=at), SlotSet("requested_slot", None, timestamp=at),
            ActiveLoop(None, timestamp=at), ActionExecuted("action_check_progress", timestamp=at),
            BotUttered(reply, timestamp=at), SlotSet("application_no", None, timestamp=at),
            SlotSet("id_last4", None, timestamp=at), SlotSet("lookup_attempts", 0, timestamp=at),
            ActionExecuted("action_listen", timestamp=at)]


def no_match_turn(text, suffix, at=None):
    """A wrong suffix: "没查到", and the form starts again from the number."""
    return [user(text, at=at), ActionExecuted("progress_form", timestamp=at),
            SlotSet("id_last4", suffix, timestamp=at), SlotSet("requested_slot", None, timestamp=at),
            ActiveLoop(None, timestamp=at), ActionExecuted("action_check_progress", timestamp=at),
            BotUttered("没查到这条申请。可能是编号或身份证后4位输错了一位。", timestamp=at),
            SlotSet("application_no", None, timestamp=at), SlotSet("id_last4", None, timestamp=at),
            SlotSet("lookup_attempts", 1, timestamp=at), ActionExecuted("progress_form", timestamp=at),
            ActiveLoop("progress_form", timestamp=at), SlotSet("requested_slot", "application_no", timestamp=at),
            BotUttered("请再发一次申请编号。", timestamp=at), ActionExecuted("action_listen", timestamp=at)]


def number_turn(text, number, at=None):
    """The number, typed when asked for it."""
    return [user(text, at=at), ActionExecuted("progress_form", timestamp=at),
            SlotSet("application_no", number, timestamp=at), SlotSet("requested_slot", "id_last4", timestamp=at),
            BotUttered("请告诉我申请人身份证号码的最后4位。", timestamp=at),
            ActionExecuted("action_listen", timestamp=at)]


def quit_turn(at=None):
    return [user("算了", "stop", at=at), ActionExecuted("action_deactivate_loop", timestamp=at),
            ActiveLoop(None, timestamp=at), SlotSet("requested_slot", None, timestamp=at),
            ActionExecuted("action_progress_stopped", timestamp=at), BotUttered("好的，不查了。", timestamp=at),
            SlotSet("application_no", None, timestamp=at), SlotSet("id_last4", None, timestamp=at),
            SlotSet("lookup_attempts", 0, timestamp=at), ActionExecuted("action_listen", timestamp=at)]


def question_turn(text="高血压能办吗", at=None):
    return [user(text, "ask_disease_coverage", at=at), ActionExecuted("action_answer", timestamp=at),
            BotUttered("高血压可以申请门诊慢特病。", timestamp=at), ActionExecuted("action_listen", timestamp=at)]


def turn(store, sender, events, domain):
    """One turn as Rasa's processor does it: retrieve (or create), append, save."""
    async def go():
        tracker = await store.retrieve(sender) or store.init_tracker(sender)
        tracker.update_with_events(events, domain, override_timestamp=False)
        await store.save(tracker)
        return await store.retrieve(sender)
    return run(go())


def stored_count(store, sender=None):
    with store.engine.connect() as connection:
        if sender is None:
            return connection.execute(sa.text("select count(*) from events")).scalar()
        return connection.execute(sa.text("select count(*) from events where sender_id = :s"),
                                  {"s": sender}).scalar()


# --- redaction --------------------------------------------------------------------------
def test_a_completed_lookup_leaves_no_credential_at_rest_and_the_form_works_mid_lookup(make_store, domain):
    store = make_store()
    first = turn(store, "u1", session_start() + ask_number_turn(), domain)
    # in flight: the number survives the turn boundary, the form is still asking
    assert first.active_loop_name == "progress_form"
    assert first.get_slot("application_no") == NUMBER
    assert first.get_slot("requested_slot") == "id_last4"
    _, text = raw_rows(store)
    assert NUMBER in text

    done = turn(store, "u1", suffix_turn(), domain)
    assert_nothing_remains(store)
    # the tracker still loads: same events, form over, slots cleared, intents kept
    assert done.active_loop_name is None
    assert done.get_slot("application_no") is None and done.get_slot("id_last4") is None
    assert len(run(store.retrieve_full_tracker("u1")).events) == stored_count(store, "u1")
    users = [event for event in done.events if isinstance(event, UserUttered)]
    assert [event.text for event in users] == [PLACEHOLDER, PLACEHOLDER]
    assert [event.intent_name for event in users] == ["check_progress", "nlu_fallback"]
    assert [event.entities[0]["value"] for event in users[:1]] == [PLACEHOLDER]
    bots = [event.text for event in done.events if isinstance(event, BotUttered)]
    assert bots == ["请告诉我申请人身份证号码的最后4位（最后一位可能是X）。", PLACEHOLDER]
    # stored rows say so; the slot events hold the placeholder, reading them gives "not set"
    rows, _ = raw_rows(store)
    slot_values = [json.loads(row.data)["value"] for row in rows
                   if row.type_name == "slot" and row.action_name in ("application_no", "id_last4")]
    assert slot_values == [PLACEHOLDER, PLACEHOLDER, None, None]  # set, set, cleared
    redacted = [json.loads(row.data) for row in rows if "redacted" in json.loads(row.data).get("metadata", {})]
    assert len(redacted) == 2 + 2 + 1  # two messages, two slot values, the result

    # the conversation goes on, appended after the redacted rows, and a new lookup works
    after = turn(store, "u1", question_turn(), domain)
    assert len(after.events) == len(done.events) + 4
    assert stored_count(store, "u1") == len(run(store.retrieve_full_tracker("u1")).events)
    assert after.latest_message.text == "高血压能办吗"
    again = turn(store, "u1", ask_number_turn("帮我查NC2025000102的进度", "NC2025000102"), domain)
    assert again.get_slot("application_no") == "NC2025000102"
    turn(store, "u1", suffix_turn("5678", "5678", "李*明的糖尿病申请：已受理"), domain)
    assert_nothing_remains(store, SECRETS + ["NC2025000102", "5678", "李*明", "糖尿病"])
    _, text = raw_rows(store)
    assert "高血压能办吗" in text  # what was not part of a lookup stays


def test_a_quit_lookup_is_redacted_and_the_quit_message_kept(make_store, domain):
    store = make_store()
    turn(store, "u2", session_start() + ask_number_turn(), domain)
    tracker = turn(store, "u2", quit_turn(), domain)
    assert_nothing_remains(store)
    assert tracker.active_loop_name is None and tracker.get_slot("application_no") is None
    assert "算了" in [event.text for event in tracker.events if isinstance(event, UserUttered)]


def test_a_failed_try_is_kept_while_the_form_asks_again_and_redacted_when_the_lookup_ends(make_store, domain):
    store = make_store()
    turn(store, "u3", session_start() + ask_number_turn(), domain)
    retry = turn(store, "u3", no_match_turn("2468", "2468"), domain)
    # the form asks again: still in flight, nothing redacted yet
    assert retry.active_loop_name == "progress_form"
    assert retry.get_slot("requested_slot") == "application_no"
    _, text = raw_rows(store)
    assert NUMBER in text and "2468" in text
    asked = turn(store, "u3", number_turn("编号是 nc-2025-000104", NUMBER), domain)
    assert asked.get_slot("application_no") == NUMBER
    # a masked full ID number as the answer: its last 4 are the suffix
    turn(store, "u3", suffix_turn("身份证是**************1357", SUFFIX), domain)
    assert_nothing_remains(store, SECRETS + ["2468", "nc-2025-000104", "**1357"])


def test_digits_typed_to_the_form_are_redacted_words_are_kept(make_store, domain):
    store = make_store()
    turn(store, "u4", session_start() + ask_number_turn("我想查一下申请进度", NUMBER)[:2]
         + [ActiveLoop("progress_form"), SlotSet("requested_slot", "application_no"),
            BotUttered("请发给我申请编号。"), ActionExecuted("action_listen")], domain)
    # a mobile number is no application number: the form keeps "-" and then nothing
    turn(store, "u4", [user("13812345678"), ActionExecuted("progress_form"),
                       SlotSet("application_no", None), BotUttered("没认出申请编号。"),
                       ActionExecuted("action_listen")], domain)
    turn(store, "u4", [user("要带哪些材料"), ActionExecuted("progress_form"), BotUttered("请发给我申请编号。"),
                       ActionExecuted("action_listen")], domain)
    turn(store, "u4", quit_turn(), domain)
    _, text = raw_rows(store)
    assert "13812345678" not in text
    assert "我想查一下申请进度" in text and "要带哪些材料" in text


def test_a_lookup_left_when_the_session_expired_is_redacted_by_the_next_session(make_store, domain):
    store = make_store()
    earlier = time.time() - 2 * 3600
    turn(store, "u5", session_start(earlier) + ask_number_turn(at=earlier), domain)
    tracker = turn(store, "u5", session_start() + question_turn(), domain)
    assert_nothing_remains(store)
    assert tracker.active_loop_name is None and tracker.get_slot("application_no") is None
    full = run(store.retrieve_full_tracker("u5"))
    assert len(full.events) == stored_count(store, "u5")


def test_an_abandoned_lookup_is_redacted_by_the_purge_once_the_session_would_have_expired(make_store, domain):
    store = make_store()
    now = time.time()
    turn(store, "u6", session_start(now - 30 * 60) + ask_number_turn(at=now - 30 * 60), domain)
    assert store.purge(now)["redacted_lookups"] == 0  # 30 minutes idle: the user may still answer
    _, text = raw_rows(store)
    assert NUMBER in text
    assert store.purge(now + 31 * 60)["redacted_lookups"] == 1
    assert_nothing_remains(store)
    assert store.purge(now + 62 * 60)["redacted_lookups"] == 0  # once
    tracker = run(store.retrieve("u6"))
    assert tracker.get_slot("application_no") is None
    assert len(run(store.retrieve_full_tracker("u6")).events) == stored_count(store, "u6")


def test_a_conversation_without_a_lookup_is_stored_exactly_as_rasa_stores_it(make_store, domain):
    store = make_store()
    tracker = turn(store, "u7", session_start() + question_turn() + question_turn("能不能帮别人办"), domain)
    rows, _ = raw_rows(store)
    full = run(store.retrieve_full_tracker("u7"))
    assert [json.loads(row.data) for row in rows] == [event.as_dict() for event in full.events]
    assert [event.as_dict() for event in tracker.events] == [event.as_dict() for event in full.events][1:]


def test_rows_that_do_not_match_the_tracker_are_redacted_from_their_own_content(make_store, domain):
    """If the stored session is not the tracker's events (rows changed behind Rasa's back),
    the positions cannot be trusted: the whole stored conversation is analysed instead."""
    store = make_store()
    tracker = turn(store, "u9", session_start() + ask_number_turn(), domain)
    shifted = [ActionExecuted("action_listen")] + list(tracker.events)  # every position off by one
    plan, _ = redaction_plan([event.as_dict() for event in tracker.events])
    with store.session_scope() as session:
        store._redact_stored_rows(session, "u9", shifted, [index + 1 for index in plan])
        session.commit()
    assert_nothing_remains(store, [NUMBER])


def test_reports_read_through_the_store_as_rasa_does(make_store, domain):
    """Issue 19's report reads stored conversations here: redacted, slots as Rasa reads them."""
    store = make_store()
    now = time.time()
    turn(store, "old", session_start(now - 3 * 86400) + question_turn(at=now - 3 * 86400), domain)
    turn(store, "r1", session_start() + ask_number_turn(), domain)
    turn(store, "r1", suffix_turn(), domain)
    assert store.conversations_since(now - 86400) == ["r1"]
    events = store.conversation_events("r1")
    assert len(events) == stored_count(store, "r1")
    assert [event["text"] for event in events if event["event"] == "user"] == [PLACEHOLDER, PLACEHOLDER]
    assert [event["value"] for event in events if event["event"] == "slot" and event["name"] == "id_last4"] == [None, None]
    assert not still_stored([{"data": json.dumps(event)} for event in events], SECRETS)


# --- retention --------------------------------------------------------------------------
def test_retention_deletes_old_conversations_and_ended_sessions_and_keeps_the_rest(make_store, domain):
    store = make_store()
    now = time.time()
    day = 86400
    old, straddling, recent = now - 40 * day, now - 31 * day, now - 29 * day
    turn(store, "old", session_start(old) + question_turn(at=old), domain)
    turn(store, "new", session_start(recent) + question_turn(at=recent), domain)
    # a returning sender: a session 40 days ago, one that began 31 days ago and went on
    # until 29 days ago, one today
    turn(store, "back", session_start(old) + question_turn(at=old), domain)
    turn(store, "back", session_start(straddling) + question_turn(at=straddling), domain)
    turn(store, "back", question_turn("那要什么材料", at=recent), domain)
    turn(store, "back", session_start(now) + question_turn("能不能帮别人办", at=now), domain)
    before = {sender: stored_count(store, sender) for sender in ("old", "new", "back")}

    result = store.purge(now)
    assert result["deleted_conversations"] == 1
    assert stored_count(store, "old") == 0
    assert stored_count(store, "new") == before["new"]
    assert stored_count(store, "back") == before["back"] - 7  # the first session only
    full = run(store.retrieve_full_tracker("back"))
    assert isinstance(full.events[1], SessionStarted) and full.events[1].timestamp == straddling
    assert run(store.retrieve("back")).latest_message.text == "能不能帮别人办"
    assert run(store.retrieve("old")) is None
    assert store.purge(now) == {"deleted_events": 0, "deleted_conversations": 0, "redacted_lookups": 0}
    # after the retention period of the last message, everything goes
    store.purge(now + 31 * day)
    assert stored_count(store) == 0


def test_the_purge_works_in_batches_and_misses_none(make_store, domain, monkeypatch):
    monkeypatch.setattr(store_module, "PURGE_BATCH", 2)
    store = make_store()
    now, day = time.time(), 86400
    old, straddling, recent = now - 40 * day, now - 31 * day, now - 29 * day
    for number in range(5):
        turn(store, f"old-{number}", session_start(old) + question_turn(at=old), domain)
        turn(store, f"back-{number}", session_start(old) + question_turn(at=old), domain)
        turn(store, f"back-{number}", session_start(straddling) + question_turn(at=recent), domain)
    kept = stored_count(store, "back-0") - 7

    result = store.purge(now)
    assert result["deleted_conversations"] == 5
    assert all(stored_count(store, f"old-{number}") == 0 for number in range(5))
    assert all(stored_count(store, f"back-{number}") == kept for number in range(5))


def test_the_retention_comes_from_the_environment(make_store, domain):
    store = make_store(settings=ConversationStoreSettings.from_env({"CONVERSATION_RETENTION_DAYS": "7"}))
    now = time.time()
    turn(store, "week", session_start(now - 8 * 86400) + question_turn(at=now - 8 * 86400), domain)
    turn(store, "day", session_start(now - 86400) + question_turn(at=now - 86400), domain)
    assert store.purge(now)["deleted_conversations"] == 1
    assert stored_count(store, "day") and not stored_count(store, "week")


# --- settings, names, configuration -----------------------------------------------------
def test_settings_defaults_and_bad_values():
    settings = ConversationStoreSettings.from_env({})
    assert (settings.retention_days, settings.abandoned_lookup_minutes, settings.purge_interval_minutes) == (30, 60, 60)
    for name, value in (("CONVERSATION_RETENTION_DAYS", "0"), ("CONVERSATION_RETENTION_DAYS", "thirty"),
                        ("CONVERSATION_PURGE_INTERVAL_MINUTES", "-1")):
        with pytest.raises(ValueError):  # SettingsError, RetentionError
            ConversationStoreSettings.from_env({name: value})


def test_the_abandoned_lookup_delay_is_the_session_expiry(domain):
    assert ConversationStoreSettings().abandoned_lookup_minutes == domain.session_config.session_expiration_time


def test_the_names_it_redacts_are_the_domains_and_the_actions(domain):
    from actions import progress

    assert store_module.LOOKUP_FORM == progress.FORM
    assert store_module.LOOKUP_FORM in domain.form_names
    assert store_module.LOOKUP_ACTION == progress.ActionCheckProgress(client=object()).name()
    assert store_module.LOOKUP_ACTION in domain.action_names_or_texts
    assert store_module.CREDENTIAL_SLOTS == set(domain.forms[store_module.LOOKUP_FORM]["required_slots"])
    assert store_module.NUMBER_ENTITY in domain.entities
    assert store_module.LOOKUP_INTENTS <= set(domain.intents)


@pytest.mark.parametrize("endpoints", ["endpoints.yml", "deploy/endpoints.production.yml"])
def test_both_endpoint_files_name_this_store(endpoints, monkeypatch):
    for name in ("DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME", "DB_LOGIN_DB",
                 "ACTION_ENDPOINT_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "REDIS_DB"):
        monkeypatch.setenv(name, "1")
    config = read_endpoint_config(str(ROOT / endpoints), "tracker_store")
    assert config.type == "channels.tracker_store.PrivateSQLTrackerStore"


def test_rasa_loads_it_from_endpoints_yml_and_the_file_is_private(tmp_path, domain, monkeypatch):
    """As `rasa run` does: not Rasa's silent in-memory fallback for an unknown type."""
    text = (ROOT / "endpoints.yml").read_text(encoding="utf-8")
    state = tmp_path / ".state"
    state.mkdir(mode=0o755)
    os.chmod(state, 0o755)
    path = tmp_path / "endpoints.yml"
    path.write_text(text.replace("db: .state/rasa-tracker.db", f"db: {state / 'rasa-tracker.db'}"), encoding="utf-8")
    monkeypatch.setenv("CONVERSATION_PURGE_INTERVAL_MINUTES", "0")  # the purge runs once, at start
    store = TrackerStore.create(read_endpoint_config(str(path), "tracker_store"), domain=domain)
    try:
        assert isinstance(store, PrivateSQLTrackerStore)
        assert stat.S_IMODE((state / "rasa-tracker.db").stat().st_mode) == 0o600
        assert stat.S_IMODE(state.stat().st_mode) == 0o700
        turn(store, "u8", session_start() + ask_number_turn(), domain)
        turn(store, "u8", suffix_turn(), domain)
        for companion in state.iterdir():
            assert stat.S_IMODE(companion.stat().st_mode) == 0o600, companion.name
        assert_nothing_remains(store)
    finally:
        store.close()


def test_the_purge_command(tmp_path, domain, capsys):
    from tools import purge_conversations

    state = tmp_path / ".state"
    path = tmp_path / "endpoints.yml"
    path.write_text("tracker_store:\n  type: channels.tracker_store.PrivateSQLTrackerStore\n"
                    f"  dialect: sqlite\n  db: {state / 'tracker.db'}\n", encoding="utf-8")
    store = PrivateSQLTrackerStore(domain=domain, dialect="sqlite", db=str(state / "tracker.db"),
                                   purge_in_background=False)
    old = time.time() - 31 * 86400
    turn(store, "old", session_start(old) + question_turn(at=old), domain)
    turn(store, "abandoned", session_start(old + 2 * 86400) + ask_number_turn(at=old + 2 * 86400), domain)
    turn(store, "new", session_start() + question_turn(), domain)
    assert purge_conversations.main(["--endpoints", str(path)]) == 0
    assert "deleted 7 events (1 whole conversations); redacted 1 abandoned lookups" in capsys.readouterr().out
    assert stored_count(store, "old") == 0 and stored_count(store, "new") == 7
    assert_nothing_remains(store)
    store.close()
    other = tmp_path / "other.yml"
    other.write_text("tracker_store:\n  type: SQL\n  dialect: sqlite\n  db: x.db\n", encoding="utf-8")
    assert purge_conversations.main(["--endpoints", str(other)]) == 2
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "purge-conversations:" in makefile and "tools.purge_conversations" in makefile


# --- the plan on its own ------------------------------------------------------------------
def test_the_plan_reports_the_lookup_in_flight_and_skips_what_is_redacted(domain):
    events = [event.as_dict() for event in session_start() + ask_number_turn()]
    plan, in_flight = redaction_plan(events)
    assert in_flight
    assert [events[index]["event"] for index in plan] == ["user", "slot"]
    for index in plan:
        events[index] = redact_event(events[index])
    assert redaction_plan(events) == ([], True)


# --- file modes ---------------------------------------------------------------------------
def test_state_files_are_created_private(tmp_path):
    from progress_service.db import make_engine
    from web.agents import AgentStore

    state = tmp_path / ".state"
    state.mkdir()
    os.chmod(state, 0o755)
    old = state / "old.db"
    old.write_bytes(b"")
    os.chmod(old, 0o644)
    (state / "old.db-wal").write_bytes(b"")
    os.chmod(state / "old.db-wal", 0o644)
    private_sqlite_file(old)
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE(old.stat().st_mode) == 0o600
    assert stat.S_IMODE((state / "old.db-wal").stat().st_mode) == 0o600

    engine = make_engine(f"sqlite:///{state / 'progress.db'}")
    with engine.begin() as connection:
        connection.execute(sa.text("select 1"))
    engine.dispose()
    AgentStore(state / "agents.db")
    fresh = tmp_path / "new" / ".state"
    private_sqlite_file(fresh / "x.db")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o700
    for path in list(state.iterdir()) + [fresh / "x.db"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    # another folder the operator chose keeps its mode
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)
    private_sqlite_file(shared / "x.db")
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755
    assert stat.S_IMODE((shared / "x.db").stat().st_mode) == 0o600

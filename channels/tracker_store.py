"""The conversation store: Rasa's SQL tracker store (SQLite or PostgreSQL) that keeps no
progress-lookup credentials at rest and nothing longer than the retention period.

endpoints.yml and deploy/endpoints.production.yml name it
(`tracker_store: type: channels.tracker_store.PrivateSQLTrackerStore`, with the keys of
Rasa's `type: SQL`). It is the one place that reads and reshapes stored conversations:
Rasa reads through `retrieve`, our own reports (issue 19) through `conversations_since`
and `conversation_events`.
docs/security.md ("Conversations at rest") describes what it guarantees.

Redaction. When a tracker is saved and no progress lookup is in flight (the form
`progress_form` is not active: the lookup found the application, failed, was quit, or its
session expired), every trace of the lookup credentials is replaced by PLACEHOLDER:

- the user messages that carried the application number or the ID suffix: the text,
  `parse_data.text` and every entity value of the message (intent and ranking stay, so the
  stored conversation still predicts the same and a report still sees what was asked).
  A message is such a message when it holds the `application_no` entity, when one of the
  two slots was set from it, or when it holds a digit and was typed to the lookup (the form
  was asking, or the message started it);
- the values of the slots `application_no` and `id_last4` (SlotSet events);
- the bot's replies of `action_check_progress` (the lookup result: masked name, disease,
  status, the agency's note).

Redacted events carry `"redacted": "lookup"` in their metadata. While the lookup is in
flight nothing is touched: the form needs the number across the turn boundary. Rasa's
save only appends (it counts the stored events of the session), so older rows are
redacted by UPDATE of those rows, in the transaction that appends the turn. The number of
events never changes; a SlotSet holding the placeholder reads as "not set", so a retrieved
tracker is the same conversation with the slots cleared.

A lookup left half-way by someone who never comes back stays "in flight" in the stored
conversation; the purge redacts it once the conversation has been idle for
`abandoned_lookup_minutes` (the session expiry: the next message would start a new session).

Retention. The purge deletes every conversation whose last event is older than
`retention_days`, and of a sender who keeps coming back (a WeChat OpenID is one sender
for ever) the sessions that ended before that. It runs when the Rasa process starts and
then every `purge_interval_minutes` in a background thread; `make purge-conversations`
runs it once (for cron, and for stores no Rasa process is running on).

The SQLite file is created 0600 in a 0700 state folder (core/private_files.py).
"""
import json
import logging
import threading
import time
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Text, Tuple

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.utils.common import class_from_module_path
from rasa.utils.endpoints import read_endpoint_config
from rasa.shared.core.events import ActiveLoop, EntitiesAdded, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from channels.config import ConversationStoreSettings
from core.private_files import private_database_file

logger = logging.getLogger(__name__)

PLACEHOLDER = "［已隐去］"
REDACTED = {"redacted": "lookup"}  # added to the metadata of every redacted event
# As the domain (domain/progress.yml) and actions/progress.py name them; a test checks.
LOOKUP_FORM = "progress_form"
LOOKUP_ACTION = "action_check_progress"
CREDENTIAL_SLOTS = frozenset({"application_no", "id_last4"})
NUMBER_ENTITY = "application_no"
LOOKUP_INTENTS = frozenset({"check_progress", "inform_application"})


# --- what to redact (pure functions over stored event dicts) ------------------------------
def _has_digit(text: Any) -> bool:
    return isinstance(text, str) and any(character.isdigit() for character in text)


def _user_entities(event: Mapping[str, Any]) -> List[Mapping[str, Any]]:
    if event.get("event") == "entities":
        return list(event.get("entities") or [])
    return list((event.get("parse_data") or {}).get("entities") or [])


def _raw_entity_values(event: Mapping[str, Any]) -> bool:
    return any(entity.get("value") not in (None, PLACEHOLDER) for entity in _user_entities(event))


def _raw_number_entity(event: Mapping[str, Any]) -> bool:
    return any(entity.get("entity") == NUMBER_ENTITY and entity.get("value") not in (None, PLACEHOLDER)
               for entity in _user_entities(event))


def _raw_credential_slot(event: Mapping[str, Any]) -> bool:
    return (event.get("event") == "slot" and event.get("name") in CREDENTIAL_SLOTS
            and event.get("value") not in (None, PLACEHOLDER))


def _raw_user(event: Mapping[str, Any]) -> bool:
    return event.get("text") != PLACEHOLDER or _raw_entity_values(event)


def _raw_bot(event: Mapping[str, Any]) -> bool:
    return event.get("text") != PLACEHOLDER or any(value is not None for value in (event.get("data") or {}).values())


def redaction_plan(events: Sequence[Mapping[str, Any]]) -> Tuple[List[int], bool]:
    """(indexes of the events that still hold lookup credentials or results, whether the
    lookup form is active after the last event). Already redacted events are not listed."""
    active = False
    active_before: List[bool] = []
    for event in events:
        active_before.append(active)
        kind = event.get("event")
        if kind == "active_loop":
            active = event.get("name") == LOOKUP_FORM
        elif kind in ("session_started", "restart"):
            active = False

    plan: Set[int] = set()
    users = [index for index, event in enumerate(events) if event.get("event") == "user"]
    for position, index in enumerate(users):
        event = events[index]
        if not _raw_user(event):
            continue
        turn = events[index + 1: users[position + 1] if position + 1 < len(users) else len(events)]
        intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
        typed_to_lookup = (active_before[index] or intent in LOOKUP_INTENTS or any(
            later.get("event") == "active_loop" and later.get("name") == LOOKUP_FORM for later in turn))
        if (_raw_number_entity(event) or any(_raw_credential_slot(later) for later in turn)
                or (typed_to_lookup and _has_digit(event.get("text")))):
            plan.add(index)

    replying = False  # inside the replies of the lookup action
    for index, event in enumerate(events):
        kind = event.get("event")
        if kind == "action":
            replying = event.get("name") == LOOKUP_ACTION
        elif kind == "user":
            replying = False
        elif kind == "bot" and replying and _raw_bot(event):
            plan.add(index)
        elif _raw_credential_slot(event) or (kind == "entities" and _raw_number_entity(event)):
            plan.add(index)
    return sorted(plan), active


def redact_event(event: Mapping[str, Any]) -> Dict[str, Any]:
    """A copy of one stored event with its content replaced by PLACEHOLDER."""
    redacted = json.loads(json.dumps(event))  # deep copy of plain JSON
    kind = redacted.get("event")
    if kind == "user":
        redacted["text"] = PLACEHOLDER
        parse_data = redacted.get("parse_data")
        if isinstance(parse_data, dict):
            parse_data["text"] = PLACEHOLDER
            parse_data.pop("text_tokens", None)  # offsets into the original text
            for entity in parse_data.get("entities") or []:
                _redact_entity(entity)
    elif kind == "entities":
        for entity in redacted.get("entities") or []:
            _redact_entity(entity)
    elif kind == "slot":
        redacted["value"] = PLACEHOLDER
    elif kind == "bot":
        redacted["text"] = PLACEHOLDER
        if isinstance(redacted.get("data"), dict):
            redacted["data"] = {key: None for key in redacted["data"]}
    redacted["metadata"] = {**(redacted.get("metadata") or {}), **REDACTED}
    return redacted


def _redact_entity(entity: Dict[str, Any]) -> None:
    if "value" in entity:
        entity["value"] = PLACEHOLDER
    if "text" in entity:
        entity["text"] = PLACEHOLDER


def reshape(event: Dict[str, Any]) -> Dict[str, Any]:
    """A stored event as the conversation reads it: a credential slot set to the
    placeholder is a slot that is not set."""
    if event.get("event") == "slot" and event.get("name") in CREDENTIAL_SLOTS and event.get("value") == PLACEHOLDER:
        event = {**event, "value": None}
    return event


def _may_hold_credentials(events: Iterable[Any]) -> bool:
    """Cheap test on the tracker's events: is there any lookup in this session at all?"""
    for event in events:
        if isinstance(event, ActiveLoop) and event.name == LOOKUP_FORM:
            return True
        if isinstance(event, SlotSet) and event.key in CREDENTIAL_SLOTS and event.value not in (None, PLACEHOLDER):
            return True
        if isinstance(event, (UserUttered, EntitiesAdded)):
            if isinstance(event, UserUttered) and event.intent_name in LOOKUP_INTENTS:
                return True
            if any(entity.get("entity") == NUMBER_ENTITY for entity in event.entities or []):
                return True
    return False


PURGE_BATCH = 200  # conversations per purge transaction


def _batches(items: Sequence[Any], size: int) -> Iterable[List[Any]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


class PurgeResult(dict):
    """Counts of one purge: deleted_events, deleted_conversations, redacted_lookups."""


# --- the store ----------------------------------------------------------------------------
class PrivateSQLTrackerStore(SQLTrackerStore):
    """Rasa's SQLTrackerStore with redaction at rest, retention and private file modes."""

    def __init__(self, domain=None, dialect: Text = "sqlite", host: Optional[Text] = None,
                 port: Optional[int] = None, db: Text = "rasa.db", username: Text = None,
                 password: Text = None, event_broker=None, login_db: Optional[Text] = None,
                 query: Optional[Dict] = None, settings: Optional[ConversationStoreSettings] = None,
                 purge_in_background: bool = True, **kwargs: Any) -> None:
        # Rasa falls back to an in-memory store, with only a warning, when a custom store
        # raises AttributeError or ImportError: conversations would silently not be kept.
        try:
            self.settings = settings or ConversationStoreSettings.from_env()
            url = self.get_db_url(dialect, host, port, db, username, password, login_db, query)
            private_database_file(str(url))
            super().__init__(domain=domain, dialect=dialect, host=host, port=port, db=db,
                             username=username, password=password, event_broker=event_broker,
                             login_db=login_db, query=query, **kwargs)
        except (AttributeError, ImportError) as error:
            raise RuntimeError(f"the conversation store could not start: {error!r}") from error
        self._events = self.SQLEvent.__table__
        self._stop = threading.Event()
        self._purger: Optional[threading.Thread] = None
        if purge_in_background:
            self._purger = threading.Thread(target=self._purge_periodically, name="conversation-purge",
                                            daemon=True)
            self._purger.start()

    # --- reading ------------------------------------------------------------------------
    def _stored_events(self, session, sender_id: Text, all_sessions: bool) -> List[Dict[str, Any]]:
        rows = self._event_query(session, sender_id, fetch_events_from_all_sessions=all_sessions)
        return [reshape(json.loads(row.data)) for row in rows.with_entities(self.SQLEvent.data)]

    def conversation_events(self, sender_id: Text, all_sessions: bool = True) -> List[Dict[str, Any]]:
        """The stored events of one conversation as dicts, in order, as Rasa reads them
        (credential slots set to the placeholder read as not set)."""
        with self.session_scope() as session:
            return self._stored_events(session, sender_id, all_sessions)

    def conversations_since(self, since: float) -> List[Text]:
        """The senders with an event at or after `since` (unix time), e.g. for a report of
        a period; read each with `conversation_events`."""
        table = self._events
        query = (sa.select(table.c.sender_id).where(table.c.timestamp >= since)
                 .group_by(table.c.sender_id).order_by(table.c.sender_id))
        with self.session_scope() as session:
            return [row.sender_id for row in session.execute(query)]

    async def _retrieve(self, sender_id: Text, fetch_events_from_all_sessions: bool
                        ) -> Optional[DialogueStateTracker]:
        with self.session_scope() as session:
            events = self._stored_events(session, sender_id, fetch_events_from_all_sessions)
        if self.domain and events:
            return DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)
        return None

    # --- saving -------------------------------------------------------------------------
    def _plan_for(self, tracker: DialogueStateTracker, events: Sequence[Mapping[str, Any]]) -> List[int]:
        """What to redact at this save: nothing while the lookup is in flight."""
        if tracker.active_loop_name == LOOKUP_FORM:
            return []
        try:
            return redaction_plan(events)[0]
        except Exception:  # noqa: BLE001 - a bug here must not lose the conversation
            logger.exception("redaction skipped for a conversation: the events could not be analysed")
            return []

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Append the new events (as Rasa's SQL store does) and, when no lookup is in
        flight, redact the lookup's older rows, in one transaction."""
        await self.stream_events(tracker)
        events = list(tracker.events)
        as_dicts = [event.as_dict() for event in events] if _may_hold_credentials(events) else None
        with self.session_scope() as session:
            stored = self._event_query(session, tracker.sender_id, fetch_events_from_all_sessions=False).count()
            plan = set(self._plan_for(tracker, as_dicts)) if as_dicts is not None else set()
            for index in range(stored, len(events)):
                event = events[index]
                data = as_dicts[index] if as_dicts is not None else event.as_dict()
                if index in plan:
                    data = redact_event(data)
                session.add(self.SQLEvent(
                    sender_id=tracker.sender_id,
                    type_name=event.type_name,
                    timestamp=data.get("timestamp"),
                    intent_name=((data.get("parse_data") or {}).get("intent") or {}).get("name"),
                    action_name=data.get("name"),
                    data=json.dumps(data),
                ))
            older = sorted(index for index in plan if index < stored)
            if older:
                self._redact_stored_rows(session, tracker.sender_id, events, older)
            session.commit()
        logger.debug("Tracker with sender_id '%s' stored to database", tracker.sender_id)

    def _redact_stored_rows(self, session, sender_id: Text, events: Sequence[Any], indexes: List[int]) -> None:
        """UPDATE the stored rows of the current session at `indexes` (positions in the
        tracker, which was read from exactly these rows). If a row is not the event the
        tracker has there, redact the whole stored conversation from its own rows instead."""
        rows = (self._event_query(session, sender_id, fetch_events_from_all_sessions=False)
                .with_entities(self.SQLEvent.id, self.SQLEvent.type_name, self.SQLEvent.data).all())
        updates = []
        for index in indexes:
            if index >= len(rows) or rows[index].type_name != events[index].type_name:
                logger.warning("stored conversation does not match its tracker; redacting from the rows")
                session.flush()
                self._redact_conversation(session, sender_id)
                return
            updates.append((rows[index].id, redact_event(json.loads(rows[index].data))))
        self._update_rows(session, updates)

    def _update_rows(self, session, updates: Sequence[Tuple[int, Mapping[str, Any]]]) -> None:
        for row_id, data in updates:
            session.execute(sa.update(self._events).where(self._events.c.id == row_id)
                            .values(data=json.dumps(data)))

    def _redact_conversation(self, session, sender_id: Text) -> int:
        """Redact every stored row of `sender_id` that holds lookup credentials, whatever
        state the conversation is in. Returns the number of rows changed."""
        rows = session.execute(sa.select(self._events.c.id, self._events.c.data)
                               .where(self._events.c.sender_id == sender_id)
                               .order_by(self._events.c.id)).all()
        events = [json.loads(row.data) for row in rows]
        plan, _ = redaction_plan(events)
        self._update_rows(session, [(rows[index].id, redact_event(events[index])) for index in plan])
        return len(plan)

    # --- purging ------------------------------------------------------------------------
    def purge(self, now: Optional[float] = None) -> PurgeResult:
        """Retention, then abandoned lookups. Safe to run while Rasa serves: it deletes
        only conversations idle for the retention period and sessions that have ended, and
        never changes how many events the current session of a conversation has."""
        now = time.time() if now is None else now
        result = PurgeResult(deleted_events=0, deleted_conversations=0, redacted_lookups=0)
        cutoff = now - self.settings.retention_days * 86400
        table = self._events
        # In short transactions of PURGE_BATCH conversations: save() runs on Rasa's event
        # loop and waits while the purge holds SQLite's write lock. Each DELETE repeats its
        # condition, so a conversation that came back since the list was read is kept.
        idle = (sa.select(table.c.sender_id).group_by(table.c.sender_id)
                .having(sa.func.max(table.c.timestamp) < cutoff))
        with self.session_scope() as session:
            idle_senders = [row.sender_id for row in session.execute(idle).all()]
        for batch in _batches(idle_senders, PURGE_BATCH):
            with self.session_scope() as session:
                deleted = session.execute(sa.delete(table).where(
                    table.c.sender_id.in_(batch), table.c.sender_id.in_(idle)))
                session.commit()
            result["deleted_events"] += deleted.rowcount or 0
            result["deleted_conversations"] += len(batch)
        # of the conversations still active: the sessions that ended before the cutoff
        # (everything before the start of the session holding the first recent event)
        with self.session_scope() as session:
            old_senders = [row.sender_id for row in session.execute(
                sa.select(table.c.sender_id).where(table.c.timestamp < cutoff).distinct()).all()]
        name = self.SQLEvent.__tablename__
        ended_sessions = sa.text(
            f'DELETE FROM {name} WHERE sender_id IN :senders AND "timestamp" < :cutoff'
            f' AND "timestamp" < ('
            f' SELECT MAX(s."timestamp") FROM {name} s WHERE s.sender_id = {name}.sender_id'
            "  AND s.type_name = 'session_started' AND s.\"timestamp\" <= ("
            f'  SELECT MIN(r."timestamp") FROM {name} r WHERE r.sender_id = {name}.sender_id'
            '   AND r."timestamp" >= :cutoff))').bindparams(sa.bindparam("senders", expanding=True))
        for batch in _batches(old_senders, PURGE_BATCH):
            with self.session_scope() as session:
                ended = session.execute(ended_sessions, {"cutoff": cutoff, "senders": batch})
                session.commit()
            result["deleted_events"] += ended.rowcount or 0
        idle_since = now - self.settings.abandoned_lookup_minutes * 60
        for sender_id, row_id, data in self._abandoned_lookups(idle_since):
            with self.session_scope() as session:
                self._redact_conversation(session, sender_id)
                marked = {**json.loads(data)}
                marked["metadata"] = {**(marked.get("metadata") or {}), **REDACTED}
                self._update_rows(session, [(row_id, marked)])
                session.commit()
            result["redacted_lookups"] += 1
        return result

    def _abandoned_lookups(self, idle_since: float) -> List[Tuple[Text, int, Text]]:
        """(sender, row id, data) of the still-active lookup form of every conversation
        idle since `idle_since` whose last loop or session event activated the form and was
        not redacted yet."""
        table = self._events
        last = (sa.select(table.c.sender_id, sa.func.max(table.c.id).label("last_id"))
                .where(table.c.type_name.in_(("active_loop", "session_started", "restart")))
                .group_by(table.c.sender_id).subquery())
        idle = (sa.select(table.c.sender_id).group_by(table.c.sender_id)
                .having(sa.func.max(table.c.timestamp) < idle_since))
        query = (sa.select(table.c.sender_id, table.c.id, table.c.data)
                 .join(last, table.c.id == last.c.last_id)
                 .where(table.c.type_name == "active_loop", table.c.action_name == LOOKUP_FORM,
                        table.c.sender_id.in_(idle),
                        sa.not_(table.c.data.contains(json.dumps(REDACTED)[1:-1]))))
        with self.session_scope() as session:
            return [tuple(row) for row in session.execute(query).all()]

    def _purge_periodically(self) -> None:
        interval = self.settings.purge_interval_minutes * 60
        while not self._stop.is_set():
            try:
                result = self.purge()
                if any(result.values()):
                    logger.info("conversation purge: %s", dict(result))
            except Exception:  # noqa: BLE001 - the next run tries again
                logger.exception("conversation purge failed")
            if not interval or self._stop.wait(interval):
                return

    def close(self) -> None:
        """Stop the background purge and release the connections (tests, the command)."""
        self._stop.set()
        if self._purger is not None:
            self._purger.join(timeout=30)
        self.engine.dispose()


class NotOurStore(ValueError):
    """The endpoints file names another tracker store than PrivateSQLTrackerStore."""


def open_from_endpoints(path: Text) -> PrivateSQLTrackerStore:
    """The tracker store an endpoints file configures, opened for a command-line tool
    (no background purge). The tools that read or purge conversations start here."""
    config = read_endpoint_config(str(path), endpoint_type="tracker_store")
    store_class = class_from_module_path(config.type) if config and config.type and "." in config.type else None
    if store_class is None or not issubclass(store_class, PrivateSQLTrackerStore):
        raise NotOurStore(f"{path}: tracker_store is not channels.tracker_store.PrivateSQLTrackerStore "
                          f"(found {config.type if config else None!r})")
    return store_class(host=config.url, purge_in_background=False, **config.kwargs)

"""What the progress service does, without HTTP: lookups, updates, lockouts, audit."""
import dataclasses
import datetime as dt
import hmac
import logging
import time
from typing import Any, Callable, Dict, Iterable, List, Optional

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from progress_service import db
from core.formats import CHINA_TZ, STATUS_LABELS, now_china
from core.privacy import (
    id_suffix_hash, keyed_hash, mask_application_no, mask_name,
)

logger = logging.getLogger("progress_service")


@dataclasses.dataclass
class Record:
    """One application as the agency exports it (already validated and normalised)."""

    application_no: str
    status: str
    status_updated_at: dt.datetime
    id_last4: Optional[str] = None
    applicant_name: Optional[str] = None
    disease: Optional[str] = None
    channel: Optional[str] = None
    submitted_at: Optional[dt.datetime] = None
    note: Optional[str] = None
    valid_from: Optional[dt.date] = None
    valid_until: Optional[dt.date] = None


@dataclasses.dataclass
class Outcome:
    kind: str  # found | no_match | locked | not_found
    application: Optional[Dict[str, Any]] = None
    retry_after: int = 0


def _dialect_insert(conn):
    """INSERT with ON CONFLICT for the two databases the service supports."""
    name = conn.dialect.name
    if name == "postgresql":
        return postgresql.insert
    if name == "sqlite":
        return sqlite.insert
    raise RuntimeError(f"progress service: unsupported database {name} (SQLite or PostgreSQL)")


def _iso(value) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=CHINA_TZ).isoformat()
    return value.isoformat()


class _Locked(Exception):
    def __init__(self, retry_after: int):
        super().__init__(retry_after)
        self.retry_after = retry_after


class ProgressStore:
    """Lookups, updates, the lockout and the audit.

    Lockout (docs/progress.md): a failed verification counts for the pair (number,
    identity), for the identity and, unless the identity already proved this number, for
    the number. An attempt first reserves one failure on each of its keys, by one
    conditional upsert per key, inside the transaction that checks the suffix; a key at its
    limit refuses the attempt (429) and nothing is counted. A match gives the reservations
    back. So parallel requests can never be evaluated more often than the limits allow."""

    def __init__(self, engine: sa.engine.Engine, id_hash_key: str, max_failures: int = 5,
                 window_seconds: int = 900, clock: Callable[[], float] = time.time,
                 identity_max_failures: Optional[int] = None,
                 number_max_failures: Optional[int] = None,
                 trust_seconds: int = 90 * 24 * 3600):
        if not id_hash_key:
            raise ValueError("PROGRESS_ID_HASH_KEY is not set")
        self.engine = engine
        self.id_hash_key = id_hash_key
        self.max_failures = max_failures
        self.identity_max_failures = identity_max_failures or 3 * max_failures
        self.number_max_failures = number_max_failures or 4 * max_failures
        self.window_seconds = window_seconds
        self.trust_seconds = trust_seconds
        self.clock = clock
        self._cleaned_at = 0.0
        self._alarmed: Dict[str, float] = {}  # number key -> end of its step-up warning

    # --- reading --------------------------------------------------------------------
    def _load_row(self, conn, application_no: str):
        return conn.execute(
            sa.select(db.applications).where(db.applications.c.application_no == application_no)
        ).mappings().first()

    def _load_history(self, conn, application_no: str):
        return conn.execute(
            sa.select(db.status_history)
            .where(db.status_history.c.application_no == application_no)
            .order_by(db.status_history.c.changed_at, db.status_history.c.id)
        ).mappings().all()

    def _load(self, conn, application_no: str):
        row = self._load_row(conn, application_no)
        if row is None:
            return None, []
        return row, self._load_history(conn, application_no)

    @staticmethod
    def _view(row, history, agent: bool) -> Dict[str, Any]:
        view = {
            "application_no": row["application_no"],
            "status": row["status"],
            "status_label": STATUS_LABELS.get(row["status"], row["status"]),
            "status_updated_at": _iso(row["status_updated_at"]),
            "submitted_at": _iso(row["submitted_at"]),
            "disease": row["disease"],
            "channel": row["channel"],
            "note": row["note"],
            "valid_from": _iso(row["valid_from"]),
            "valid_until": _iso(row["valid_until"]),
            "applicant_name_masked": mask_name(row["applicant_name"]),
            "history": [
                {
                    "status": h["status"],
                    "status_label": STATUS_LABELS.get(h["status"], h["status"]),
                    "changed_at": _iso(h["changed_at"]),
                    **({"note": h["note"], "source": h["source"]} if agent else {}),
                }
                for h in history
            ],
        }
        if agent:
            view["applicant_name"] = row["applicant_name"]
        return view

    # --- lockout --------------------------------------------------------------------
    def _reserve(self, conn, scope: str, key: str, limit: int, now: float) -> None:
        """Count one failure for (scope, key) unless it is at its limit: one statement
        (INSERT … ON CONFLICT DO UPDATE … WHERE), atomic on SQLite and PostgreSQL, and on
        PostgreSQL the row stays locked until this transaction ends. Raises _Locked."""
        table = db.lockout_counters
        expired = table.c.window_start <= now - self.window_seconds
        insert = _dialect_insert(conn)(table).values(scope=scope, key=key, window_start=now, failures=1)
        statement = insert.on_conflict_do_update(
            index_elements=[table.c.scope, table.c.key],
            set_={"failures": sa.case((expired, 1), else_=table.c.failures + 1),
                  "window_start": sa.case((expired, now), else_=table.c.window_start)},
            where=sa.or_(expired, table.c.failures < limit),
        )
        if conn.execute(statement).rowcount == 1:
            return
        started = conn.execute(sa.select(table.c.window_start).where(
            table.c.scope == scope, table.c.key == key)).scalar() or now
        raise _Locked(max(1, int(started + self.window_seconds - now) + 1))

    def _give_back(self, conn, scope: str, key: str) -> None:
        table = db.lockout_counters
        conn.execute(table.update().where(table.c.scope == scope, table.c.key == key,
                                          table.c.failures > 0)
                     .values(failures=table.c.failures - 1))

    def _is_trusted(self, conn, number_key: str, identity_key: str, now: float) -> bool:
        table = db.trusted_identities
        return conn.execute(sa.select(table.c.at).where(
            table.c.number_key == number_key, table.c.identity_key == identity_key,
            table.c.at > now - self.trust_seconds)).first() is not None

    def _trust(self, conn, number_key: str, identity_key: str, now: float) -> None:
        table = db.trusted_identities
        conn.execute(_dialect_insert(conn)(table).values(
            number_key=number_key, identity_key=identity_key, at=now,
        ).on_conflict_do_update(index_elements=[table.c.number_key, table.c.identity_key],
                                set_={"at": now}))

    def _alarm(self, number_key: str, application_no: str, now: float) -> None:
        """One warning per number and window when it starts refusing new identities."""
        if self._alarmed.get(number_key, 0.0) > now:
            return
        if len(self._alarmed) > 10000:
            self._alarmed = {k: until for k, until in self._alarmed.items() if until > now}
        self._alarmed[number_key] = now + self.window_seconds
        logger.warning("number %s: %d failed checks in the window; only identities that proved "
                       "it may try now (step-up)", mask_application_no(application_no),
                       self.number_max_failures)

    def _forget_expired(self, now: float) -> None:
        """Keep the tables small: windows that are over, trust that has lapsed. Rows
        another lookup holds are skipped (PostgreSQL), so this never waits or deadlocks."""
        counters, trusted = db.lockout_counters, db.trusted_identities
        try:
            with self.engine.begin() as conn:
                stale = conn.execute(
                    sa.select(counters.c.scope, counters.c.key)
                    .where(counters.c.window_start < now - self.window_seconds)
                    .limit(500).with_for_update(skip_locked=True)).all()
                for scope, key in stale:
                    conn.execute(counters.delete().where(
                        counters.c.scope == scope, counters.c.key == key,
                        counters.c.window_start < now - self.window_seconds))
                conn.execute(trusted.delete().where(trusted.c.at < now - self.trust_seconds))
        except sa.exc.SQLAlchemyError as error:  # housekeeping only: the lookup is answered
            logger.warning("lockout housekeeping skipped: %s", type(error).__name__)

    # --- lookups --------------------------------------------------------------------
    def lookup_public(self, application_no: str, id_last4: str, sender: str) -> Outcome:
        """`sender` is the requesting identity (X-Sender: the bot's hash of the client
        address or WeChat OpenID; else the caller's address)."""
        now = self.clock()
        number_key = keyed_hash(self.id_hash_key, "number", application_no)
        identity_key = keyed_hash(self.id_hash_key, "sender", sender or "-")
        pair_key = keyed_hash(self.id_hash_key, "pair", application_no, sender or "-")
        with self.engine.connect() as conn:
            transaction = conn.begin()
            try:
                trusted = self._is_trusted(conn, number_key, identity_key, now)
                # fixed order (pair, identity, number): no two lookups wait on each other in a cycle
                reserved = [("pair", pair_key, self.max_failures),
                            ("sender", identity_key, self.identity_max_failures)]
                if not trusted:
                    reserved.append(("number", number_key, self.number_max_failures))
                for scope, key, limit in reserved:
                    try:
                        self._reserve(conn, scope, key, limit, now)
                    except _Locked as locked:
                        transaction.rollback()
                        if scope == "number":
                            self._alarm(number_key, application_no, now)
                        return Outcome("locked", retry_after=locked.retry_after)
                row = self._load_row(conn, application_no)
                expected = id_suffix_hash(self.id_hash_key, application_no, id_last4)
                if row is None or not hmac.compare_digest(
                        str(row["id_hash"]).encode("ascii"), expected.encode("ascii")):
                    transaction.commit()
                    outcome = Outcome("no_match")
                else:
                    # proved: nothing counts against it, and this identity is known now
                    conn.execute(db.lockout_counters.delete().where(
                        db.lockout_counters.c.scope == "pair", db.lockout_counters.c.key == pair_key))
                    for scope, key, _limit in reserved[1:]:
                        self._give_back(conn, scope, key)
                    self._trust(conn, number_key, identity_key, now)
                    history = self._load_history(conn, application_no)  # only once the suffix matched
                    outcome = Outcome("found", self._view(row, history, agent=False))
                    transaction.commit()
            except BaseException:
                if transaction.is_active:
                    transaction.rollback()
                raise
        if outcome.kind == "no_match" and now - self._cleaned_at >= 60:
            self._cleaned_at = now
            self._forget_expired(now)
        return outcome

    def lookup_agent(self, application_no: str, agent: str) -> Outcome:
        with self.engine.begin() as conn:
            row, history = self._load(conn, application_no)
            outcome = Outcome("not_found") if row is None else Outcome(
                "found", self._view(row, history, agent=True))
            conn.execute(db.agent_audit.insert().values(
                agent=agent[:100],
                at=now_china(),
                application_no_masked=mask_application_no(application_no),
                application_no_hash=keyed_hash(self.id_hash_key, "audit", application_no),
                outcome=outcome.kind,
            ))
        logger.info("agent lookup: agent=%s number=%s outcome=%s",
                    agent, mask_application_no(application_no), outcome.kind)
        return outcome

    def audit_entries(self, limit: int = 100) -> List[Dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(db.agent_audit).order_by(db.agent_audit.c.id.desc()).limit(limit)
            ).mappings().all()
        return [dict(row) for row in rows]

    # --- writing --------------------------------------------------------------------
    def _upsert(self, conn, record: Record, source: str) -> Dict[str, Any]:
        row = conn.execute(
            sa.select(db.applications).where(
                db.applications.c.application_no == record.application_no)
        ).mappings().first()
        values = {
            "status": record.status,
            "status_updated_at": record.status_updated_at,
        }
        for name in ("applicant_name", "disease", "channel", "submitted_at", "note",
                     "valid_from", "valid_until"):
            value = getattr(record, name)
            if value is not None:
                values[name] = value
        if record.id_last4:
            values["id_hash"] = id_suffix_hash(
                self.id_hash_key, record.application_no, record.id_last4)
        history = db.status_history.insert()
        if row is None:
            if not record.id_last4 or not record.applicant_name:
                raise KeyError(record.application_no)
            values.setdefault("note", "")
            values.setdefault("disease", "")
            values.setdefault("channel", "")
            conn.execute(db.applications.insert().values(
                application_no=record.application_no, **values))
            if record.status != "submitted" and record.submitted_at:
                conn.execute(history.values(
                    application_no=record.application_no, status="submitted",
                    changed_at=record.submitted_at, note="", source=source))
            conn.execute(history.values(
                application_no=record.application_no, status=record.status,
                changed_at=record.status_updated_at, note=record.note or "", source=source))
            return {"result": "created", "status_changed": True}
        status_changed = row["status"] != record.status
        if status_changed and record.note is None:
            values["note"] = ""  # the old note belonged to the old status
        changed = any(row[name] != value for name, value in values.items())
        if changed:
            conn.execute(db.applications.update().where(
                db.applications.c.application_no == record.application_no).values(**values))
        if status_changed:
            conn.execute(history.values(
                application_no=record.application_no, status=record.status,
                changed_at=record.status_updated_at, note=record.note or "", source=source))
        return {"result": "updated" if changed else "unchanged", "status_changed": status_changed}

    def upsert(self, record: Record, source: str = "push") -> Dict[str, Any]:
        """One record in its own transaction. KeyError: unknown number without identity data."""
        with self.engine.begin() as conn:
            return self._upsert(conn, record, source)

    def upsert_all(self, records: Iterable[Record], source: str = "import") -> Dict[str, int]:
        """All records in one transaction: either every one is stored, or none."""
        counts = {"created": 0, "updated": 0, "unchanged": 0, "status_changed": 0}
        with self.engine.begin() as conn:
            for record in records:
                result = self._upsert(conn, record, source)
                counts[result["result"]] += 1
                counts["status_changed"] += int(result["status_changed"] and result["result"] != "created")
        return counts

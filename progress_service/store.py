"""What the progress service does, without HTTP: lookups, updates, lockouts, audit."""
import dataclasses
import datetime as dt
import hmac
import logging
import time
from typing import Any, Callable, Dict, Iterable, List, Optional

import sqlalchemy as sa

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


def _iso(value) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=CHINA_TZ).isoformat()
    return value.isoformat()


class ProgressStore:
    def __init__(self, engine: sa.engine.Engine, id_hash_key: str, max_failures: int = 5,
                 window_seconds: int = 900, clock: Callable[[], float] = time.time):
        if not id_hash_key:
            raise ValueError("PROGRESS_ID_HASH_KEY is not set")
        self.engine = engine
        self.id_hash_key = id_hash_key
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self.clock = clock

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
    def _keys(self, application_no: str, sender: str):
        return [
            ("number", keyed_hash(self.id_hash_key, "number", application_no)),
            ("sender", keyed_hash(self.id_hash_key, "sender", sender or "-")),
        ]

    def _retry_after(self, conn, keys, now: float) -> int:
        """Seconds until every key is below the limit again; 0 if none is locked."""
        since = now - self.window_seconds
        wait = 0.0
        for scope, key in keys:
            times = conn.execute(
                sa.select(db.failed_verifications.c.at)
                .where(db.failed_verifications.c.scope == scope,
                       db.failed_verifications.c.key == key,
                       db.failed_verifications.c.at > since)
                .order_by(db.failed_verifications.c.at.desc())
            ).scalars().all()
            if len(times) >= self.max_failures:
                # unlocked once the max_failures-th most recent failure leaves the window
                wait = max(wait, times[self.max_failures - 1] + self.window_seconds - now)
        return int(wait) + 1 if wait > 0 else 0

    # --- lookups --------------------------------------------------------------------
    def lookup_public(self, application_no: str, id_last4: str, sender: str) -> Outcome:
        now = self.clock()
        keys = self._keys(application_no, sender)
        with self.engine.begin() as conn:
            retry_after = self._retry_after(conn, keys, now)
            if retry_after:
                return Outcome("locked", retry_after=retry_after)
            row = self._load_row(conn, application_no)
            expected = id_suffix_hash(self.id_hash_key, application_no, id_last4)
            if row is None or not hmac.compare_digest(
                    str(row["id_hash"]).encode("ascii"), expected.encode("ascii")):
                conn.execute(db.failed_verifications.insert(), [
                    {"scope": scope, "key": key, "at": now} for scope, key in keys
                ])
                # keep the table small: nothing older than the window matters
                conn.execute(db.failed_verifications.delete().where(
                    db.failed_verifications.c.at < now - self.window_seconds))
                return Outcome("no_match")
            # history only once the suffix matched
            history = self._load_history(conn, application_no)
            return Outcome("found", self._view(row, history, agent=False))

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

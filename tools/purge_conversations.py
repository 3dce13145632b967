"""`make purge-conversations`: apply the retention of conversations and audit rows once, now.

Conversations: reads the tracker store from an endpoints file (default endpoints.yml;
ENDPOINTS or `--endpoints deploy/endpoints.production.yml` with the DB_* variables for
production), deletes conversations older than CONVERSATION_RETENTION_DAYS and redacts
lookups abandoned half-way (channels/tracker_store.py, docs/security.md). The Rasa process
does the same when it starts and then periodically; this command is for cron and for a
store no Rasa process is running on.

Audit rows: deletes the console's audit rows (web/agents.py `audit`: application lookups,
questions, conversation-code lookups) older than AUDIT_RETENTION_DAYS (184, core/retention.py
says why), in the console's database (AGENT_DATABASE_URL, else AGENT_DB), and the hotline
codes a day past their expiry (core/conversation_codes.py), and the status-change
subscriptions, widget watches and offers past their expiry (core/status_subscriptions.py).
Only this command does it: run
it from cron (docs/security.md "Audit rows").

Exit status 2 when the endpoints file names another store or a period is not a number.
`--no-conversations` / `--no-audit` skip one part (the cluster runs each part with the
environment of the process that owns the data).
"""
import argparse
import os
import pathlib
import sys
import time
from typing import List, Mapping, Optional

import sqlalchemy as sa

from channels.tracker_store import NotOurStore, open_from_endpoints
from core import conversation_codes, defaults, status_subscriptions
from core.retention import RetentionError, audit_retention_days
from core.private_files import sqlite_path
from web.agents import audit_table
from web.agents import database_url as agent_database_url
from web.config import WebConfig


def _exists(url: str) -> bool:
    """False for an SQLite file that is not there (nothing to purge; don't create it)."""
    path = sqlite_path(url)
    return path is None or (path.exists() and path.stat().st_size > 0)


def purge_audit(url: str, days: float, now: Optional[float] = None) -> Optional[int]:
    """Delete the console's audit rows older than `days`; their number, None when the
    database or its audit table does not exist."""
    if not _exists(url):
        return None
    cutoff = (time.time() if now is None else now) - days * 86400
    engine = sa.create_engine(url, future=True)
    try:
        if not sa.inspect(engine).has_table(audit_table.name):
            return None
        with engine.begin() as db:
            return db.execute(audit_table.delete().where(audit_table.c.at < cutoff)).rowcount
    finally:
        engine.dispose()


def _purge_store(url: str, table: str, open_store) -> Optional[int]:
    """The store's own purge (its expiry rules), if its database and table exist."""
    if not _exists(url):
        return None
    engine = sa.create_engine(url, future=True)
    try:
        if not sa.inspect(engine).has_table(table):
            return None
    finally:
        engine.dispose()
    store = open_store(url)
    try:
        return store.purge()
    finally:
        store.close()


def purge_codes(url: str) -> Optional[int]:
    """Delete the conversation codes a day past their expiry (the store's own rule)."""
    return _purge_store(url, conversation_codes.codes_table.name, conversation_codes.CodeStore)


def purge_status(url: str) -> Optional[int]:
    """Expired status subscriptions, widget watches, offers and old notification claims
    (core/status_subscriptions.py: 90 days or a final status)."""
    return _purge_store(url, status_subscriptions.subscriptions_table.name,
                        status_subscriptions.SubscriptionStore)


def purge_audit_rows(environ: Mapping[str, str] = os.environ) -> str:
    days = audit_retention_days(environ)
    console_url = agent_database_url(WebConfig.from_env(environ).agent_store_location)
    audit = purge_audit(console_url, days)
    codes = purge_codes(conversation_codes.database_url(environ))
    status = purge_status(status_subscriptions.database_url(environ))
    audit_text = "no console database" if audit is None else f"deleted {audit} console audit rows"
    codes_text = "no code database" if codes is None else f"{codes} expired conversation codes"
    status_text = ("no status-subscription database" if status is None
                   else f"{status} expired status subscriptions, watches and claims")
    return f"audit retention {days:g} days: {audit_text}; {codes_text}; {status_text}"


def main(argv: Optional[List[str]] = None, environ: Mapping[str, str] = os.environ) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=pathlib.Path, default=defaults.ROOT / "endpoints.yml")
    parser.add_argument("--no-conversations", action="store_true", help="skip the tracker store")
    parser.add_argument("--no-audit", action="store_true", help="skip the audit rows and codes")
    args = parser.parse_args(argv)
    try:
        audit_retention_days(environ)  # a bad setting stops the job before it deletes anything
    except RetentionError as error:
        print(f"{error}; nothing purged", file=sys.stderr)
        return 2
    if not args.no_conversations:
        try:
            store = open_from_endpoints(args.endpoints)
        except NotOurStore as error:
            print(f"{error}; nothing purged", file=sys.stderr)
            return 2
        try:
            result = store.purge()
        finally:
            store.close()
        print(f"retention {store.settings.retention_days:g} days: deleted {result['deleted_events']} events "
              f"({result['deleted_conversations']} whole conversations); "
              f"redacted {result['redacted_lookups']} abandoned lookups")
    if not args.no_audit:
        print(purge_audit_rows(environ))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Read-only access to the conversation store for processes that do not load Rasa.

The conversation store is Rasa's SQL tracker store (channels/tracker_store.py:
PrivateSQLTrackerStore, one `events` table: id, sender_id, type_name, timestamp, ..., data
as JSON). The Rasa process and the command-line tools (make report-unanswered, make
purge-conversations) open it through that class; the web app's supervisor page (issue 19)
must not import Rasa or `channels`, so it reads the same table here, with the same two
queries as `PrivateSQLTrackerStore.conversations_since` / `conversation_events`, and
hands the events to core/unanswered.py like the report does.

Where the store is: the endpoints file Rasa reads (`tracker_store:` with the keys of
Rasa's `type: SQL`: dialect, url, port, db, username, password, query; `${VAR}` taken
from the environment as Rasa does), so the web app and the report always read the same
store. A relative SQLite `db` is relative to the working directory, as for Rasa.
PostgreSQL's POSTGRESQL_SCHEMA (Rasa's variable) is honoured. Only reads: safe while the
bot serves.
"""
import json
import os
import re
import urllib.parse
from typing import Any, Dict, List, Mapping, Optional, Union

import sqlalchemy as sa
import yaml

EVENTS_TABLE = "events"  # Rasa's SQLTrackerStore.SQLEvent.__tablename__
SQL_STORE_TYPES = ("sql", "channels.tracker_store.privatesqltrackerstore")
_VARIABLE = re.compile(r"\$\{([^}]+)\}")

_metadata = sa.MetaData()
events_table = sa.Table(
    EVENTS_TABLE, _metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sender_id", sa.String(255)),
    sa.Column("type_name", sa.String(255)),
    sa.Column("timestamp", sa.Float),
    sa.Column("data", sa.Text),
)


class StoreConfigError(ValueError):
    """The endpoints file names no SQL tracker store, or a variable it needs is unset."""


def _substitute(value: Any, environ: Mapping[str, str]) -> Any:
    if not isinstance(value, str):
        return value

    def variable(match: "re.Match[str]") -> str:
        name = match.group(1)
        if name not in environ:
            raise StoreConfigError(f"the tracker store needs the environment variable {name}")
        return environ[name]

    return _VARIABLE.sub(variable, value)


def url_from_endpoints(path: Union[str, os.PathLike],
                       environ: Mapping[str, str] = os.environ) -> Union[str, sa.engine.URL]:
    """The SQLAlchemy URL of the tracker store an endpoints file configures (as Rasa's
    SQLTrackerStore.get_db_url builds it, but always the `db` database, never `login_db`)."""
    with open(path, encoding="utf-8") as handle:
        loaded = yaml.safe_load(handle) or {}
    config = loaded.get("tracker_store") if isinstance(loaded, dict) else None
    if not isinstance(config, dict) or str(config.get("type") or "").lower() not in SQL_STORE_TYPES:
        raise StoreConfigError(f"{path}: tracker_store is not an SQL tracker store")
    config = {key: _substitute(value, environ) for key, value in config.items()}
    dialect = str(config.get("dialect") or "sqlite")
    host = config.get("url") or config.get("host")
    db = str(config.get("db") or "rasa.db")
    if host and "://" in str(host):
        return str(host)
    port = config.get("port")
    if host:
        parsed = urllib.parse.urlsplit(f"scheme://{host}")
        port, host = parsed.port or port, parsed.hostname or host
    if dialect.startswith("sqlite"):
        return f"sqlite:///{os.path.abspath(db)}"
    return sa.engine.URL.create(
        dialect, username=config.get("username") or None, password=config.get("password") or None,
        host=host or None, port=int(port) if port not in (None, "") else None, database=db,
        query=config.get("query") or {})


class TrackerReader:
    """The stored conversations, read only. `location`: an SQLAlchemy URL."""

    def __init__(self, location: Union[str, sa.engine.URL], environ: Mapping[str, str] = os.environ):
        url = sa.engine.make_url(location)
        kwargs: Dict[str, Any] = {"future": True}
        if url.get_backend_name() == "postgresql":
            kwargs["pool_pre_ping"] = True
            if environ.get("POSTGRESQL_SCHEMA"):
                kwargs["connect_args"] = {"options": f"-csearch_path={environ['POSTGRESQL_SCHEMA']}"}
        elif url.get_backend_name() == "sqlite":
            kwargs["connect_args"] = {"timeout": 5}
            # Rasa creates the file with the first conversation; until then there is nothing
            # to read (and connecting would create an empty file with the wrong mode)
            self._sqlite_file = url.database or ""
        self.engine = sa.create_engine(url, **kwargs)

    _sqlite_file: Optional[str] = None

    def _empty(self) -> bool:
        return bool(self._sqlite_file) and not os.path.exists(self._sqlite_file)

    @classmethod
    def from_endpoints(cls, path: Union[str, os.PathLike],
                       environ: Mapping[str, str] = os.environ) -> "TrackerReader":
        return cls(url_from_endpoints(path, environ), environ)

    def conversations_since(self, since: float) -> List[str]:
        """The senders with an event at or after `since` (unix time)."""
        query = (sa.select(events_table.c.sender_id).where(events_table.c.timestamp >= since)
                 .group_by(events_table.c.sender_id).order_by(events_table.c.sender_id))
        if self._empty():
            return []
        with self.engine.connect() as db:
            return [row.sender_id for row in db.execute(query)]

    def conversation_events(self, sender_id: str) -> List[Dict[str, Any]]:
        """Every stored event of one conversation as a dict, in the order Rasa reads them (id)."""
        query = (sa.select(events_table.c.data).where(events_table.c.sender_id == sender_id)
                 .order_by(events_table.c.id))
        if self._empty():
            return []
        with self.engine.connect() as db:
            return [json.loads(row.data) for row in db.execute(query)]

    def close(self) -> None:
        self.engine.dispose()


def open_reader(path: Optional[Union[str, os.PathLike]], environ: Mapping[str, str] = os.environ
                ) -> TrackerReader:
    """The reader for an endpoints file (the web app's TRACKER_ENDPOINTS)."""
    if not path:
        raise StoreConfigError("no endpoints file names the conversation store")
    return TrackerReader.from_endpoints(path, environ)

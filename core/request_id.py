"""One request id per turn, in every process's log lines, and timestamps on every line.

A turn's id is made where the turn enters (the channel, channels/inbound.py), or taken from
a sane incoming `X-Request-Id` (nginx sets `$request_id`, deploy/nginx.cluster.conf.template).
It travels in the user message's metadata (`request_id`) to the action server, which reads
it from the tracker Rasa posts (actions/server.py), and from there as the `X-Request-Id`
header to the progress service (core/progress_client.py), which logs it too.

Inside a process the id lives in a context variable (`current()`), set for the request or
turn being handled; `install()` adds a record factory that appends ` [req <id>]` to every
log record made while an id is set, whoever logs (Rasa, sanic, our code), so no formatter
needs to know about it. `configure_logging()` is the web app's and the progress service's
handler: an ISO 8601 timestamp on every line, or one JSON object per line with
LOG_FORMAT=json. Records pass core/log_privacy first when it is installed before this.
"""
import base64
import contextvars
import datetime as dt
import json
import logging
import os
import re
import secrets
from typing import Any, Mapping, Optional

HEADER = "X-Request-Id"
METADATA_KEY = "request_id"
LOG_FORMAT_VARIABLE = "LOG_FORMAT"  # "json" for one JSON object per line; else text

# What we accept from outside (nginx's $request_id is 32 hex digits): letters, digits and
# "-", "_", ".", ":" only, 8 to 64 of them; anything else is replaced by a fresh id, so a
# client cannot write into our log lines.
_SANE = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")

_current: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
_installed = False


def new() -> str:
    """26 characters of base32 (a-z, 2-7): 128 random bits, and no long run of digits a
    log scanner for ID numbers could mistake for one (a hex uuid has one now and then)."""
    return base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=").lower()


def sane(value: Any) -> Optional[str]:
    """`value` if it may serve as a request id, else None."""
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    if isinstance(value, str) and _SANE.match(value):
        return value
    return None


def from_headers(headers: Optional[Mapping[str, Any]]) -> str:
    """The incoming X-Request-Id when sane, else a new id."""
    value = None
    if headers is not None:
        try:
            value = headers.get(HEADER.lower()) or headers.get(HEADER)
        except Exception:  # noqa: BLE001 - odd header objects: a new id
            value = None
    return sane(value) or new()


def from_metadata(metadata: Any) -> Optional[str]:
    if isinstance(metadata, Mapping):
        return sane(metadata.get(METADATA_KEY))
    return None


def from_tracker(tracker: Any) -> Optional[str]:
    """The id of the turn an action runs for: the latest user event's metadata (what the
    channel set), in the tracker JSON Rasa posts to the action server."""
    if not isinstance(tracker, Mapping):
        return None
    latest = tracker.get("latest_message")
    found = from_metadata(latest.get("metadata")) if isinstance(latest, Mapping) else None
    if found:
        return found
    events = tracker.get("events")
    if isinstance(events, list):
        for event in reversed(events):
            if isinstance(event, Mapping) and event.get("event") == "user":
                return from_metadata(event.get("metadata"))
    return None


def current() -> str:
    return _current.get()


def set_current(value: Optional[str]) -> contextvars.Token:
    return _current.set(value or "")


def reset(token: contextvars.Token) -> None:
    try:
        _current.reset(token)
    except ValueError:  # set in another context (a callback): leave it
        _current.set("")


def install() -> None:
    """Idempotent: every log record made while an id is set ends with ` [req <id>]`."""
    global _installed
    if _installed:
        return
    _installed = True
    make_record = logging.getLogRecordFactory()

    def with_request_id(*args, **kwargs) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        request_id = _current.get()
        record.request_id = request_id
        if request_id:
            try:
                message = record.getMessage()
            except Exception:  # noqa: BLE001 - a malformed call is logging's to report
                return record
            record.msg, record.args = f"{message} [req {request_id}]", None
        return record

    logging.setLogRecordFactory(with_request_id)


class IsoFormatter(logging.Formatter):
    """`2026-12-03T12:40:16.123+00:00 INFO name: message` (UTC, ISO 8601)."""

    def formatTime(self, record: logging.LogRecord, datefmt: Optional[str] = None) -> str:
        moment = dt.datetime.fromtimestamp(record.created, tz=dt.timezone.utc)
        return moment.isoformat(timespec="milliseconds")


class JsonFormatter(IsoFormatter):
    """One JSON object per line: time, level, logger, message, request_id (if any)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record), "level": record.levelname,
                 "logger": record.name, "message": record.getMessage()}
        if getattr(record, "request_id", ""):
            entry["request_id"] = record.request_id
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def formatter(environ: Mapping[str, str] = os.environ) -> logging.Formatter:
    if (environ.get(LOG_FORMAT_VARIABLE) or "").strip().lower() == "json":
        return JsonFormatter()
    return IsoFormatter(TEXT_FORMAT)


def configure_logging(level: int = logging.INFO, logger: Optional[logging.Logger] = None,
                      environ: Mapping[str, str] = os.environ) -> logging.Handler:
    """A stderr handler with timestamps (or JSON) on `logger` (default: the root logger);
    installs the request-id record factory. Returns the handler."""
    install()
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(environ))
    target = logger or logging.getLogger()
    target.addHandler(handler)
    target.setLevel(level)
    return handler

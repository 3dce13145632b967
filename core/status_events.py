"""The status-change event the progress system sends to the bot (issue 19, docs/operations.md
"Status-change notifications"): its body, its signature, and the check of both. Pure.

The progress service (or the agency's real system, which replaces it) POSTs, after a
status push that changed an application's status, a small JSON body to PROGRESS_EVENTS_URL:

    {"application_no": "NC2025000101", "status": "approved",
     "status_updated_at": "2026-12-03 10:00:00+08:00", "event_id": "<random hex>"}

with two headers: X-Progress-Timestamp (Unix seconds) and X-Progress-Signature, the hex
HMAC-SHA256 over "<timestamp>." + body with the shared secret PROGRESS_EVENTS_SECRET.
The receiver (the WeChat channel, channels/wechat.py) accepts it only with the right
signature and a timestamp at most TOLERANCE_SECONDS away from its clock.
"""
import dataclasses
import hashlib
import hmac
import json
import re
import secrets
from typing import Any, Optional

from core.formats import SANE_APPLICATION_NO, STATUS_LABELS

# The URL and the secret are settings of the two ends (progress_service/settings.py,
# wechat_channel/config.py), not read here: only those two processes get them.
TIMESTAMP_HEADER = "X-Progress-Timestamp"
SIGNATURE_HEADER = "X-Progress-Signature"
TOLERANCE_SECONDS = 300
MAX_BODY_BYTES = 4096
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_HEX = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclasses.dataclass(frozen=True)
class StatusEvent:
    application_no: str
    status: str
    updated_at: str
    event_id: str = ""


def event_body(application_no: str, status: str, updated_at: str,
               event_id: Optional[str] = None) -> bytes:
    return json.dumps({"application_no": application_no, "status": status,
                       "status_updated_at": updated_at,
                       "event_id": event_id or secrets.token_hex(8)},
                      ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    message = timestamp.encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes, now: float) -> dict:
    timestamp = str(int(now))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, timestamp, body),
            "Content-Type": "application/json; charset=utf-8"}


def verify(secret: Optional[str], timestamp: Any, signature: Any, body: bytes, now: float,
           tolerance: float = TOLERANCE_SECONDS) -> bool:
    """True only for a configured secret, a fresh timestamp and the right signature.
    Anything else a client can send (missing, non-ASCII, absurd values) is False."""
    if not secret or not isinstance(timestamp, str) or not isinstance(signature, str):
        return False
    if not _TIMESTAMP.match(timestamp) or not _HEX.match(signature):
        return False
    if abs(now - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature.lower())


def parse_event(body: bytes) -> Optional[StatusEvent]:
    """The event in a verified body, or None when it is not one."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    number, status = data.get("application_no"), data.get("status")
    updated_at, event_id = data.get("status_updated_at"), data.get("event_id") or ""
    if not isinstance(number, str) or not SANE_APPLICATION_NO.match(number):
        return None
    if status not in STATUS_LABELS:
        return None
    if not isinstance(updated_at, str) or not 0 < len(updated_at) <= 64:
        return None
    if not isinstance(event_id, str) or len(event_id) > 64:
        return None
    return StatusEvent(number, status, updated_at, event_id)

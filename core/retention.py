"""How long conversations are kept, as the privacy notice tells people.

CONVERSATION_RETENTION_DAYS (default 30, at least 1, may be fractional) is the period
after which the tracker store deletes a conversation (channels/config.py reads it for
channels/tracker_store.py). The notice in the web widget and in the WeChat welcome
(knowledge/channel_texts.yml: privacy_notice) names the same period: web/config.py and
wechat_channel/config.py read it through this module, and a test keeps the three
readings equal.
"""
from typing import Mapping

ENV_VAR = "CONVERSATION_RETENTION_DAYS"
DEFAULT_DAYS = 30.0
MINIMUM_DAYS = 1.0


class RetentionError(ValueError):
    """CONVERSATION_RETENTION_DAYS cannot be used; the process must not start with it."""


def retention_days(environ: Mapping[str, str]) -> float:
    raw = (environ.get(ENV_VAR) or "").strip()
    if not raw:
        return DEFAULT_DAYS
    try:
        value = float(raw)
    except ValueError:
        raise RetentionError(f"{ENV_VAR}={raw!r} is not a number") from None
    if not value >= MINIMUM_DAYS or value == float("inf"):
        raise RetentionError(f"{ENV_VAR}={raw!r}: at least {MINIMUM_DAYS:g} (days)")
    return value


def days_text(days: float) -> str:
    """30.0 -> "30", 7.5 -> "7.5": the number as the notice writes it."""
    return str(int(days)) if days == int(days) else f"{days:.6g}"

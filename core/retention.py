"""How long conversations are kept, as the privacy notice tells people, and how long the
console's audit rows are kept.

CONVERSATION_RETENTION_DAYS (default 30, at least 1, may be fractional) is the period
after which the tracker store deletes a conversation (channels/config.py reads it for
channels/tracker_store.py). The notice in the web widget and in the WeChat welcome
(knowledge/channel_texts.yml: privacy_notice) names the same period: web/config.py and
wechat_channel/config.py read it through this module, and a test keeps the three
readings equal.
"""
from typing import Mapping, Type

ENV_VAR = "CONVERSATION_RETENTION_DAYS"
DEFAULT_DAYS = 30.0
MINIMUM_DAYS = 1.0

# The console's audit trail (web/agents.py `audit`: who looked up which masked application
# number, question or conversation code, when, with what outcome) is kept AUDIT_RETENTION_DAYS
# (default 184, at least 1) and then deleted by `make purge-conversations`
# (tools/purge_conversations.py). Why 184: the audit is a log of access to personal data,
# and the Cybersecurity Law (网络安全法, art. 21) asks that such logs be kept no less than
# six months; 184 days is six months in every case. PIPL's minimum-necessary rule (art. 19)
# asks for no longer than needed, so the default is that floor, not more
# (docs/security.md "Audit rows").
AUDIT_ENV_VAR = "AUDIT_RETENTION_DAYS"
DEFAULT_AUDIT_DAYS = 184.0


class RetentionError(ValueError):
    """CONVERSATION_RETENTION_DAYS cannot be used; the process must not start with it."""


def number_setting(environ: Mapping[str, str], name: str, default: float, minimum: float,
                   error: Type[ValueError] = ValueError, unit: str = "") -> float:
    """A finite number >= `minimum` from the environment, `default` when unset or empty;
    anything else raises `error` (the process must not start with it)."""
    raw = (environ.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise error(f"{name}={raw!r} is not a number") from None
    if not minimum <= value < float("inf"):
        raise error(f"{name}={raw!r}: at least {minimum:g}{unit}")
    return value


def retention_days(environ: Mapping[str, str]) -> float:
    return number_setting(environ, ENV_VAR, DEFAULT_DAYS, MINIMUM_DAYS, RetentionError, " (days)")


def audit_retention_days(environ: Mapping[str, str]) -> float:
    """AUDIT_RETENTION_DAYS: how long the console's audit rows are kept."""
    return number_setting(environ, AUDIT_ENV_VAR, DEFAULT_AUDIT_DAYS, MINIMUM_DAYS, RetentionError, " (days)")


def days_text(days: float) -> str:
    """30.0 -> "30", 7.5 -> "7.5": the number as the notice writes it."""
    return str(int(days)) if days == int(days) else f"{days:.6g}"

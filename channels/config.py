"""Settings of the Rasa server process that are not in credentials.yml or endpoints.yml.

Rasa reads its channels from credentials.yml and its stores from endpoints.yml; what our
own code in this process needs from the environment is read here, once, with its default
(the WeChat channel's settings are in wechat_channel/config.py, next to its protocol).
Code takes a settings object as a constructor argument whose default comes from here, so
tests pass their own values instead of patching the environment.
"""
import dataclasses
import os
from typing import Mapping

from core import retention


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the process must not start with it
    (core.retention.RetentionError for CONVERSATION_RETENTION_DAYS, also a ValueError)."""


def _number(environ: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    return retention.number_setting(environ, name, default, minimum, SettingsError)


@dataclasses.dataclass(frozen=True)
class ConversationStoreSettings:
    """The tracker store (channels/tracker_store.py, docs/security.md "Conversations at rest")."""

    # A conversation (every event of a sender) whose last event is older than this is
    # deleted; of a sender who keeps coming back, the sessions that ended before it.
    # CONVERSATION_RETENTION_DAYS, read by core/retention.py: the privacy notice of the
    # widget and of WeChat names the same period.
    retention_days: float = retention.DEFAULT_DAYS
    # A progress lookup left half-way (the form still asking) is redacted once the
    # conversation has been idle this long. Equal to session_expiration_time in
    # domain/core.yml: by then the next message starts a new session, which never
    # resumes the old lookup, so nothing the form could still need is lost.
    abandoned_lookup_minutes: float = 60.0
    # How often the Rasa process purges (retention + abandoned lookups), starting at
    # process start; 0: only at process start (then run `make purge-conversations` from cron).
    purge_interval_minutes: float = 60.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "ConversationStoreSettings":
        return cls(
            retention_days=retention.retention_days(environ),
            abandoned_lookup_minutes=_number(environ, "CONVERSATION_ABANDONED_LOOKUP_MINUTES",
                                             cls.abandoned_lookup_minutes, 1),
            purge_interval_minutes=_number(environ, "CONVERSATION_PURGE_INTERVAL_MINUTES",
                                           cls.purge_interval_minutes, 0),
        )


@dataclasses.dataclass(frozen=True)
class StatusEventSettings:
    """The progress system's signed status events (core/status_events.py,
    docs/operations.md "Status-change notifications"): the web channel's route checks them
    with this secret (the WeChat channel reads the same variable in wechat_channel/config.py)."""

    events_secret: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "StatusEventSettings":
        return cls(events_secret=environ.get("PROGRESS_EVENTS_SECRET", ""))

"""Settings of the progress service and its importer, read once at import.

This package stands in for the agency's system: it depends only on core/ and owns its
settings here, so it can be replaced (or deleted) without touching the bot.
"""
import os
import pathlib

from core import defaults


def _env(name: str, default: str = "") -> str:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


HOST = _env("PROGRESS_HOST", defaults.HOST)
PORT = int(_env("PROGRESS_PORT", str(defaults.PROGRESS_PORT)))
# SQLite by default; PostgreSQL e.g. postgresql://user:pass@host:5432/db
DATABASE_URL = _env("PROGRESS_DATABASE_URL", defaults.PROGRESS_DATABASE_URL)
# What the service does with its database's schema at start (docs/deploy.md "Migrations"):
# `migrate` (default: `make run`, tests) brings it to the current version itself; `check`
# (production, the cluster) only checks it is current and refuses to start otherwise:
# `make migrate` runs as a step before the processes start.
SCHEMA_AT_START = _env("PROGRESS_SCHEMA_AT_START", "migrate")
# Reading key (the bot and the console present it as X-API-Key).
API_KEY = _env("PROGRESS_API_KEY")
# Key for writing (status pushes) by the agency's system.
AGENCY_KEY = _env("PROGRESS_AGENCY_KEY")
# HMAC key for the stored ID-card suffixes. Changing it makes stored suffixes unusable.
ID_HASH_KEY = _env("PROGRESS_ID_HASH_KEY")
# HMAC secret for hotline-agent tokens (X-Agent-Token), shared with the agent console.
AGENT_SECRET = _env("PROGRESS_AGENT_SECRET")
# Abuse limits per window (docs/progress.md, "Lockout"): failed verifications for one
# number from one identity; from one identity over all numbers; for one number from
# identities that never proved it (beyond it, only those that did may try: step-up).
LOCKOUT_MAX_FAILURES = int(_env("PROGRESS_LOCKOUT_MAX_FAILURES", "5"))
LOCKOUT_IDENTITY_MAX_FAILURES = int(_env("PROGRESS_LOCKOUT_IDENTITY_MAX_FAILURES",
                                         str(3 * LOCKOUT_MAX_FAILURES)))
LOCKOUT_NUMBER_MAX_FAILURES = int(_env("PROGRESS_LOCKOUT_NUMBER_MAX_FAILURES",
                                       str(4 * LOCKOUT_MAX_FAILURES)))
LOCKOUT_WINDOW_SECONDS = int(_env("PROGRESS_LOCKOUT_WINDOW_SECONDS", "900"))
# How long an identity that proved a number (right suffix) stays known for it.
LOCKOUT_TRUST_DAYS = int(_env("PROGRESS_LOCKOUT_TRUST_DAYS", "90"))
# The global failure-rate alarm (issue 16, docs/security.md): failed suffix checks over all
# numbers and senders per minute, averaged over the window, from which the service raises
# the `progress_failure_alarm` gauge and logs one warning per window; 0 switches it off.
ALARM_FAILURES_PER_MINUTE = float(_env("PROGRESS_ALARM_FAILURES_PER_MINUTE", "20"))
ALARM_WINDOW_MINUTES = float(_env("PROGRESS_ALARM_WINDOW_MINUTES", "5"))
# Status-change events to the bot (issue 19, progress_service/events.py): after a push that
# changed a status, a POST signed with the secret (HMAC-SHA256) to the URL; unset: none.
EVENTS_URL = _env("PROGRESS_EVENTS_URL")
EVENTS_SECRET = _env("PROGRESS_EVENTS_SECRET")
EVENTS_TIMEOUT_SECONDS = float(_env("PROGRESS_EVENTS_TIMEOUT_SECONDS", "3"))
# Where `make run` keeps generated development secrets (git-ignored).
DEV_SECRETS_FILE = pathlib.Path(_env("PROGRESS_DEV_SECRETS_FILE", str(defaults.DEV_SECRETS_FILE)))
STATE_DIR = defaults.STATE_DIR

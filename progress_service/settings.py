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
# Where `make run` keeps generated development secrets (git-ignored).
DEV_SECRETS_FILE = pathlib.Path(_env("PROGRESS_DEV_SECRETS_FILE", str(defaults.DEV_SECRETS_FILE)))
STATE_DIR = defaults.STATE_DIR

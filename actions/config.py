"""Every environment variable the assistant's own code reads, with its default.

Read once, when this module is imported at start-up. Code that needs a setting takes
it as a constructor argument whose default comes from here, so tests pass their own
values instead of patching globals. Secrets have no default: `make run` generates
development values into .state/secrets.env (see progress_service/devsecrets.py);
production sets them in the environment.

Other areas add their settings below, in their own section.
"""
import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _env(name: str, default: str = "") -> str:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


# --- application progress (actions/progress_client.py, progress_service/) ---------
# Where the action server finds the progress service and the key it presents.
PROGRESS_SERVICE_URL = _env("PROGRESS_SERVICE_URL", "http://127.0.0.1:8001")
PROGRESS_API_KEY = _env("PROGRESS_API_KEY")
# One request to the service, connect + answer; the action answers within ~3 s in total.
PROGRESS_TIMEOUT_SECONDS = float(_env("PROGRESS_TIMEOUT_SECONDS", "2.0"))
# Worker threads for lookups (a pool of their own, so a stuck service cannot starve
# the action server's default pool).
PROGRESS_LOOKUP_THREADS = int(_env("PROGRESS_LOOKUP_THREADS", "4"))
# ASSUMPTION: the real number format is unknown. Applied after normalisation
# (half-width, upper case, spaces and dashes removed).
PROGRESS_APPLICATION_NO_PATTERN = _env("PROGRESS_APPLICATION_NO_PATTERN", r"^[A-Z]{2}\d{8,20}$")
# Failed attempts (bad format or no match) in one conversation before the bot stops
# asking and offers the hotline.
PROGRESS_MAX_ATTEMPTS = int(_env("PROGRESS_MAX_ATTEMPTS", "3"))

# Service side (progress_service/app.py, importer.py).
PROGRESS_HOST = _env("PROGRESS_HOST", "127.0.0.1")
PROGRESS_PORT = int(_env("PROGRESS_PORT", "8001"))
# SQLite by default; PostgreSQL e.g. postgresql://user:pass@host:5432/db
PROGRESS_DATABASE_URL = _env(
    "PROGRESS_DATABASE_URL", f"sqlite:///{ROOT / '.state' / 'progress.db'}"
)
# Key for writing (status pushes) by the agency's system; reading uses PROGRESS_API_KEY.
PROGRESS_AGENCY_KEY = _env("PROGRESS_AGENCY_KEY")
# HMAC key for the stored ID-card suffixes. Changing it makes stored suffixes unusable.
PROGRESS_ID_HASH_KEY = _env("PROGRESS_ID_HASH_KEY")
# HMAC secret for hotline-agent tokens (X-Agent-Token), shared with the agent console.
PROGRESS_AGENT_SECRET = _env("PROGRESS_AGENT_SECRET")
PROGRESS_AGENT_TOKEN_TTL_SECONDS = int(_env("PROGRESS_AGENT_TOKEN_TTL_SECONDS", str(8 * 3600)))
# Abuse limit: this many failed verifications for one number or one sender within
# the window lock further lookups until the window has passed.
PROGRESS_LOCKOUT_MAX_FAILURES = int(_env("PROGRESS_LOCKOUT_MAX_FAILURES", "5"))
PROGRESS_LOCKOUT_WINDOW_SECONDS = int(_env("PROGRESS_LOCKOUT_WINDOW_SECONDS", "900"))
# Where `make run` keeps generated development secrets (git-ignored).
PROGRESS_DEV_SECRETS_FILE = pathlib.Path(
    _env("PROGRESS_DEV_SECRETS_FILE", str(ROOT / ".state" / "secrets.env"))
)

# --- step-by-step application guide (actions/guide.py, assistant/guide.py) ------------
# The walk's steps, hints and troubleshooting texts; re-read whenever the file changes.
GUIDE_STEPS_FILE = pathlib.Path(
    _env("GUIDE_STEPS_FILE", str(ROOT / "knowledge" / "guide_steps.yml"))
)

"""Settings of the action server (`python -m actions.server`), read once at import.

Only this process's settings live here; defaults shared with other processes come from
core/defaults.py. Code that needs a setting takes it as a constructor argument whose
default comes from here, so tests pass their own values instead of patching globals.
Secrets have no default: `make run` passes development values from .state/secrets.env
(core/devsecrets.py); production sets them in the environment.
"""
import os
import pathlib

from core import defaults


def _env(name: str, default: str = "") -> str:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


# --- application progress (actions/progress.py) -------------------------------------
# Where the action server finds the progress service and the key it presents.
PROGRESS_SERVICE_URL = _env("PROGRESS_SERVICE_URL", defaults.PROGRESS_SERVICE_URL)
PROGRESS_API_KEY = _env("PROGRESS_API_KEY")
# One request to the service, connect + answer; the action answers within ~3 s in total.
PROGRESS_TIMEOUT_SECONDS = float(_env("PROGRESS_TIMEOUT_SECONDS", str(defaults.PROGRESS_TIMEOUT_SECONDS)))
# Worker threads for lookups (a pool of their own, so a stuck service cannot starve
# the action server's default pool).
PROGRESS_LOOKUP_THREADS = int(_env("PROGRESS_LOOKUP_THREADS", "4"))
# Failed attempts (bad format or no match) in one conversation before the bot stops
# asking and offers the hotline.
PROGRESS_MAX_ATTEMPTS = int(_env("PROGRESS_MAX_ATTEMPTS", "3"))

# --- content (knowledge/) -----------------------------------------------------------------
KNOWLEDGE_DIR = pathlib.Path(_env("KNOWLEDGE_DIR", str(defaults.KNOWLEDGE_DIR)))
# The walk's steps, hints and troubleshooting texts; re-read whenever the file changes.
GUIDE_STEPS_FILE = pathlib.Path(_env("GUIDE_STEPS_FILE", str(KNOWLEDGE_DIR / "guide_steps.yml")))

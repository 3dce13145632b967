"""Defaults shared by several processes, written once.

Each process reads its own environment in its own settings module (actions/config.py,
progress_service/settings.py, web/config.py, tools/stack.py); these are the values they
fall back to, so a port or a path means the same thing everywhere.
"""
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
STATE_DIR = ROOT / ".state"
KNOWLEDGE_DIR = ROOT / "knowledge"

HOST = "127.0.0.1"
RASA_PORT = 5005
ACTIONS_PORT = 5055
PROGRESS_PORT = 8001
WEB_PORT = 8080

RASA_URL = f"http://{HOST}:{RASA_PORT}"
PROGRESS_SERVICE_URL = f"http://{HOST}:{PROGRESS_PORT}"

PROGRESS_DATABASE_URL = f"sqlite:///{STATE_DIR / 'progress.db'}"
DEV_SECRETS_FILE = STATE_DIR / "secrets.env"
AGENT_DB = STATE_DIR / "agents.db"

# One request to the progress service, connect + answer.
PROGRESS_TIMEOUT_SECONDS = 2.0

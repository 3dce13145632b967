"""Fixtures for the web tests: Debian's Chromium through Playwright, a full stack with the
secrets the console needs, a signed-up agent and a seeded application.

Browser: CHROMIUM_PATH (default /usr/bin/chromium, installed by `make install-dev`).
Playwright's own browser downloads are never used. Screenshots go to test-artifacts/web/.
"""
import json
import os
import pathlib
import sqlite3
import subprocess
import sys
import urllib.request

import pytest

from tests.support import skip_or_fail

ROOT = pathlib.Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "web"
CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]

AGENT_USER = "li_agent"
AGENT_PASSWORD = "correct-horse-42"
APPLICATION_NO = "NC2025000123"
APPLICANT_NAME = "张三丰"


@pytest.fixture(scope="session")
def artifacts() -> pathlib.Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


# Module scope, not session: Playwright's sync API keeps an event loop running in the
# main thread while it is open, which breaks later tests that call asyncio.run().
@pytest.fixture(scope="module")
def browser():
    if not os.access(CHROMIUM_PATH, os.X_OK):
        skip_or_fail(f"no Chromium at {CHROMIUM_PATH}; `make install-dev` installs Debian's chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("playwright is not installed; `make install-dev` installs it")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def add_agent(db: pathlib.Path, username: str, password: str) -> subprocess.CompletedProcess:
    """The way an operator does it, without a terminal: password from the environment."""
    env = dict(os.environ, PASSWORD=password, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "web.agents", "--db", str(db), "add", username],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )


def _push_status(progress_url: str, agency_key: str, number: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"{progress_url}/api/v1/applications/{number}/status",
        data=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json", "X-API-Key": agency_key},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read().decode("utf-8"))


class WebStack:
    def __init__(self, handle, env: dict, state_dir: pathlib.Path):
        self.handle = handle
        self.env = env
        self.state_dir = state_dir
        settings = handle.settings
        self.web_url = f"http://127.0.0.1:{settings.web_port}"
        self.rasa_url = f"http://127.0.0.1:{settings.rasa_port}"
        self.progress_url = f"http://127.0.0.1:{settings.progress_port}"
        self.agent_db = pathlib.Path(env["AGENT_DB"])
        self.agent_user, self.agent_password = AGENT_USER, AGENT_PASSWORD
        self.application_no, self.applicant_name = APPLICATION_NO, APPLICANT_NAME
        self.progress_db = state_dir / "progress.db"

    def progress_audit_rows(self):
        with sqlite3.connect(str(self.progress_db)) as db:
            return db.execute(
                "SELECT agent, application_no_masked, outcome FROM progress_agent_audit ORDER BY id"
            ).fetchall()

    def console_audit_rows(self):
        with sqlite3.connect(str(self.agent_db)) as db:
            return db.execute("SELECT username, kind, subject, outcome FROM audit ORDER BY id").fetchall()


@pytest.fixture(scope="session")
def web_stack(running_stack) -> WebStack:
    """The shared stack (tests/conftest.py: Rasa + actions + progress + web with the
    console's secrets), plus an agent account and a seeded application."""
    handle = running_stack
    env = handle.environ
    stack = WebStack(handle, env, handle.settings.state_dir)

    # warm-up: the first message through a fresh Rasa is slow; the console allows 2 s per call
    handle.say("web-warm-up-0001", "你好", timeout=60)

    result = add_agent(stack.agent_db, AGENT_USER, AGENT_PASSWORD)
    assert result.returncode == 0, result.stderr
    _push_status(stack.progress_url, env["PROGRESS_AGENCY_KEY"], APPLICATION_NO, {
        "status": "accepted", "id_last4": "123X", "applicant_name": APPLICANT_NAME,
        "disease": "高血压", "channel": "四川医保APP",
        "submitted_at": "2025-03-01 09:00", "status_updated_at": "2025-03-02 10:30",
    })
    _push_status(stack.progress_url, env["PROGRESS_AGENCY_KEY"], APPLICATION_NO, {
        "status": "expert_review", "status_updated_at": "2025-03-05 15:00", "note": "已转专家组",
    })
    return stack

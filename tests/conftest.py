"""Shared fixtures: the trained model and a running stack on free ports.

`make test` trains before pytest runs, so `trained_model` normally exists; a bare
`pytest` without a model skips the tests that need one (CI=true makes it an error).
Under CI=true any skipped test fails the session (tests/support.py: NoSkipsUnderCI).
"""
import json
import os
import pathlib
import secrets
import socket
import sys
import urllib.request

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support import IN_CI, NoSkipsUnderCI, skip_or_fail  # noqa: E402,F401 (re-exported)
from tools.stack import Stack, StackSettings, build_services  # noqa: E402


def pytest_configure(config):
    """CI=true: a skipped test fails the session, listing every skipped test and why.
    On the controller only (pytest-xdist workers send their reports to it)."""
    if IN_CI and not hasattr(config, "workerinput"):
        config.pluginmanager.register(NoSkipsUnderCI(), "no-skips-under-ci")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def trained_model() -> pathlib.Path:
    path = pathlib.Path(os.environ.get("MODEL_PATH", ROOT / ".state" / "models" / "assistant.tar.gz"))
    if not path.exists():
        skip_or_fail(f"no trained model at {path}; run `make train` (make test does it)")
    return path


def embedded_endpoints(state_dir: pathlib.Path, actions_port: int) -> pathlib.Path:
    """The shipped embedded default (endpoints.yml) as it is, except this stack's own
    action port and SQLite file: the stacks the tests start run what `make run` runs."""
    shipped = yaml.safe_load((ROOT / "endpoints.yml").read_text(encoding="utf-8"))
    assert shipped["tracker_store"].get("dialect") == "sqlite", "endpoints.yml is the embedded default"
    shipped["action_endpoint"]["url"] = f"http://127.0.0.1:{actions_port}/webhook"
    shipped["tracker_store"]["db"] = str(state_dir / "rasa-tracker.db")
    path = state_dir / "endpoints.test.yml"
    path.write_text(yaml.safe_dump(shipped, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def make_settings(state_dir: pathlib.Path, model: pathlib.Path) -> StackSettings:
    """Settings for a test stack: every port free, state in `state_dir`."""
    state_dir.mkdir(parents=True, exist_ok=True)
    settings = StackSettings(state_dir=state_dir, model_path=model)
    for name in settings.port_fields():
        setattr(settings, name, free_port())
    settings.endpoints = embedded_endpoints(state_dir, settings.actions_port)
    return settings


class StackHandle:
    """A started stack plus small helpers to talk to it like a user would."""

    def __init__(self, stack: Stack, settings: StackSettings, environ: dict):
        self.stack = stack
        self.settings = settings
        self.environ = environ

    @property
    def rasa_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.rasa_port}"

    def say(self, sender: str, text: str, timeout: float = 30) -> list:
        """POST to the REST channel; returns the bot's messages."""
        body = json.dumps({"sender": sender, "message": text}).encode("utf-8")
        request = urllib.request.Request(
            f"{self.rasa_url}/webhooks/rest/webhook",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read().decode("utf-8"))

    def say_text(self, sender: str, text: str) -> str:
        return "\n".join(message.get("text", "") for message in self.say(sender, text))


class _Tee:
    """Stack log lines go to a file (shown on failure) instead of flooding pytest."""

    def __init__(self, path: pathlib.Path):
        self.handle = path.open("a", encoding="utf-8")

    def write(self, text):
        self.handle.write(text)

    def flush(self):
        self.handle.flush()


def start_stack(settings: StackSettings, environ=None) -> StackHandle:
    environ = dict(os.environ if environ is None else environ)
    services = build_services(settings, environ)
    log = settings.state_dir / "stack.log"
    stack = Stack(services, output=_Tee(log), environ=environ)
    stack.start()
    if not stack.wait_healthy():
        stack.stop()
        raise RuntimeError("stack did not start:\n" + log.read_text(encoding="utf-8")[-6000:])
    return StackHandle(stack, settings, environ)


@pytest.fixture(scope="session")
def stack_factory(trained_model, tmp_path_factory):
    """Start extra stacks (another state dir, other environment); all stopped at the end."""
    handles = []

    def factory(environ=None, state_dir=None, prepare=None) -> StackHandle:
        """`prepare(settings)` runs once the ports are chosen, before anything starts."""
        directory = state_dir or tmp_path_factory.mktemp("stack")
        settings = make_settings(pathlib.Path(directory), trained_model)
        if prepare is not None:
            prepare(settings)
        handle = start_stack(settings, environ)
        handles.append(handle)
        return handle

    yield factory
    for handle in handles:
        handle.stack.stop()


@pytest.fixture(scope="session")
def running_stack(stack_factory, tmp_path_factory) -> StackHandle:
    """One full stack (Rasa, actions, progress, web) shared by the tests that only talk
    to it. Every Rasa start costs about a minute of model loading, so the web tests use
    this one too (tests/web/conftest.py adds their agent account and application)."""
    state_dir = tmp_path_factory.mktemp("shared-stack")
    environ = dict(os.environ)
    for name in ("RASA_AUTH_TOKEN", "PROGRESS_API_KEY", "PROGRESS_AGENCY_KEY",
                 "PROGRESS_ID_HASH_KEY", "PROGRESS_AGENT_SECRET"):
        environ[name] = secrets.token_urlsafe(24)
    environ["PROGRESS_DATABASE_URL"] = f"sqlite:///{state_dir / 'progress.db'}"
    environ["AGENT_DB"] = str(state_dir / "agents.db")
    return stack_factory(environ=environ, state_dir=state_dir)

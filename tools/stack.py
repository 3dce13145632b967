"""Start every process the assistant needs, in the foreground, and stop them together.

`make run` calls `python -m tools.stack`. Each service's log lines are prefixed with
its name; the stack waits until every service answers its health check, prints the
URLs, and on Ctrl-C / SIGTERM (or when one service dies) stops all of them: each
child runs in its own process group, which is terminated and, if need be, killed.

Tests use `Stack` directly with other ports and state folders.
"""
import argparse
import dataclasses
import os
import pathlib
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Dict, List, Optional

import yaml

from core import defaults
from core.conversation_codes import DATABASE_URL_ENV as CODES_URL_ENV, KEY_ENV as CODES_KEY_ENV
from core.status_subscriptions import DATABASE_URL_ENV as SUBSCRIPTIONS_URL_ENV
from core.devsecrets import ACTION_SECRET_NAMES, RASA_SECRET_NAMES, ensure_dev_secrets
from tools.process_env import EnvironmentPolicy, child_environment, policy
from wechat_channel.config import ENV_VARS as WECHAT_ENV_VARS  # setting name -> WECHAT_* variable

ROOT = defaults.ROOT
VENV_BIN = pathlib.Path(sys.executable).parent

# Every process binds BIND_HOST (default loopback, docs/deploy.md "Configuration"); the
# others reach it there, or on loopback when it binds every address.
BIND_HOST_ENV = "BIND_HOST"
# Origins whose pages may call Rasa from a browser (the widget on the bureau's site):
# CORS_ORIGINS, comma-separated; unset, the demo page's origins (development).
CORS_ENV = "CORS_ORIGINS"
_ORIGIN = re.compile(r"^https?://[^/\s?#,]+$")


def reach_host(bind_host: str) -> str:
    """The address a local client uses for a process bound to `bind_host`."""
    return "127.0.0.1" if bind_host in ("0.0.0.0", "::", "") else bind_host


def url_origins(url: str) -> List[str]:
    """The browser origins of a page at `url`: on a loopback name, both localhost and
    127.0.0.1 (whichever the visitor typed)."""
    parts = urllib.parse.urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    port = f":{parts.port}" if parts.port else ""
    if parts.hostname in ("localhost", "127.0.0.1"):
        return [f"{parts.scheme}://localhost{port}", f"{parts.scheme}://127.0.0.1{port}"]
    return [origin]


def cors_origins(default_page_url: str, environ=os.environ) -> List[str]:
    """CORS_ORIGINS as a list (each `scheme://host[:port]`, or `*`), else the origins of
    `default_page_url` (the demo page). A malformed entry stops the start with its name."""
    text = environ.get(CORS_ENV, "").strip()
    if not text:
        return url_origins(default_page_url)
    origins = [part.strip().rstrip("/") for part in text.split(",") if part.strip()]
    for origin in origins:
        if origin != "*" and not _ORIGIN.match(origin):
            raise ValueError(f"{CORS_ENV}: {origin!r} is not an origin (scheme://host[:port], no path)")
    return origins


@dataclasses.dataclass
class Service:
    name: str
    command: List[str]
    health_url: str
    public_urls: List[str]
    env: Dict[str, str] = dataclasses.field(default_factory=dict)
    startup_timeout: float = 180.0
    # what it inherits from the stack's environment (tools/process_env.py); None: all of it
    environment: Optional[EnvironmentPolicy] = None
    # readiness (docs/deploy.md): once set, the service counts as up when this answers 2xx
    # too (its database / stores reachable), not only its liveness route
    ready_url: str = ""


@dataclasses.dataclass
class StackSettings:
    """Ports and paths; defaults are what `make run` uses."""

    rasa_port: int = defaults.RASA_PORT
    actions_port: int = defaults.ACTIONS_PORT
    progress_port: int = defaults.PROGRESS_PORT
    web_port: int = defaults.WEB_PORT
    # Prometheus metrics, one internal port per process (core/metrics.py; 0: none); like
    # every *_port field read from the upper-cased variable (RASA_METRICS_PORT, ...)
    rasa_metrics_port: int = 9103
    actions_metrics_port: int = 9102
    progress_metrics_port: int = 9101
    web_metrics_port: int = 9104
    state_dir: pathlib.Path = defaults.STATE_DIR
    model_path: pathlib.Path = defaults.STATE_DIR / "models"
    endpoints: pathlib.Path = ROOT / "endpoints.yml"
    credentials: pathlib.Path = ROOT / "credentials.yml"
    host: str = defaults.HOST
    extra_env: Dict[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_env(cls, environ=os.environ) -> "StackSettings":
        """Every `*_port` field is read from the upper-cased variable (RASA_PORT, ...)."""
        settings = cls()
        for field in dataclasses.fields(cls):
            if field.name.endswith("_port") and environ.get(field.name.upper()):
                setattr(settings, field.name, int(environ[field.name.upper()]))
        if environ.get(BIND_HOST_ENV):
            settings.host = environ[BIND_HOST_ENV].strip()
        if environ.get("STACK_STATE_DIR"):
            settings.state_dir = pathlib.Path(environ["STACK_STATE_DIR"])
        if environ.get("RASA_MODEL"):
            settings.model_path = pathlib.Path(environ["RASA_MODEL"])
        if environ.get("RASA_ENDPOINTS"):
            settings.endpoints = pathlib.Path(environ["RASA_ENDPOINTS"])
        if environ.get("RASA_CREDENTIALS"):  # production: deploy/credentials.production.yml
            settings.credentials = pathlib.Path(environ["RASA_CREDENTIALS"])
        return settings

    def port_fields(self) -> List[str]:
        return [f.name for f in dataclasses.fields(self) if f.name.endswith("_port")]


def runtime_credentials(settings: StackSettings, environ=os.environ) -> pathlib.Path:
    """credentials.yml plus the channels switched on by the environment.

    Written to the state folder; it holds `${VAR}` references, never secret values.
    """
    text = settings.credentials.read_text(encoding="utf-8")
    configured = yaml.safe_load(text) or {}
    if environ.get("WECHAT_TOKEN") and "channels.wechat.WeChatInput" not in configured:
        text += (
            "\n# added by tools/stack.py because WECHAT_TOKEN is set\n"
            "channels.wechat.WeChatInput:\n"
        )
        for key, var in WECHAT_ENV_VARS.items():
            if environ.get(var):  # Rasa refuses ${VAR} for unset variables
                text += f"  {key}: ${{{var}}}\n"
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    path = settings.state_dir / "credentials.runtime.yml"
    path.write_text(text, encoding="utf-8")
    return path


ACTION_TOKEN_LINE = "  token: ${ACTION_SERVER_TOKEN}  # added by tools/stack.py\n"


def runtime_endpoints(settings: StackSettings) -> pathlib.Path:
    """The endpoints file with the action server's shared secret: Rasa sends it as the
    `token` query parameter on every action call (actions/server.py checks it).

    Added here as a `${ACTION_SERVER_TOKEN}` reference (never the value) unless the file
    sets a token already, so endpoints.yml and deploy/endpoints.production.yml stay
    readable by tools that don't set the variable (make purge-conversations).
    """
    text = settings.endpoints.read_text(encoding="utf-8")
    loaded = yaml.safe_load(text) or {}
    action = loaded.get("action_endpoint")
    if isinstance(action, dict) and "token" not in action:
        text, count = re.subn(r"(?m)^action_endpoint:[ \t]*(#[^\n]*)?\n",
                              lambda m: m.group(0) + ACTION_TOKEN_LINE, text, count=1)
        if count != 1 or (yaml.safe_load(text) or {})["action_endpoint"].get("token") is None:
            raise ValueError(f"{settings.endpoints}: cannot add the action server token; "
                             "add `token: ${ACTION_SERVER_TOKEN}` under action_endpoint")
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    path = settings.state_dir / "endpoints.runtime.yml"
    path.write_text(text, encoding="utf-8")
    return path


def action_server_token(settings: StackSettings, environ=os.environ) -> str:
    """ACTION_SERVER_TOKEN from the environment, else a development value in secrets.env."""
    if environ.get("ACTION_SERVER_TOKEN"):
        return environ["ACTION_SERVER_TOKEN"]
    path = settings.state_dir / "secrets.env"
    return ensure_dev_secrets(path, environ, names=ACTION_SECRET_NAMES)["ACTION_SERVER_TOKEN"]


# The stand-in for the agency's progress system is optional: without the folder (the real
# system replaces it; set PROGRESS_SERVICE_URL and the keys) everything else still runs.
STAND_IN_PRESENT = (ROOT / "progress_service" / "app.py").exists()


def build_services(settings: StackSettings, environ=os.environ,
                   with_stand_in: bool = STAND_IN_PRESENT) -> List[Service]:
    credentials = runtime_credentials(settings, environ)
    rasa = [  # `rasa run` through channels/launcher.py: the token from the environment
        str(VENV_BIN / "python"), "-m", "channels.launcher",
        "--model", str(settings.model_path),
        "--port", str(settings.rasa_port),
        "--interface", settings.host,
        "--cors", *cors_origins(environ.get("WEB_PUBLIC_URL")
                                or f"http://{reach_host(settings.host)}:{settings.web_port}", environ),
        "--endpoints", str(runtime_endpoints(settings)),
        "--credentials", str(credentials),
    ]
    token = rasa_auth_token(settings, environ)
    if token:
        # The HTTP API (tracker access, model replacement) exists only behind a token, which
        # the launcher reads from RASA_AUTH_TOKEN: never on the command line (`ps` shows it).
        rasa += ["--enable-api"]
    base = f"http://{reach_host(settings.host)}"
    channels = yaml.safe_load(credentials.read_text(encoding="utf-8")) or {}
    action_token = action_server_token(settings, environ)
    services = [
        Service(
            # actions/server.py: rasa-sdk's app on settings.host (loopback) behind the token
            name="actions",
            command=[str(VENV_BIN / "python"), "-m", "actions.server",
                     "--port", str(settings.actions_port)],
            health_url=f"{base}:{settings.actions_port}/health",
            public_urls=[f"action server  {base}:{settings.actions_port}/webhook"],
            env={"ACTIONS_HOST": settings.host, "ACTION_SERVER_TOKEN": action_token},
        ),
        Service(
            name="rasa",
            command=rasa,
            health_url=f"{base}:{settings.rasa_port}/",
            public_urls=[  # the channels the credentials file switches on
                url for channel, url in (
                    ("MaskedRestInput", f"REST channel   {base}:{settings.rasa_port}/webhooks/rest/webhook"),
                    ("MaskedSocketIOInput", f"socket.io      {base}:{settings.rasa_port}/socket.io"),
                    ("WebInput", f"web channel    {base}:{settings.rasa_port}/webhooks/web/webhook"),
                    ("WeChatInput", f"WeChat         {base}:{settings.rasa_port}/webhooks/wechat/webhook"),
                ) if any(name.endswith("." + channel) for name in channels)
            ],
            env={"ACTION_ENDPOINT_URL": f"{base}:{settings.actions_port}/webhook",
                 "ACTION_SERVER_TOKEN": action_token,
                 "RASA_AUTH_TOKEN": token,
                 # Rasa's usage telemetry and its crash reports (sentry.io, which may quote
                 # what was said) never leave the machine unless the deployer says so
                 "RASA_TELEMETRY_ENABLED": environ.get("RASA_TELEMETRY_ENABLED", "false")},
        ),
        web_service(settings, environ, rasa_token=token),
    ]
    # The progress service starts first; actions and the agent console get its URL
    # and keys (development keys from .state/secrets.env unless set in the environment).
    progress, client_env = progress_service(settings, environ)
    for service in services:
        if service.name in ("actions", "web"):
            for name, value in client_env.items():
                service.env.setdefault(name, value)
    # Conversation codes (issue 19): the action server issues them, the console reads them;
    # one store for both. Only the issuer holds the key that derives a code from its row.
    codes_url, codes_key = conversation_codes_env(settings, environ)
    for service in services:
        if service.name in ("actions", "web"):  # web reads codes, never mints them
            service.env[CODES_URL_ENV] = codes_url
            service.env[CODES_KEY_ENV] = codes_key if service.name == "actions" else ""
    # Status-change notifications (issue 19, docs/operations.md): the action server writes
    # offers, the WeChat channel (Rasa) subscriptions, one store for both; the progress
    # service signs its events to the channel's internal route with a secret of the two.
    status_events_env(settings, environ, progress, services, channels)
    # Each process inherits only the variables its code reads, and holds only its own
    # secrets (tools/process_env.py): agent tokens skip the ID check, so only the console
    # holds their secret, never the public bot's action server or Rasa.
    web = next(service for service in services if service.name == "web")
    read_files = {"rasa": (settings.endpoints, credentials),
                  "web": (pathlib.Path(web.env["TRACKER_ENDPOINTS"]),)}
    for service in [progress, *services]:
        service.environment = policy(service.name, read_files.get(service.name, ()))
    # Operations (docs/deploy.md): each process's metrics port (loopback unless
    # METRICS_HOST says otherwise); the stack waits for Rasa's and the progress service's
    # readiness (stores, database), not only for their liveness routes.
    for service in [progress, *services]:
        port = getattr(settings, f"{service.name}_metrics_port")
        service.env[f"{service.name.upper()}_METRICS_PORT"] = str(port)
        if service.name == "rasa" and any(name.endswith(".WebInput") for name in channels):
            service.ready_url = f"{base}:{settings.rasa_port}/webhooks/web/ready"
        if service.name == "progress":
            service.ready_url = service.health_url.rsplit("/", 1)[0] + "/ready"
    return ([progress] if with_stand_in else []) + services


EVENTS_SECRET_ENV, EVENTS_URL_ENV = "PROGRESS_EVENTS_SECRET", "PROGRESS_EVENTS_URL"


def status_events_env(settings: StackSettings, environ, progress: Service,
                      services: List[Service], channels) -> None:
    """The subscription store's URL for actions and Rasa (an SQLite file in the state folder
    unless STATUS_SUBSCRIPTIONS_DATABASE_URL is set); with the WeChat or the web channel on,
    the progress service's PROGRESS_EVENTS_URL (unless set: Rasa's
    /webhooks/wechat/status-events, which also updates the widget's watches, or without
    WeChat /webhooks/web/status-events) and a PROGRESS_EVENTS_SECRET (a development one in
    secrets.env unless set)."""
    url = (environ.get(SUBSCRIPTIONS_URL_ENV)
           or f"sqlite:///{settings.state_dir / 'status-subscriptions.db'}")
    for service in services:
        if service.name in ("actions", "rasa"):
            service.env[SUBSCRIPTIONS_URL_ENV] = url
    route = events_route(channels)
    if route is None:
        return
    secret = environ.get(EVENTS_SECRET_ENV) or ensure_dev_secrets(
        settings.state_dir / "secrets.env", environ, names=(EVENTS_SECRET_ENV,))[EVENTS_SECRET_ENV]
    rasa = next(service for service in services if service.name == "rasa")
    rasa.env[EVENTS_SECRET_ENV] = secret
    progress.env[EVENTS_SECRET_ENV] = secret
    progress.env[EVENTS_URL_ENV] = environ.get(EVENTS_URL_ENV) or (
        f"http://{reach_host(settings.host)}:{settings.rasa_port}{route}")


def events_route(channels) -> Optional[str]:
    """Rasa's route for the progress system's status events (docs/operations.md): the
    WeChat channel's when it is on (it records the widget's watches too), else the web
    channel's; None without either."""
    names = [str(name) for name in channels]
    if any(name.endswith(".WeChatInput") for name in names):
        return "/webhooks/wechat/status-events"
    if any(name.endswith(".WebInput") for name in names):
        return "/webhooks/web/status-events"
    return None


def conversation_codes_env(settings: StackSettings, environ=os.environ):
    """(database URL, key) of the conversation-code store (core/conversation_codes.py):
    the environment's, else an SQLite file in the state folder and a development key kept
    in its secrets.env."""
    url = environ.get(CODES_URL_ENV) or f"sqlite:///{settings.state_dir / 'conversation-codes.db'}"
    key = environ.get(CODES_KEY_ENV) or ensure_dev_secrets(
        settings.state_dir / "secrets.env", environ, names=(CODES_KEY_ENV,))[CODES_KEY_ENV]
    return url, key


def progress_service(settings: StackSettings, environ=os.environ):
    """The stand-in for the agency's progress system (progress_service/, docs/progress.md)."""
    secrets = ensure_dev_secrets(settings.state_dir / "secrets.env", environ)
    base = f"http://{reach_host(settings.host)}:{settings.progress_port}"
    env = {
        **secrets,
        "PROGRESS_HOST": settings.host,
        "PROGRESS_PORT": str(settings.progress_port),
        "PROGRESS_DATABASE_URL": environ.get("PROGRESS_DATABASE_URL")
        or f"sqlite:///{settings.state_dir / 'progress.db'}",
    }
    client_env = {
        "PROGRESS_SERVICE_URL": environ.get("PROGRESS_SERVICE_URL") or base,
        "PROGRESS_API_KEY": secrets["PROGRESS_API_KEY"],
        "PROGRESS_AGENT_SECRET": secrets["PROGRESS_AGENT_SECRET"],
    }
    service = Service(
        name="progress",
        command=[str(VENV_BIN / "python"), "-m", "progress_service.app"],
        health_url=f"{base}/health",
        public_urls=[f"progress API   {base}/openapi.json"],
        env=env,
    )
    return service, client_env


def rasa_auth_token(settings: StackSettings, environ=os.environ) -> str:
    """RASA_AUTH_TOKEN from the environment; else a development value kept in the state
    folder's secrets.env (made on the first `make run`), so the agent console can use
    Rasa's NLU parse API. Without the token the HTTP API stays closed to everyone."""
    if environ.get("RASA_AUTH_TOKEN"):
        return environ["RASA_AUTH_TOKEN"]
    path = settings.state_dir / "secrets.env"
    return ensure_dev_secrets(path, environ, names=RASA_SECRET_NAMES)["RASA_AUTH_TOKEN"]


def web_service(settings: StackSettings, environ=os.environ, rasa_token: str = "") -> Service:
    """Widget assets, demo page and agent console (web/). Secrets come from the environment."""
    base = f"http://{reach_host(settings.host)}"
    env = {
        "WEB_HOST": settings.host,
        "WEB_PORT": str(settings.web_port),
        "RASA_URL": f"{base}:{settings.rasa_port}",
        "RASA_AUTH_TOKEN": rasa_token or environ.get("RASA_AUTH_TOKEN", ""),
        "PROGRESS_SERVICE_URL": environ.get("PROGRESS_SERVICE_URL")
        or f"{base}:{settings.progress_port}",
        "AGENT_DB": environ.get("AGENT_DB") or str(settings.state_dir / "agents.db"),
        # the conversation store the supervisor page reads: the endpoints file Rasa gets
        "TRACKER_ENDPOINTS": environ.get("TRACKER_ENDPOINTS") or str(settings.endpoints),
    }
    # Shared console state for several web replicas (docs/web.md): accounts, sessions and
    # the audit in a database, the sign-in and code throttles in Redis; unset, the SQLite
    # file above and this process's memory.
    for name in ("AGENT_DATABASE_URL", "WEB_STATE_REDIS_URL", "WEB_STATE_REDIS_PREFIX",
                 "AGENT_COOKIE_SECURE"):
        if environ.get(name):
            env[name] = environ[name]
    if not environ.get("WIDGET_SERVER_URL"):  # where the visitor's browser reaches Rasa
        env["WIDGET_SERVER_URL"] = f"{base}:{settings.rasa_port}"
    return Service(
        name="web",
        command=[str(VENV_BIN / "python"), "-m", "web"],
        health_url=f"{base}:{settings.web_port}/health",
        public_urls=[
            f"demo page      {base}:{settings.web_port}/",
            f"agent console  {base}:{settings.web_port}/agent",
        ],
        env=env,
    )


def _is_up(service: Service) -> bool:
    """Live, and ready when the service has a readiness route."""
    return _is_healthy(service.health_url) and (not service.ready_url or _is_healthy(service.ready_url))


def _is_healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


class Stack:
    def __init__(self, services: List[Service], output=None, cwd: pathlib.Path = ROOT,
                 environ: Optional[Dict[str, str]] = None):
        self.services = services
        self.environ = dict(os.environ if environ is None else environ)
        self.output = output or sys.stdout
        self.cwd = cwd
        self.processes: Dict[str, subprocess.Popen] = {}
        self._print_lock = threading.Lock()
        self._stopping = threading.Event()

    def _log(self, name: str, line: str) -> None:
        width = max(len(service.name) for service in self.services)
        with self._print_lock:
            self.output.write(f"[{name:<{width}}] {line}\n")
            self.output.flush()

    def _pump(self, name: str, stream) -> None:
        for raw in iter(stream.readline, b""):
            self._log(name, raw.decode("utf-8", "replace").rstrip())
        stream.close()

    def start(self) -> None:
        for service in self.services:
            self._spawn(service)

    def _spawn(self, service: Service) -> None:
        parent = dict(self.environ)
        parent["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(self.cwd), parent.get("PYTHONPATH")])
        )
        parent["PYTHONUNBUFFERED"] = "1"
        env = child_environment(service.environment, parent, service.env)
        process = subprocess.Popen(
            service.command,
            cwd=self.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: stopping reaches grandchildren too
        )
        self.processes[service.name] = process
        threading.Thread(
            target=self._pump, args=(service.name, process.stdout), daemon=True
        ).start()

    def _service(self, name: str) -> Service:
        return next(service for service in self.services if service.name == name)

    def stop_service(self, name: str, grace: float = 15.0) -> None:
        """Stop one service (its whole process group), e.g. to test how the rest copes."""
        process = self.processes.pop(name)
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=grace)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        process.wait()

    def start_service(self, name: str) -> bool:
        """Start a stopped service again; True once it answers its health route."""
        service = self._service(name)
        self._spawn(service)
        deadline = time.monotonic() + service.startup_timeout
        while time.monotonic() < deadline:
            if self.processes[name].poll() is not None:
                return False
            if _is_up(service):
                return True
            time.sleep(0.5)
        return False

    def dead_service(self) -> Optional[str]:
        for name, process in self.processes.items():
            if process.poll() is not None:
                return name
        return None

    def wait_healthy(self) -> bool:
        pending = {service.name: service for service in self.services}
        deadline = {s.name: time.monotonic() + s.startup_timeout for s in self.services}
        while pending:
            if self._stopping.is_set():
                return False
            dead = self.dead_service()
            if dead:
                self._log("stack", f"{dead} exited with code {self.processes[dead].returncode} during start-up")
                return False
            for name, service in list(pending.items()):
                if _is_up(service):
                    self._log("stack", f"{name} is up")
                    del pending[name]
                elif time.monotonic() > deadline[name]:
                    urls = " and ".join(filter(None, (service.health_url, service.ready_url)))
                    self._log("stack", f"{name} did not answer {urls} in {service.startup_timeout:.0f}s")
                    return False
            time.sleep(0.5)
        return True

    def stop(self, grace: float = 15.0) -> None:
        self._stopping.set()
        for process in self.processes.values():
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace
        for process in self.processes.values():
            remaining = max(0.1, deadline - time.monotonic())
            try:
                process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                pass
        for process in self.processes.values():
            try:
                os.killpg(process.pid, signal.SIGKILL)  # whatever is left of the group
            except (ProcessLookupError, PermissionError):
                pass
            process.wait()

    def __enter__(self):
        self.start()
        if not self.wait_healthy():
            self.stop()
            raise RuntimeError("the stack did not start; see the log lines above")
        return self

    def __exit__(self, *exc_info):
        self.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Run the assistant and its services.")
    parser.parse_args(argv)
    settings = StackSettings.from_env()
    return serve(Stack(build_services(settings)))


def serve(stack: Stack) -> int:
    """Start `stack` in the foreground until Ctrl-C / SIGTERM or a service dies (also
    `make run-cluster`, tools/cluster.py)."""

    def request_stop(signum, _frame):
        stack._log("stack", f"received {signal.Signals(signum).name}, stopping all services")
        stack._stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    stack.start()
    exit_code = 0
    if stack.wait_healthy():
        stack._log("stack", "all services are up:")
        for service in stack.services:
            for url in service.public_urls:
                stack._log("stack", f"  {url}")
        stack._log("stack", "press Ctrl-C to stop")
        while not stack._stopping.is_set():
            dead = stack.dead_service()
            if dead:
                stack._log("stack", f"{dead} exited unexpectedly (code {stack.processes[dead].returncode}); stopping")
                exit_code = 1
                break
            stack._stopping.wait(0.5)
    elif not stack._stopping.is_set():
        exit_code = 1
    stack.stop()
    stack._log("stack", "stopped")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())

"""The tested production topology, in the foreground: `make run-cluster` (docs/deploy.md).

    nginx (public port) ──► rasa-1, rasa-2   (round-robin; PostgreSQL tracker store,
                        │                     Redis lock store, WeChat state in Redis)
                        └─► web-1, web-2     (demo page, widget assets, /agent; console
                                              accounts, sessions, audit in PostgreSQL,
                                              throttles in Redis)
    rasa-1/2 ──► nginx (loopback) ──► actions-1, actions-2 ──► progress
    web ──► nginx (loopback) ──► rasa-1/2 (console: NLU parse, its web-channel turns)

It reuses tools/stack.py: `build_services` once per replica (so each process gets what
`make run` gives it), the processes renamed rasa-1/rasa-2 and actions-1/actions-2, plus
nginx from deploy/nginx.cluster.conf.template. Before the replicas start, the tracker
store's database and tables are created once (tools/purge_conversations.py, run as a step),
and the other databases are migrated (tools/migrate.py), so two replicas never race to
create or change a schema.

Every name, port and secret comes from the environment, with defaults for local use
(`ClusterSettings.from_env`; the table in docs/deploy.md). Tests and the benchmark build a
cluster with `build_cluster(settings, environ)` on free ports.
"""
import argparse
import dataclasses
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import urllib.parse
from typing import Dict, List, Optional, Tuple

import yaml

from core import defaults
from tools.process_env import bare_policy, child_environment
from tools.stack import (BIND_HOST_ENV, CORS_ENV, VENV_BIN, Service, Stack, StackSettings, build_services,
                         reach_host, serve, url_origins)

ROOT = defaults.ROOT
TEMPLATE = ROOT / "deploy" / "nginx.cluster.conf.template"
NGINX = "/usr/sbin/nginx"

# The PostgreSQL / Redis settings deploy/endpoints.production.yml reads, with local defaults
# (this machine's PostgreSQL at 127.0.0.1:5432 with trust, Redis at 127.0.0.1:6379).
STORE_DEFAULTS = {
    "DB_HOST": "127.0.0.1", "DB_PORT": "5432", "DB_USER": "postgres", "DB_PASSWORD": "",
    "DB_NAME": "mzmtb", "DB_LOGIN_DB": "postgres",
    "REDIS_HOST": "127.0.0.1", "REDIS_PORT": "6379", "REDIS_PASSWORD": "", "REDIS_DB": "0",
}


def _nth(ports: Tuple[int, ...], index: int) -> int:
    """Replica `index`'s port: the last one again past the end; 0 (none) when empty."""
    return ports[min(index, len(ports) - 1)] if ports else 0


def _ports(text: str) -> List[int]:
    return [int(part) for part in text.replace(" ", "").split(",") if part]


@dataclasses.dataclass
class ClusterSettings:
    """Ports and paths of the cluster; defaults are what `make run-cluster` uses."""

    public_host: str = defaults.HOST          # nginx's public listen address
    public_port: int = 8000
    public_url: str = ""                       # as visitors reach nginx; default http://host:port
    internal_host: str = defaults.HOST         # every other process: BIND_HOST, default loopback
    rasa_ports: Tuple[int, ...] = (5005, 5006)
    actions_ports: Tuple[int, ...] = (5055, 5056)
    actions_upstream_port: int = 5050          # nginx → action servers (Rasa's action_endpoint)
    rasa_internal_port: int = 5004             # nginx → Rasa replicas, for the web app
    progress_port: int = defaults.PROGRESS_PORT
    web_port: int = defaults.WEB_PORT          # the first web replica
    web_ports: Tuple[int, ...] = ()            # all web replicas; default (web_port, web_port + 1)
    # Prometheus metrics (core/metrics.py, docs/deploy.md): one loopback port per process,
    # by replica (the last one again past the end; 0: none)
    rasa_metrics_ports: Tuple[int, ...] = (9103, 9113)
    actions_metrics_ports: Tuple[int, ...] = (9102, 9112)
    web_metrics_ports: Tuple[int, ...] = (9104, 9114)
    progress_metrics_port: int = 9101
    state_dir: pathlib.Path = defaults.STATE_DIR / "cluster"
    model_path: pathlib.Path = defaults.STATE_DIR / "models"
    endpoints: pathlib.Path = ROOT / "deploy" / "endpoints.production.yml"
    credentials: pathlib.Path = ROOT / "deploy" / "credentials.production.yml"
    lock_prefix: str = ""                      # Redis lock-store key prefix; "" keeps the file's
    nginx: str = NGINX

    @classmethod
    def from_env(cls, environ=os.environ) -> "ClusterSettings":
        settings = cls()
        get = environ.get
        if get("CLUSTER_HOST"):
            settings.public_host = get("CLUSTER_HOST")
        if get(BIND_HOST_ENV):
            settings.internal_host = get(BIND_HOST_ENV).strip()
        for field, var in (("public_port", "CLUSTER_PORT"), ("actions_upstream_port", "ACTIONS_UPSTREAM_PORT"),
                           ("rasa_internal_port", "RASA_INTERNAL_PORT"), ("progress_port", "PROGRESS_PORT"),
                           ("web_port", "WEB_PORT")):
            if get(var):
                setattr(settings, field, int(get(var)))
        if get("RASA_PORTS"):
            settings.rasa_ports = tuple(_ports(get("RASA_PORTS")))
        if get("ACTIONS_PORTS"):
            settings.actions_ports = tuple(_ports(get("ACTIONS_PORTS")))
        if get("WEB_PORTS"):
            settings.web_ports = tuple(_ports(get("WEB_PORTS")))
        for field in ("rasa_metrics_ports", "actions_metrics_ports", "web_metrics_ports"):
            if get(field.upper()):  # RASA_METRICS_PORTS=9103,9113 ...
                setattr(settings, field, tuple(_ports(get(field.upper()))))
        if get("PROGRESS_METRICS_PORT"):
            settings.progress_metrics_port = int(get("PROGRESS_METRICS_PORT"))
        for field, var in (("state_dir", "CLUSTER_STATE_DIR"), ("model_path", "RASA_MODEL"),
                           ("endpoints", "RASA_ENDPOINTS"), ("credentials", "RASA_CREDENTIALS")):
            if get(var):
                setattr(settings, field, pathlib.Path(get(var)))
        settings.public_url = get("CLUSTER_PUBLIC_URL", "")
        settings.lock_prefix = get("LOCK_STORE_PREFIX", "")
        settings.nginx = get("NGINX", NGINX)
        return settings

    @property
    def all_web_ports(self) -> Tuple[int, ...]:
        return self.web_ports or (self.web_port, self.web_port + 1)

    @property
    def url(self) -> str:
        """Where visitors (and WeChat) reach the cluster: nginx's public address."""
        return (self.public_url or f"http://{self.public_host}:{self.public_port}").rstrip("/")

    def replica_settings(self, index: int) -> StackSettings:
        """What tools/stack.py builds replica `index` from (the last port again past the end)."""
        return StackSettings(
            rasa_port=self.rasa_ports[min(index, len(self.rasa_ports) - 1)],
            actions_port=self.actions_ports[min(index, len(self.actions_ports) - 1)],
            progress_port=self.progress_port, web_port=self.web_port, state_dir=self.state_dir,
            model_path=self.model_path, endpoints=self.runtime_endpoints(),
            credentials=self.credentials, host=self.internal_host,
            rasa_metrics_port=_nth(self.rasa_metrics_ports, index),
            actions_metrics_port=_nth(self.actions_metrics_ports, index),
            progress_metrics_port=self.progress_metrics_port,
            web_metrics_port=_nth(self.web_metrics_ports, 0))

    def runtime_endpoints(self) -> pathlib.Path:
        """The production endpoints file, with this cluster's lock-store key prefix if set."""
        text = self.endpoints.read_text(encoding="utf-8")
        if self.lock_prefix:
            if not self.lock_prefix.isalnum():  # Rasa ignores any other prefix, silently
                raise ValueError("LOCK_STORE_PREFIX must be letters and digits only")
            text, count = re.subn(r"(?m)^(\s+key_prefix:).*$", rf'\g<1> "{self.lock_prefix}"', text)
            if count != 1:
                raise ValueError(f"{self.endpoints}: no lock_store key_prefix to set")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path = self.state_dir / "endpoints.cluster.yml"
        path.write_text(text, encoding="utf-8")
        return path


def free_ports(count: int) -> List[int]:
    """`count` distinct free loopback ports, for clusters on free ports (tests, bench)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def cluster_environ(environ=os.environ) -> Dict[str, str]:
    """The environment with the store settings' local defaults filled in, and WeChat's
    shared state pointed at the lock store's Redis unless WECHAT_STATE_REDIS_URL is set."""
    env = dict(environ)
    for name, value in STORE_DEFAULTS.items():
        env.setdefault(name, value)
    password = urllib.parse.quote(env["REDIS_PASSWORD"], safe="")
    auth = f":{password}@" if password else ""
    redis_url = f"redis://{auth}{env['REDIS_HOST']}:{env['REDIS_PORT']}/{env['REDIS_DB'] or 0}"
    db_password = urllib.parse.quote(env["DB_PASSWORD"], safe="")
    db_auth = urllib.parse.quote(env["DB_USER"], safe="") + (f":{db_password}" if db_password else "")
    database_url = f"postgresql://{db_auth}@{env['DB_HOST']}:{env['DB_PORT']}/{env['DB_NAME']}"
    # what replicas share besides the tracker store: WeChat's claims, buttons and held
    # replies; the console's accounts, sessions, audit and throttles; the hotline codes
    for name, value in (("WECHAT_STATE_REDIS_URL", redis_url), ("WEB_STATE_REDIS_URL", redis_url),
                        ("AGENT_DATABASE_URL", database_url),
                        ("CONVERSATION_CODES_DATABASE_URL", database_url),
                        ("STATUS_SUBSCRIPTIONS_DATABASE_URL", database_url)):
        if not env.get(name):
            env[name] = value
    return env


def render_nginx(settings: ClusterSettings, socketio: bool, as_root: Optional[bool] = None) -> pathlib.Path:
    """deploy/nginx.cluster.conf.template with this cluster's addresses, in the state folder."""
    as_root = (os.geteuid() == 0) if as_root is None else as_root
    prefix = settings.state_dir / "nginx"
    for sub in ("tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    host = reach_host(settings.internal_host)

    def servers(ports, marker=""):
        return "\n".join(f"    {marker}    server {host}:{port} max_fails=1 fail_timeout=5s;" for port in ports)

    fields = {
        "state_dir": str(prefix),
        "rasa_servers": servers(settings.rasa_ports),
        "socketio_servers": servers(settings.rasa_ports, "#@socketio "),
        "actions_servers": servers(settings.actions_ports),
        "web_servers": servers(settings.all_web_ports),
        "public_listen": f"{settings.public_host}:{settings.public_port}",
        "internal_host": settings.internal_host,
        "rasa_internal_port": str(settings.rasa_internal_port),
        "actions_upstream_port": str(settings.actions_upstream_port),
    }
    text = TEMPLATE.read_text(encoding="utf-8")
    for name, value in fields.items():
        text = text.replace("{{" + name + "}}", value)
    leftover = re.findall(r"\{\{\w+\}\}", text)
    if leftover:
        raise ValueError(f"{TEMPLATE}: unknown fields {leftover}")
    lines = []
    for line in text.splitlines():
        for marker, keep in (("#@socketio ", socketio), ("#@root ", as_root)):
            stripped = line.lstrip()
            if stripped.startswith(marker):
                line = (line[: len(line) - len(stripped)] + stripped[len(marker):]) if keep else None
                break
        if line is not None:
            lines.append(line)
    path = prefix / "nginx.conf"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def nginx_service(settings: ClusterSettings, config: pathlib.Path) -> Service:
    prefix = config.parent
    return Service(
        name="nginx",
        command=[settings.nginx, "-p", str(prefix), "-c", str(config), "-e", str(prefix / "error.log"),
                 "-g", "daemon off;"],
        health_url=f"http://{reach_host(settings.internal_host)}:{settings.rasa_internal_port}/nginx-health",
        public_urls=[
            f"demo page      {settings.url}/",
            f"agent console  {settings.url}/agent",
            f"web channel    {settings.url}/webhooks/web/webhook",
            f"WeChat         {settings.url}/webhooks/wechat/webhook",
        ],
        startup_timeout=20.0,
        environment=bare_policy("nginx"),  # none of the stack's variables, no secret
    )


def _renamed(service: Service, name: str) -> Service:
    return dataclasses.replace(service, name=name, env=dict(service.env))


def build_cluster(settings: ClusterSettings, environ=os.environ) -> Tuple[List[Service], Dict[str, str]]:
    """(services, environment) of the cluster: progress, actions-N, rasa-N, web, nginx.

    The environment is `environ` with the store defaults (cluster_environ); start the
    Stack with it."""
    if len(settings.rasa_ports) < 1 or len(settings.actions_ports) < 1:
        raise ValueError("at least one Rasa and one action server port")
    env = cluster_environ(environ)
    # the widget's pages: the public address (both loopback names on this machine)
    env[CORS_ENV] = env.get(CORS_ENV) or ",".join(url_origins(settings.url))
    internal = f"http://{reach_host(settings.internal_host)}"
    services: Dict[str, Service] = {}
    replicas = max(len(settings.rasa_ports), len(settings.actions_ports))
    for index in range(replicas):
        built = {s.name: s for s in build_services(settings.replica_settings(index), env)}
        if index == 0:
            for name in ("progress", "web"):
                if name in built:
                    services[name] = built[name]
            if "progress" in services:  # its schema is migrated by prepare_store, as a step
                services["progress"].env["PROGRESS_SCHEMA_AT_START"] = \
                    environ.get("PROGRESS_SCHEMA_AT_START") or "check"
            if "progress" in services and "PROGRESS_EVENTS_URL" in services["progress"].env \
                    and not environ.get("PROGRESS_EVENTS_URL"):
                # status events (docs/operations.md) through nginx's loopback listener:
                # whichever Rasa replica is up takes them; never on the public port
                # the same route as the stack chose (WeChat's, else the web channel's)
                route = urllib.parse.urlsplit(services["progress"].env["PROGRESS_EVENTS_URL"]).path
                services["progress"].env["PROGRESS_EVENTS_URL"] = \
                    f"{internal}:{settings.rasa_internal_port}{route}"
        if index < len(settings.actions_ports):
            actions = _renamed(built["actions"], f"actions-{index + 1}")
            actions.public_urls = []
            services[actions.name] = actions
        if index < len(settings.rasa_ports):
            rasa = _renamed(built["rasa"], f"rasa-{index + 1}")
            # one action endpoint for every replica: nginx's upstream of the action servers
            rasa.env["ACTION_ENDPOINT_URL"] = f"{internal}:{settings.actions_upstream_port}/webhook"
            rasa.env["SANIC_REAL_IP_HEADER"] = "x-real-ip"  # nginx sets it; docs/security.md
            rasa.public_urls = []
            services[rasa.name] = rasa
    first_web = services.pop("web")
    first_web.env.update({
        "RASA_URL": f"{internal}:{settings.rasa_internal_port}",
        "WIDGET_SERVER_URL": environ.get("WIDGET_SERVER_URL") or settings.url,
        "WEB_PUBLIC_URL": environ.get("WEB_PUBLIC_URL") or settings.url,
        "SANIC_REAL_IP_HEADER": "x-real-ip",
    })
    first_web.public_urls = []
    for index, port in enumerate(settings.all_web_ports):
        web = _renamed(first_web, f"web-{index + 1}")
        web.env["WEB_PORT"] = str(port)
        web.env["WEB_METRICS_PORT"] = str(_nth(settings.web_metrics_ports, index))
        web.health_url = f"{internal}:{port}/health"
        services[web.name] = web
    credentials = yaml.safe_load((settings.state_dir / "credentials.runtime.yml").read_text(encoding="utf-8")) or {}
    socketio = any(name.endswith(".MaskedSocketIOInput") or name == "socketio" for name in credentials)
    order = ["progress"] + [n for n in services if n.startswith("actions-")] + \
        [n for n in services if n.startswith("rasa-")] + [n for n in services if n.startswith("web-")]
    result = [services[name] for name in order if name in services]
    result.append(nginx_service(settings, render_nginx(settings, socketio)))
    return result, env


def prepare_store(services: List[Service], environ: Dict[str, str], log=None) -> None:
    """Create the tracker store's database and tables once, before the replicas start
    (each replica would otherwise race to create them): the purge command opens the store
    the replicas will open, which creates what is missing, and applies the retention.
    Then migrate the other databases (tools/migrate.py) and apply the audit retention."""
    rasa = next(service for service in services if service.name.startswith("rasa-"))
    endpoints = rasa.command[rasa.command.index("--endpoints") + 1]
    env = child_environment(rasa.environment, {**environ, "PYTHONPATH": str(ROOT)}, rasa.env)
    done = subprocess.run([str(VENV_BIN / "python"), "-m", "tools.purge_conversations", "--endpoints", endpoints,
                           "--no-audit"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    if log is not None:
        log.write(done.stdout)
    if done.returncode != 0:
        raise RuntimeError("the tracker store could not be prepared:\n" + (done.stdout + done.stderr)[-3000:])
    # the schemas of the console's and the hotline codes' tables and of the progress
    # stand-in's, also once: `make migrate` (tools/migrate.py) with the URLs each process
    # reads (the progress service then only checks its schema: PROGRESS_SCHEMA_AT_START=check);
    # then the audit rows' retention, with the console's environment
    web = next(service for service in services if service.name.startswith("web-"))
    progress = next((service for service in services if service.name == "progress"), None)
    steps = [(web, ["tools.migrate", "--only", "console,codes"])]
    if progress is not None:
        steps.append((progress, ["tools.migrate", "--only", "progress"]))
    steps.append((web, ["tools.purge_conversations", "--no-conversations"]))
    for service, command in steps:
        done = subprocess.run([str(VENV_BIN / "python"), "-m", *command], cwd=ROOT,
                              env=child_environment(service.environment, {**environ, "PYTHONPATH": str(ROOT)},
                                                    service.env),
                              capture_output=True, text=True, timeout=180)
        if log is not None:
            log.write(done.stdout)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed before the start:\n"
                               + (done.stdout + done.stderr)[-3000:])


def check_nginx(settings: ClusterSettings) -> Optional[str]:
    """None when nginx can be run; else what to do."""
    if os.path.isabs(settings.nginx) and os.access(settings.nginx, os.X_OK):
        return None
    if shutil.which(settings.nginx):
        return None
    return f"nginx not found at {settings.nginx}: run `make nginx` (Debian's package) or set NGINX"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print-config", action="store_true", help="render nginx.conf, print it and exit")
    args = parser.parse_args(argv)
    settings = ClusterSettings.from_env()
    problem = check_nginx(settings)
    if problem and not args.print_config:
        print(problem, file=sys.stderr)
        return 2
    services, env = build_cluster(settings)
    if args.print_config:
        print((settings.state_dir / "nginx" / "nginx.conf").read_text(encoding="utf-8"))
        return 0
    print(f"preparing the tracker store (PostgreSQL {env['DB_HOST']}:{env['DB_PORT']}/{env['DB_NAME']}) …",
          flush=True)
    prepare_store(services, env, log=sys.stdout)
    stack = Stack(services, environ=env)
    stack.services[-1].public_urls += [
        f"internal only: Rasa replicas {settings.internal_host}:{','.join(map(str, settings.rasa_ports))}"
        f" (all of them: {settings.internal_host}:{settings.rasa_internal_port}), action servers "
        f"{','.join(map(str, settings.actions_ports))} (all of them: {settings.internal_host}:"
        f"{settings.actions_upstream_port}), progress {settings.progress_port}, "
        f"web {','.join(map(str, settings.all_web_ports))}"]
    return serve(stack)


if __name__ == "__main__":
    sys.exit(main())

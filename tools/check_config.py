"""`make check-config`: is this environment fit for production? (docs/deploy.md "check-config")

Checks the configuration the production topology (`make run-cluster`, tools/cluster.py, and
the compose file that mirrors it) would run with: the environment, the credentials and
endpoints files it names, and the nginx configuration it renders. Production mode is
`ENVIRONMENT=production` or `--production`; there every problem is named on its own line and
the exit code is 1. In development mode the same problems are listed as notes and the exit
code is 0 (a developer's `make run` is expected to have them).

    ENVIRONMENT=production make check-config
    python -m tools.check_config --production

It never prints a secret's value, only its name.
"""
import argparse
import dataclasses
import os
import pathlib
import re
import sys
import tempfile
import urllib.parse
from typing import Dict, Iterable, List, Mapping, Optional

import yaml

from core import defaults
from core.conversation_codes import DATABASE_URL_ENV as CODES_URL_ENV, KEY_ENV as CODES_KEY_ENV
from core.devsecrets import ACTION_SECRET_NAMES, RASA_SECRET_NAMES, SECRET_NAMES
from tools.cluster import ClusterSettings, build_cluster, cluster_environ, render_nginx
from tools.stack import BIND_HOST_ENV, CORS_ENV

PRODUCTION_ENV = "ENVIRONMENT"
# Keys and tokens the software uses: as long as the development ones (token_urlsafe(32) is
# 43 characters) is not required, but anything under 32 characters is refused.
SECRETS = (*RASA_SECRET_NAMES, *ACTION_SECRET_NAMES, *SECRET_NAMES, CODES_KEY_ENV)
MIN_SECRET_LENGTH = 32
# Passwords of PostgreSQL and Redis, chosen by whoever runs them.
PASSWORDS = ("DB_PASSWORD", "REDIS_PASSWORD")
MIN_PASSWORD_LENGTH = 16
# Set to 1 when BIND_HOST is not loopback on purpose: containers on a private network.
PRIVATE_NETWORK_ENV = "BIND_HOST_PRIVATE_NETWORK"
# Rasa channels that take any sender id from the client (docs/security.md)
OPEN_CHANNELS = ("MaskedRestInput", "MaskedSocketIOInput", "RestInput", "SocketIOInput")
OPEN_CHANNEL_ALIASES = ("rest", "socketio")
# what the public nginx server may send to Rasa: the channels' webhooks only
PUBLIC_RASA_LOCATIONS = ("/webhooks/web/webhook", "/webhooks/web/feedback",
                         "/webhooks/web/status-changes", "/webhooks/wechat/webhook", "/socket.io/")
OFF = ("0", "false", "no", "off")


@dataclasses.dataclass
class Problem:
    code: str      # stable, for tests and scripts: "dev-secret:RASA_AUTH_TOKEN", "cors-wildcard", ...
    text: str      # what is wrong and what to do

    def __str__(self):
        return f"{self.code}: {self.text}"


def dev_secret_files(environ: Mapping[str, str], root: pathlib.Path = defaults.ROOT) -> List[pathlib.Path]:
    """The development secrets files core/devsecrets.py writes for `make run` and
    `make run-cluster` (and for state folders named in the environment)."""
    files = [defaults.DEV_SECRETS_FILE, root / ".state" / "cluster" / "secrets.env"]
    for name in ("CLUSTER_STATE_DIR", "STACK_STATE_DIR"):
        if environ.get(name):
            files.append(pathlib.Path(environ[name]) / "secrets.env")
    return files


def _dev_values(files: Iterable[pathlib.Path]) -> set:
    values = set()
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        for line in text.splitlines():
            name, sep, value = line.strip().partition("=")
            if sep and not name.startswith("#") and value.strip():
                values.add(value.strip())
    return values


def _is_sqlite(url: str) -> bool:
    return url.strip().lower().startswith("sqlite")


def _loopback(host: str) -> bool:
    return host in ("127.0.0.1", "::1", "localhost") or host.startswith("127.")


def check_secrets(environ, dev_files) -> List[Problem]:
    problems = []
    dev = _dev_values(dev_files)
    for name in SECRETS + PASSWORDS:
        value = environ.get(name, "")
        minimum = MIN_PASSWORD_LENGTH if name in PASSWORDS else MIN_SECRET_LENGTH
        if not value:
            problems.append(Problem(f"missing-secret:{name}", f"{name} is not set; set a random value of at least "
                                    f"{minimum} characters"
                                    + ("" if name in PASSWORDS else " (unset, a development value is generated)")))
        elif value in dev:
            problems.append(Problem(f"dev-secret:{name}", f"{name} is a development value from a secrets.env "
                                    "made by make run; set a new random value"))
        elif len(value) < minimum:
            problems.append(Problem(f"short-secret:{name}", f"{name} has {len(value)} characters; "
                                    f"at least {minimum} are required"))
    return problems


def check_cors(environ) -> List[Problem]:
    text = environ.get(CORS_ENV, "").strip()
    if not text:
        return [Problem("cors-unset", f"{CORS_ENV} is not set: Rasa would allow only the development demo page; "
                        "set the bureau's site origins, e.g. https://www.example.gov.cn")]
    problems = []
    for origin in (part.strip() for part in text.split(",") if part.strip()):
        if origin == "*":
            problems.append(Problem("cors-wildcard", f"{CORS_ENV} contains *: any site could call the bot "
                                    "in its visitors' names; list the sites' origins"))
        elif not origin.startswith("https://"):
            problems.append(Problem("cors-not-https", f"{CORS_ENV} has {origin!r}: production pages are https://"))
    return problems


def _store(endpoints: Mapping, key: str) -> Optional[Mapping]:
    store = endpoints.get(key)
    return store if isinstance(store, dict) else None


def check_databases(environ, endpoints_file: pathlib.Path) -> List[Problem]:
    problems = []
    try:
        endpoints = yaml.safe_load(endpoints_file.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        return [Problem("endpoints-unreadable", f"{endpoints_file}: {type(error).__name__}")]
    tracker = _store(endpoints, "tracker_store")
    if tracker is None or str(tracker.get("type", "")).lower() in ("in_memory", "inmemorytrackerstore"):
        problems.append(Problem("tracker-in-memory", f"{endpoints_file} has no tracker store: conversations "
                                "would be lost on restart and not shared by replicas; use "
                                "deploy/endpoints.production.yml"))
    elif str(tracker.get("dialect", "")).lower() == "sqlite" or _is_sqlite(str(tracker.get("url", ""))):
        problems.append(Problem("sqlite:tracker", f"{endpoints_file}: the tracker store is SQLite; "
                                "replicas need PostgreSQL (deploy/endpoints.production.yml)"))
    lock = _store(endpoints, "lock_store")
    if lock is None or str(lock.get("type", "")).lower() != "redis":
        problems.append(Problem("lock-store-not-redis", f"{endpoints_file}: the lock store is not Redis; two "
                                "replicas could handle one conversation's turns at once"))
    progress_url = environ.get("PROGRESS_DATABASE_URL", "")
    if _is_sqlite(progress_url) or (not progress_url and not environ.get("PROGRESS_SERVICE_URL")):
        problems.append(Problem("sqlite:progress", "PROGRESS_DATABASE_URL is SQLite (or unset, SQLite in the "
                                "state folder): set a PostgreSQL URL, or PROGRESS_SERVICE_URL to the agency's system"))
    for name, what in (("AGENT_DATABASE_URL", "console"), (CODES_URL_ENV, "codes")):
        if _is_sqlite(environ.get(name, "")) or not environ.get(name):
            problems.append(Problem(f"sqlite:{what}", f"{name} is SQLite or unset: the web replicas and action "
                                    "servers must share a PostgreSQL database"))
    # migrations are a step (`make migrate`), not something a starting replica does
    schema = environ.get("PROGRESS_SCHEMA_AT_START", "check").strip().lower()
    if schema != "check":
        problems.append(Problem("progress-schema-at-start", f"PROGRESS_SCHEMA_AT_START={schema}: in production "
                                "the progress service only checks its schema (check); run `make migrate` first"))
    return problems


def check_cookies(environ) -> List[Problem]:
    problems = []
    if environ.get("AGENT_COOKIE_SECURE", "").strip().lower() in OFF:
        problems.append(Problem("cookies-insecure", "AGENT_COOKIE_SECURE is off: the console's session cookie "
                                "would travel without HTTPS; unset it or set 1"))
    for name in ("CLUSTER_PUBLIC_URL", "WEB_PUBLIC_URL", "WIDGET_SERVER_URL"):
        value = environ.get(name, "")
        if value and urllib.parse.urlsplit(value).scheme != "https":
            problems.append(Problem(f"public-url-not-https:{name}", f"{name} is not https://: visitors' messages "
                                    "and the console's cookies need TLS"))
    if not (environ.get("CLUSTER_PUBLIC_URL") or environ.get("WEB_PUBLIC_URL")):
        problems.append(Problem("public-url-unset", "CLUSTER_PUBLIC_URL is not set: the widget would point at "
                                "http://CLUSTER_HOST:CLUSTER_PORT; set the https:// address visitors use"))
    return problems


def check_channels(credentials_file: pathlib.Path) -> List[Problem]:
    try:
        channels = yaml.safe_load(credentials_file.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        return [Problem("credentials-unreadable", f"{credentials_file}: {type(error).__name__}")]
    problems = []
    for name in channels:
        if name in OPEN_CHANNEL_ALIASES or str(name).rsplit(".", 1)[-1] in OPEN_CHANNELS:
            problems.append(Problem(f"open-channel:{name}", f"{credentials_file} switches on {name}, which takes "
                                    "any sender id from the client; use deploy/credentials.production.yml"))
    return problems


def _public_server(conf: str) -> str:
    """The first `server { … }` block of the rendered nginx.conf: the public one."""
    start = conf.index("    server {")
    depth, index = 0, conf.index("{", start)
    for index in range(index, len(conf)):
        depth += {"{": 1, "}": -1}.get(conf[index], 0)
        if depth == 0:
            break
    return conf[start:index + 1]


def check_processes(environ, settings: ClusterSettings) -> List[Problem]:
    """What tools/cluster.py would give each process: a setting it refuses (a malformed
    CORS origin, say), and any other database left to SQLite (a file per machine or
    container, which replicas cannot share)."""
    named = {"PROGRESS_DATABASE_URL", "AGENT_DATABASE_URL", CODES_URL_ENV}  # check_databases names them
    problems = []
    with tempfile.TemporaryDirectory(prefix="check-config-") as folder:
        try:
            services, _ = build_cluster(dataclasses.replace(settings, state_dir=pathlib.Path(folder)), dict(environ))
        except (ValueError, KeyError, OSError) as error:
            return [Problem("cluster-invalid", f"the cluster cannot be built from this environment: {error}")]
    seen = set()
    for service in services:
        for name, value in service.env.items():
            if name.endswith("_DATABASE_URL") and name not in named | seen and _is_sqlite(value):
                seen.add(name)
                problems.append(Problem(f"sqlite:{name}", f"{name} is SQLite (or unset: a file in the state "
                                        f"folder) for {service.name}; set a PostgreSQL URL the replicas share"))
    return problems


def check_api_exposure(environ, settings: ClusterSettings) -> List[Problem]:
    problems = []
    host = settings.internal_host
    if not _loopback(host) and environ.get(PRIVATE_NETWORK_ENV, "").strip().lower() not in ("1", "true", "yes"):
        problems.append(Problem("api-exposed:bind-host", f"{BIND_HOST_ENV}={host}: Rasa's HTTP API (and every "
                                "process behind nginx) is reachable from that network, and clients there could "
                                f"choose their address; keep loopback, or set {PRIVATE_NETWORK_ENV}=1 when only "
                                "the deployment's own private network reaches it"))
    with tempfile.TemporaryDirectory(prefix="check-config-") as folder:
        rendered = render_nginx(dataclasses.replace(settings, state_dir=pathlib.Path(folder)), socketio=True)
        public = _public_server(rendered.read_text(encoding="utf-8"))
    location = None
    for line in public.splitlines():
        match = re.match(r"\s*location\s+(?:=\s*)?(\S+)\s*\{", line)
        if match:
            location = match.group(1)
        if re.search(r"proxy_pass\s+http://rasa(_socketio)?\b", line) and location not in PUBLIC_RASA_LOCATIONS:
            problems.append(Problem(f"api-exposed:nginx:{location}", f"nginx's public server sends {location} to "
                                    "Rasa: only the channel webhooks may be public (the HTTP API stays internal)"))
    return problems


def check(environ: Mapping[str, str], dev_files: Optional[List[pathlib.Path]] = None) -> List[Problem]:
    """Every problem of this environment for production (empty: fit)."""
    raw = dict(environ)
    effective: Dict[str, str] = cluster_environ(raw)  # what make run-cluster adds (DB URLs from DB_*)
    settings = ClusterSettings.from_env(raw)
    files = dev_secret_files(raw) if dev_files is None else dev_files
    return (check_secrets(raw, files) + check_cors(raw) + check_databases(effective, settings.endpoints)
            + check_cookies(raw) + check_channels(settings.credentials) + check_processes(raw, settings)
            + check_api_exposure(raw, settings))


def main(argv=None, environ=os.environ) -> int:
    parser = argparse.ArgumentParser(description="Check the production configuration (docs/deploy.md).")
    parser.add_argument("--production", action="store_true",
                        help=f"production mode (also {PRODUCTION_ENV}=production): any problem fails")
    args = parser.parse_args(argv)
    production = args.production or environ.get(PRODUCTION_ENV, "").strip().lower() == "production"
    problems = check(environ)
    if not problems:
        print("check-config: no problem found for production")
        return 0
    if production:
        print(f"check-config: {len(problems)} problem(s) for production:")
    else:
        print(f"check-config: development mode ({PRODUCTION_ENV} is not production); in production these "
              f"{len(problems)} would fail:")
    for problem in problems:
        print(f"  - {problem}")
    return 1 if production else 0


if __name__ == "__main__":
    sys.exit(main())

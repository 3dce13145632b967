"""Every setting of the web app (widget assets, demo page, agent console), read once.

All values come from environment variables; defaults are what `make run` uses.
Tests build a `WebConfig` directly with loopback URLs and temporary files.
"""
import dataclasses
import ipaddress
import logging
import os
import pathlib
import urllib.parse
from typing import Mapping, Optional

from core import conversation_codes, defaults, retention

STATIC_DIR = pathlib.Path(__file__).resolve().parent / "static"


def _optional_flag(value: Optional[str]) -> Optional[bool]:
    """1/true/yes/on, 0/false/no/off; None (decide from the other settings) for
    anything else, `auto` and unset included."""
    text = (value or "").strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    return None


def is_loopback(host: str) -> bool:
    host = (host or "").strip().strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def plain_development(host: str, public_url: str) -> bool:
    """Served on loopback over plain HTTP only: WEB_HOST is a loopback address and the
    public URL is http:// on a loopback name (make run). Anything else may be reached
    from elsewhere, where the cookies must be HTTPS-only."""
    url = urllib.parse.urlsplit(public_url)
    return is_loopback(host) and url.scheme == "http" and is_loopback(url.hostname or "")


@dataclasses.dataclass
class WebConfig:
    host: str = defaults.HOST
    port: int = defaults.WEB_PORT
    # Rasa as this server reaches it (NLU parse, REST fallback)
    rasa_url: str = defaults.RASA_URL
    # this web app as the visitor's browser reaches it (the demo page's widget script URL);
    # empty: http://<host>:<port>. Set it in production (https://help.example.gov.cn)
    public_url: str = ""
    # Rasa as the visitor's browser reaches it (the widget on the demo page)
    widget_server_url: str = ""
    # Rasa's HTTP API token (`rasa run --enable-api --auth-token`); empty: parse API unused
    rasa_auth_token: str = ""
    progress_url: str = defaults.PROGRESS_SERVICE_URL
    # the progress service's read key (X-Api-Key) and the HMAC secret from which the
    # console issues each signed-in agent's X-Agent-Token (see core/agent_tokens.py)
    progress_api_key: str = ""
    progress_agent_secret: str = ""
    # agent accounts, sessions and the console's own audit trail: the SQLite file
    # AGENT_DB, or AGENT_DATABASE_URL (any SQLAlchemy URL, PostgreSQL for several replicas)
    agent_db: pathlib.Path = defaults.AGENT_DB
    agent_database_url: str = ""
    # a console session ends after this many seconds without a request ...
    session_idle_seconds: int = 900
    # ... and this many seconds after sign-in, however active (absolute lifetime)
    session_max_seconds: int = 8 * 3600
    # the cookies are sent only over HTTPS (`Secure`): None (AGENT_COOKIE_SECURE unset or
    # `auto`) means yes, unless the app is plain development on loopback (see
    # plain_development); 1/0 force it
    cookie_secure: Optional[bool] = None
    # the throttles (sign-in, conversation codes) in Redis, shared by every replica;
    # empty: in this process's memory (bounded)
    state_redis_url: str = ""
    state_redis_prefix: str = "mzmtb:web"
    # password hashes (scrypt, ~0.3 s CPU and 32 MiB each) computed at the same time;
    # a sign-in waits at most hash_wait_seconds for its turn, else 429
    hash_concurrency: int = 2
    # failed sign-ins per client address (over all names) within 15 minutes
    signin_address_limit: int = 20
    hash_wait_seconds: float = 3.0
    # application lookups per agent (the progress service's agent mode): per 10 minutes
    # and per 24 hours, counted in the audit (shared by every replica)
    lookups_per_10_minutes: int = 60
    lookups_per_day: int = 300
    # every outbound call (Rasa, progress service) gives up after this many seconds
    outbound_timeout: float = defaults.PROGRESS_TIMEOUT_SECONDS
    # title shown on the widget of the demo page
    widget_title: str = "门诊慢特病在线咨询"
    # how long the tracker store keeps a conversation (CONVERSATION_RETENTION_DAYS): the
    # widget's privacy notice names it (knowledge/channel_texts.yml privacy_notice)
    retention_days: float = retention.DEFAULT_DAYS
    # the conversation codes the action server issues (core/conversation_codes.py); the
    # console only reads them (CONVERSATION_CODES_DATABASE_URL)
    conversation_codes_url: str = conversation_codes.DEFAULT_DATABASE_URL
    # the conversation store the supervisor page reads (issue 19): the endpoints file Rasa
    # reads (TRACKER_ENDPOINTS; production: deploy/endpoints.production.yml with DB_*),
    # read only, through core/tracker_reader.py, as `make report-unanswered ENDPOINTS=…`
    tracker_endpoints: str = str(defaults.ROOT / "endpoints.yml")

    def __post_init__(self):
        if not self.widget_server_url:
            self.widget_server_url = self.rasa_url
        if not self.public_url:
            shown_host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
            if shown_host != self.host:
                logging.getLogger("web.config").warning(
                    "WEB_HOST=%s without WEB_PUBLIC_URL: the demo page loads the widget from "
                    "http://127.0.0.1:%s, which other machines cannot reach; set WEB_PUBLIC_URL",
                    self.host or "(all)", self.port)
            if ":" in shown_host:  # an IPv6 address
                shown_host = f"[{shown_host}]"
            self.public_url = f"http://{shown_host}:{self.port}"
        self.public_url = self.public_url.rstrip("/")
        if self.state_redis_url and not self.state_redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("WEB_STATE_REDIS_URL must be a redis://, rediss:// or unix:// URL")
        if self.cookie_secure is None:
            self.cookie_secure = not plain_development(self.host, self.public_url)

    @property
    def agent_store_location(self) -> str:
        """What web.agents.AgentStore opens: the URL when set, else the SQLite file."""
        return self.agent_database_url or str(self.agent_db)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "WebConfig":
        config = cls(
            host=environ.get("WEB_HOST", cls.host),
            port=int(environ.get("WEB_PORT", cls.port)),
            rasa_url=environ.get("RASA_URL", cls.rasa_url).rstrip("/"),
            public_url=environ.get("WEB_PUBLIC_URL", "").rstrip("/"),
            widget_server_url=environ.get("WIDGET_SERVER_URL", "").rstrip("/"),
            rasa_auth_token=environ.get("RASA_AUTH_TOKEN", ""),
            progress_url=environ.get("PROGRESS_SERVICE_URL", cls.progress_url).rstrip("/"),
            progress_api_key=environ.get("PROGRESS_API_KEY", ""),
            progress_agent_secret=environ.get("PROGRESS_AGENT_SECRET", ""),
            agent_db=pathlib.Path(environ.get("AGENT_DB", str(cls.agent_db))),
            agent_database_url=environ.get("AGENT_DATABASE_URL", "").strip(),
            session_idle_seconds=int(environ.get("AGENT_SESSION_IDLE_SECONDS", cls.session_idle_seconds)),
            session_max_seconds=int(environ.get("AGENT_SESSION_MAX_SECONDS", cls.session_max_seconds)),
            cookie_secure=_optional_flag(environ.get("AGENT_COOKIE_SECURE")),
            state_redis_url=environ.get("WEB_STATE_REDIS_URL", "").strip(),
            state_redis_prefix=environ.get("WEB_STATE_REDIS_PREFIX", "").strip() or cls.state_redis_prefix,
            hash_concurrency=max(1, int(environ.get("AGENT_HASH_CONCURRENCY", cls.hash_concurrency))),
            signin_address_limit=int(environ.get("AGENT_SIGNIN_ADDRESS_LIMIT", cls.signin_address_limit)),
            hash_wait_seconds=float(environ.get("AGENT_HASH_WAIT_SECONDS", cls.hash_wait_seconds)),
            lookups_per_10_minutes=int(environ.get("AGENT_LOOKUPS_PER_10_MINUTES", cls.lookups_per_10_minutes)),
            lookups_per_day=int(environ.get("AGENT_LOOKUPS_PER_DAY", cls.lookups_per_day)),
            outbound_timeout=float(environ.get("WEB_OUTBOUND_TIMEOUT", cls.outbound_timeout)),
            widget_title=environ.get("WIDGET_TITLE", cls.widget_title),
            retention_days=retention.retention_days(environ),
            conversation_codes_url=conversation_codes.database_url(environ),
            tracker_endpoints=environ.get("TRACKER_ENDPOINTS", "").strip() or cls.tracker_endpoints,
        )
        return config

"""Every setting of the web app (widget assets, demo page, agent console), read once.

All values come from environment variables; defaults are what `make run` uses.
Tests build a `WebConfig` directly with loopback URLs and temporary files.
"""
import dataclasses
import logging
import os
import pathlib
from typing import Mapping

from core import conversation_codes, defaults, retention

STATIC_DIR = pathlib.Path(__file__).resolve().parent / "static"


def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


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
    # agent accounts, sessions and the console's own audit trail
    agent_db: pathlib.Path = defaults.AGENT_DB
    # a console session ends after this many seconds without a request
    session_idle_seconds: int = 900
    # set in production (HTTPS): the session cookie is then sent only over HTTPS
    cookie_secure: bool = False
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
            self.public_url = f"http://{shown_host}:{self.port}"
        self.public_url = self.public_url.rstrip("/")

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
            session_idle_seconds=int(environ.get("AGENT_SESSION_IDLE_SECONDS", cls.session_idle_seconds)),
            cookie_secure=_flag(environ.get("AGENT_COOKIE_SECURE", "0")),
            outbound_timeout=float(environ.get("WEB_OUTBOUND_TIMEOUT", cls.outbound_timeout)),
            widget_title=environ.get("WIDGET_TITLE", cls.widget_title),
            retention_days=retention.retention_days(environ),
            conversation_codes_url=conversation_codes.database_url(environ),
        )
        return config

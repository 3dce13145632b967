"""Every setting of the WeChat channel, its environment variable and its default, in one place.

`make run` writes them into credentials.yml as `${WECHAT_...}` references (tools/stack.py);
`WeChatSettings.from_mapping` reads the credentials section, `from_env` the environment.
One setting is the deployment's, not the channel's, and always comes from the environment:
CONVERSATION_RETENTION_DAYS (core/retention.py), named by the welcome's privacy notice.
So do the status-change notifications' (issue 19, docs/operations.md): STATUS_ENV_VARS.
"""
import dataclasses
import os
import pathlib
import re
from typing import Any, Mapping, Optional

from core import retention

ROOT = pathlib.Path(__file__).resolve().parent.parent

MODES = ("plain", "compatible", "safe")
DEFAULT_API_BASE = "https://api.weixin.qq.com"

# credentials.yml key -> environment variable
ENV_VARS = {
    "token": "WECHAT_TOKEN",
    "appid": "WECHAT_APPID",
    "appsecret": "WECHAT_APPSECRET",
    "aes_key": "WECHAT_AES_KEY",
    "mode": "WECHAT_MODE",
    "api_base": "WECHAT_API_BASE",
    "passive_only": "WECHAT_PASSIVE_ONLY",
    "reply_deadline": "WECHAT_REPLY_DEADLINE",
    "menu": "WECHAT_MENU",
    # "找人工" typed by a user: hand the message to the account's 客服 (transfer_customer_service)
    "transfer_to_kf": "WECHAT_TRANSFER_TO_KF",
    # shared state for several replicas (wechat_channel/state.py); unset: in this process
    "state_redis_url": "WECHAT_STATE_REDIS_URL",
    "state_key_prefix": "WECHAT_STATE_PREFIX",
}
# Status-change notifications (wechat_channel/notify.py), from the environment only:
# the template message used outside the 48 h window, its three keys (number, status, how
# to see details), and the secret the progress system signs its events with.
STATUS_ENV_VARS = {
    "status_template_id": "WECHAT_STATUS_TEMPLATE_ID",
    "status_template_keys": "WECHAT_STATUS_TEMPLATE_KEYS",
    "events_secret": "PROGRESS_EVENTS_SECRET",
}
DEFAULT_TEMPLATE_KEYS = ("keyword1", "keyword2", "remark")
STATE_URL_SCHEMES = ("redis://", "rediss://", "unix://")
# WeChat retries a push about 3 times, 5 s apart, each attempt dropped after 5 s.
WECHAT_RETRY_SPAN = 15.0
DEFAULT_STATE_PREFIX = "mzmtb:wechat"


class ConfigError(ValueError):
    pass


def _text(value: Any) -> Optional[str]:
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def _flag(value: Any) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "on"} if value is not None else False


@dataclasses.dataclass
class WeChatSettings:
    token: str
    appid: Optional[str] = None
    appsecret: Optional[str] = None
    aes_key: Optional[str] = None
    mode: str = "plain"
    api_base: str = DEFAULT_API_BASE
    # Accounts without the customer-service API (personal / unverified, error 48001):
    # late answers wait for the user's next message. Switched on at run time by 48001 too.
    passive_only: bool = False
    # WeChat drops the request after 5 s; answer passively only if the bot is done by then.
    reply_deadline: float = 4.5
    menu_path: pathlib.Path = ROOT / "knowledge" / "wechat_menu.yml"
    # The account staffs 客服: a typed request for a human is answered with WeChat's
    # transfer_customer_service passive reply instead of the hotline text.
    transfer_to_kf: bool = False
    # Retry claims, remembered buttons and held replies: in Redis when set (shared by every
    # replica, kept across restarts), otherwise in this process's memory.
    state_redis_url: Optional[str] = None
    state_key_prefix: str = DEFAULT_STATE_PREFIX
    # how long the tracker store keeps a conversation: the welcome's privacy notice says so
    retention_days: float = retention.DEFAULT_DAYS
    # status-change notifications (STATUS_ENV_VARS): no template id, no template messages;
    # no secret, every event is refused
    status_template_id: Optional[str] = None
    status_template_keys: tuple = DEFAULT_TEMPLATE_KEYS
    events_secret: Optional[str] = None
    # Not from the environment; tests and code may override them.
    max_body_bytes: int = 64 * 1024
    # A signed (timestamp, nonce) is accepted this long, and replayed only with the same body.
    timestamp_tolerance: float = 300.0
    turn_timeout: float = 60.0  # the bot's answer after this long is replaced by a fallback
    api_timeout: float = 5.0
    max_reply_bytes: int = 2048
    button_memory_size: int = 10000
    button_memory_ttl: float = 24 * 3600.0
    pending_ttl: float = 48 * 3600.0
    # Message claims and outcomes: an exact replay is accepted while its timestamp is fresh,
    # so the dedupe must outlast timestamp_tolerance + WeChat's retries (checked below).
    dedupe_ttl: float = 360.0

    def __post_init__(self) -> None:
        if not self.token or not re.fullmatch(r"[A-Za-z0-9]{3,32}", self.token):
            raise ConfigError("WECHAT_TOKEN must be 3-32 letters or digits")
        if self.mode not in MODES:
            raise ConfigError(f"WECHAT_MODE must be one of {', '.join(MODES)}")
        if self.mode != "plain":
            if not self.aes_key or len(self.aes_key) != 43:
                raise ConfigError(f"WECHAT_MODE={self.mode} needs WECHAT_AES_KEY (43 characters)")
            if not self.appid:
                raise ConfigError(f"WECHAT_MODE={self.mode} needs WECHAT_APPID")
        if not self.api_base.startswith(("http://", "https://")):
            raise ConfigError("WECHAT_API_BASE must be an http(s) URL")
        self.api_base = self.api_base.rstrip("/")
        if not 0 < self.reply_deadline < 5:
            raise ConfigError("WECHAT_REPLY_DEADLINE must be between 0 and 5 seconds")
        if self.state_redis_url and not self.state_redis_url.startswith(STATE_URL_SCHEMES):
            raise ConfigError("WECHAT_STATE_REDIS_URL must be a redis://, rediss:// or unix:// URL")
        if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", self.state_key_prefix or ""):
            raise ConfigError("WECHAT_STATE_PREFIX must be 1-64 letters, digits or _ . : -")
        if len(self.status_template_keys) != 3 or not all(
                re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,31}", key) for key in self.status_template_keys):
            raise ConfigError("WECHAT_STATUS_TEMPLATE_KEYS must be three template keys, "
                              "comma-separated (number, status, details), e.g. keyword1,keyword2,remark")
        if self.timestamp_tolerance <= 0:
            raise ConfigError("timestamp_tolerance must be positive")
        if self.dedupe_ttl <= self.timestamp_tolerance + WECHAT_RETRY_SPAN:
            # otherwise an exact replay, still fresh, would find no claim and run the bot again
            raise ConfigError(
                f"dedupe_ttl ({self.dedupe_ttl:g} s) must exceed timestamp_tolerance "
                f"({self.timestamp_tolerance:g} s) + WeChat's retry span ({WECHAT_RETRY_SPAN:g} s)"
            )

    @property
    def can_send_customer_messages(self) -> bool:
        return bool(self.appid and self.appsecret)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], environ: Optional[Mapping[str, str]] = None,
                     **overrides: Any) -> "WeChatSettings":
        """From a credentials.yml section (keys of ENV_VARS); unknown keys are an error.
        CONVERSATION_RETENTION_DAYS is read from `environ` (default: the process's)."""
        unknown = set(values) - set(ENV_VARS)
        if unknown:
            raise ConfigError(f"unknown WeChat settings: {', '.join(sorted(unknown))}")
        try:
            retention_days = retention.retention_days(os.environ if environ is None else environ)
        except retention.RetentionError as exc:
            raise ConfigError(str(exc)) from exc
        aes_key = _text(values.get("aes_key"))
        kwargs: dict = {
            "token": _text(values.get("token")) or "",
            "appid": _text(values.get("appid")),
            "appsecret": _text(values.get("appsecret")),
            "aes_key": aes_key,
            "mode": (_text(values.get("mode")) or ("safe" if aes_key else "plain")).lower(),
            "api_base": _text(values.get("api_base")) or DEFAULT_API_BASE,
            "passive_only": _flag(values.get("passive_only")),
            "transfer_to_kf": _flag(values.get("transfer_to_kf")),
            "state_redis_url": _text(values.get("state_redis_url")),
            "state_key_prefix": _text(values.get("state_key_prefix")) or DEFAULT_STATE_PREFIX,
            "retention_days": retention_days,
        }
        environ = os.environ if environ is None else environ
        kwargs["status_template_id"] = _text(environ.get(STATUS_ENV_VARS["status_template_id"]))
        kwargs["events_secret"] = _text(environ.get(STATUS_ENV_VARS["events_secret"]))
        keys = _text(environ.get(STATUS_ENV_VARS["status_template_keys"]))
        if keys:
            kwargs["status_template_keys"] = tuple(key.strip() for key in keys.split(","))
        if _text(values.get("reply_deadline")):
            try:
                kwargs["reply_deadline"] = float(values["reply_deadline"])
            except ValueError as exc:
                raise ConfigError("WECHAT_REPLY_DEADLINE must be a number") from exc
        if _text(values.get("menu")):
            path = pathlib.Path(str(values["menu"]))
            kwargs["menu_path"] = path if path.is_absolute() else ROOT / path
        kwargs.update(overrides)
        return cls(**kwargs)

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> "WeChatSettings":
        return cls.from_mapping(
            {key: environ[var] for key, var in ENV_VARS.items() if environ.get(var)}, environ,
            **overrides
        )

"""Customer-service message API, menu creation and stable access token, over aiohttp with timeouts.

One client per account. Errors are mapped in one place (`ERROR_KINDS`) to a small result
the delivery layer acts on; nothing here raises for WeChat or network failures.
"""
import asyncio
import dataclasses
import json
import logging
import time
from typing import Any, Callable, Dict, Optional

import aiohttp

from core import metrics

logger = logging.getLogger(__name__)

TOKEN_REFRESH_MARGIN = 300.0  # renew this many seconds before expiry
# stable_token with force_refresh invalidates the token for every holder (other replicas,
# tools) and WeChat allows it rarely (a few a day, 30 s apart): at most once a minute here.
FORCE_REFRESH_INTERVAL = 60.0

ERROR_KINDS = {
    40001: "token", 40014: "token", 42001: "token",  # invalid / expired: refresh and retry once
    45015: "window",  # outside the 48 h window, or the user unfollowed
    45047: "quota",  # too many customer-service messages for this user message
    48001: "no_permission",  # the account has no customer-service API
    45002: "too_long",
    43004: "unfollowed",  # the user does not follow the account (any more)
    40037: "bad_template",  # template_id unknown to this account
}


@dataclasses.dataclass
class SendResult:
    kind: str  # ok, token, window, quota, no_permission, too_long, unfollowed, bad_template, error
    errcode: Optional[int] = None

    @property
    def ok(self) -> bool:
        return self.kind == "ok"


def mask_openid(openid: Optional[str]) -> str:
    if not openid:
        return "-"
    return openid[:4] + "…" + openid[-2:] if len(openid) > 8 else "…"


class WeChatApiClient:
    def __init__(self, api_base: str, appid: str, appsecret: str, timeout: float = 5.0,
                 clock: Callable[[], float] = time.monotonic,
                 refresh_margin: float = TOKEN_REFRESH_MARGIN,
                 force_refresh_interval: float = FORCE_REFRESH_INTERVAL):
        self.api_base = api_base.rstrip("/")
        self.appid = appid
        self._appsecret = appsecret
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.clock = clock
        self.refresh_margin = refresh_margin
        self.force_refresh_interval = force_refresh_interval
        self._token: Optional[str] = None
        self._expires_at = 0.0
        self._lock: Optional[asyncio.Lock] = None
        self._session: Optional[aiohttp.ClientSession] = None
        self._forced_at: Optional[float] = None  # the last forced refresh
        self._stuck: Optional[str] = None  # refused, and stable_token keeps returning it
        self.token_fetches = 0  # for tests and diagnostics
        self.forced_refreshes = 0

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    def _session_for_loop(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def _post(self, path: str, payload: Dict[str, Any],
                    params: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
        """JSON POST; a network error, timeout or non-JSON answer gives {"errcode": -1}.
        A non-zero errcode is counted (metrics: by API path and code)."""
        data = await self._post_once(path, payload, params)
        errcode = data.get("errcode", 0)
        if errcode not in (0, None):
            try:
                code = str(int(errcode))
            except (TypeError, ValueError):
                code = "other"
            metrics.WECHAT_API_ERRORS.labels(call=path, errcode=code).inc()
        return data

    async def _post_once(self, path: str, payload: Dict[str, Any],
                         params: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        try:
            async with self._session_for_loop().post(
                self.api_base + path, params=params, data=body,
                headers={"Content-Type": "application/json; charset=utf-8"},
            ) as response:
                raw = await response.read()
                if response.status != 200:
                    logger.warning("wechat api %s answered HTTP %s", path, response.status)
                    return {"errcode": -1}
                data = json.loads(raw.decode("utf-8"))
                return data if isinstance(data, dict) else {"errcode": -1}
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, UnicodeDecodeError) as exc:
            logger.warning("wechat api %s failed: %s", path, type(exc).__name__)
            return {"errcode": -1}

    def _token_is_fresh(self, rejected: Optional[str]) -> bool:
        return (
            self._token is not None
            and self._token != rejected
            and self.clock() < self._expires_at - self.refresh_margin
        )

    def _may_force(self) -> bool:
        return (self._forced_at is None
                or self.clock() - self._forced_at >= self.force_refresh_interval)

    async def access_token(self, rejected: Optional[str] = None) -> Optional[str]:
        """A cached stable access token; `rejected` is one WeChat just refused.

        None when no token other than `rejected` can be had now. One refresh at a time:
        callers waiting on the lock reuse the token it fetched (or its failure).
        """
        if self._token_is_fresh(rejected):
            return self._token
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._token_is_fresh(rejected):
                return self._token
            if rejected is not None and rejected == self._stuck and not self._may_force():
                return None  # a caller before us found it stuck and could not force
            token = await self._fetch(force=False)
            if token is not None and token == rejected:
                # stable_token hands out its cached token even after WeChat invalidated
                # it (a token from /cgi-bin/token elsewhere, a forced refresh by a tool)
                if not self._may_force():
                    logger.warning("wechat: access token refused again; forced refresh "
                                   "not before %.0f s", self.force_refresh_interval)
                    self._stuck = token
                    return None
                self._forced_at = self.clock()
                self.forced_refreshes += 1
                logger.warning("wechat: access token refused and unchanged; forcing a refresh")
                token = await self._fetch(force=True)
                if token == rejected:
                    self._stuck = token
                    return None
            self._stuck = None
            return token

    async def _fetch(self, force: bool) -> Optional[str]:
        """stable_token; caches and returns the token (None when WeChat refused)."""
        self.token_fetches += 1
        data = await self._post("/cgi-bin/stable_token", {
            "grant_type": "client_credential", "appid": self.appid,
            "secret": self._appsecret, "force_refresh": force,
        })
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            logger.warning("wechat stable_token failed: errcode %s", data.get("errcode"))
            return None
        try:
            expires_in = float(data.get("expires_in", 7200))
        except (TypeError, ValueError):
            expires_in = 7200.0
        self._token, self._expires_at = token, self.clock() + expires_in
        return token

    async def _call(self, path: str, payload: Dict[str, Any], what: str) -> SendResult:
        """POST with the access token; refresh the token and retry once if it was refused."""
        token = await self.access_token()
        for attempt in (1, 2):
            if token is None:
                return SendResult("error")
            data = await self._post(path, payload, params={"access_token": token})
            errcode = data.get("errcode", 0)
            try:
                errcode = int(errcode)
            except (TypeError, ValueError):
                errcode = -1
            if errcode == 0:
                return SendResult("ok", 0)
            kind = ERROR_KINDS.get(errcode, "error")
            logger.warning("wechat %s: errcode %s (%s)", what, errcode, kind)
            if kind == "token" and attempt == 1:
                token = await self.access_token(rejected=token)
                if token is None:  # no other token to be had now
                    return SendResult(kind, errcode)
                continue
            return SendResult(kind, errcode)
        return SendResult("token")  # pragma: no cover - loop always returns

    async def send_text(self, openid: str, content: str) -> SendResult:
        """Customer-service text message."""
        return await self._call(
            "/cgi-bin/message/custom/send",
            {"touser": openid, "msgtype": "text", "text": {"content": content}},
            f"custom/send to {mask_openid(openid)}",
        )

    async def send_template(self, openid: str, template_id: str, fields: Dict[str, str],
                            url: Optional[str] = None) -> SendResult:
        """Template message (/cgi-bin/message/template/send): `fields` maps the template's
        keys (keyword1, thing2…) to their values; no window applies, the user must follow."""
        payload: Dict[str, Any] = {
            "touser": openid, "template_id": template_id,
            "data": {key: {"value": value} for key, value in fields.items()},
        }
        if url:
            payload["url"] = url
        return await self._call("/cgi-bin/message/template/send", payload,
                                f"template/send to {mask_openid(openid)}")

    async def create_menu(self, body: Dict[str, Any]) -> SendResult:
        """The account's custom menu: `body` is {"button": [...]} (menu.Menu.create_body)."""
        return await self._call("/cgi-bin/menu/create", body, "menu/create")

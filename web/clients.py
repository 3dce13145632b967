"""The console's client for Rasa. (The progress service has one client for everybody:
core/progress_client.py.)

Each call has a timeout (config.outbound_timeout, 2 s by default) and ends in a small
`Result`: ok (with data), not_found, or unavailable (timeout, refused, bad answer).
Callers decide what to show; nothing here raises for network trouble.
"""
import dataclasses
import logging
import secrets
import urllib.parse
from typing import Any, Optional

import aiohttp

logger = logging.getLogger("web.clients")


@dataclasses.dataclass
class Result:
    kind: str  # ok | not_found | unavailable
    data: Any = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.kind == "ok"


async def _request(method: str, url: str, timeout: float, **kwargs) -> Result:
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            async with session.request(method, url, **kwargs) as response:
                if response.status == 404:
                    return Result("not_found", reason="404")
                if response.status >= 400:
                    return Result("unavailable", reason=f"HTTP {response.status}")
                return Result("ok", await response.json(content_type=None))
    except Exception as error:  # timeout, refused, reset, invalid JSON
        return Result("unavailable", reason=type(error).__name__)


class RasaClient:
    def __init__(self, base_url: str, auth_token: str = "", timeout: float = 2.0):
        self.base_url = base_url.rstrip("/")
        self.auth_token = auth_token
        self.timeout = timeout

    async def parse(self, text: str) -> Result:
        """NLU only (intent, entities). Needs Rasa's HTTP API, i.e. an auth token."""
        if not self.auth_token:
            return Result("unavailable", reason="no RASA_AUTH_TOKEN")
        result = await _request(
            "POST", f"{self.base_url}/model/parse", self.timeout,
            params={"token": self.auth_token}, json={"text": text},
        )
        if result.ok and not isinstance(result.data, dict):
            return Result("unavailable", reason="unexpected parse answer")
        return result

    async def reply(self, text: str) -> Result:
        """The bot's own answer, through the web channel, in a throw-away conversation."""
        sender = "agent-console-" + secrets.token_hex(8)
        result = await _request(
            "POST", f"{self.base_url}/webhooks/web/webhook", self.timeout,
            json={"sender": sender, "message": text},
        )
        if result.ok and not isinstance(result.data, list):
            return Result("unavailable", reason="unexpected webhook answer")
        return result


    async def tracker(self, sender_id: str) -> Result:
        """A stored conversation, every session (Rasa's HTTP API; needs the token). The
        tracker store has masked ID numbers and redacted lookup credentials at rest."""
        if not self.auth_token:
            return Result("unavailable", reason="no RASA_AUTH_TOKEN")
        result = await _request(
            "GET", f"{self.base_url}/conversations/{urllib.parse.quote(sender_id, safe='')}/tracker",
            self.timeout, params={"token": self.auth_token, "include_events": "ALL"},
        )
        if result.ok and not isinstance(result.data, dict):
            return Result("unavailable", reason="unexpected tracker answer")
        return result


def describe(result: Optional[Result]) -> str:
    return "-" if result is None else f"{result.kind}({result.reason})" if result.reason else result.kind

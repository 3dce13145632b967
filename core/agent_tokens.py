"""Hotline-agent credentials for agent-mode lookups (header X-Agent-Token).

A token names one agent and expires: `v1.<agent, base64url>.<expiry, unix seconds>.<signature>`
where the signature is HMAC-SHA256 over `v1.<agent>.<expiry>` with PROGRESS_AGENT_SECRET.
The agent console, which authenticates its staff, issues one per signed-in agent with
`issue_agent_token`; the progress service checks it with `verify_agent_token` and
writes the agent's name into the audit log. No web framework here.
"""
import base64
import hashlib
import hmac
import time
from typing import Optional

from core.privacy import same_secret

_VERSION = "v1"


def _sign(secret: str, payload: str) -> str:
    # surrogatepass: a header with undecodable bytes is a wrong token, not an error
    return hmac.new(secret.encode("utf-8", "surrogatepass"), payload.encode("utf-8", "surrogatepass"),
                    hashlib.sha256).hexdigest()


def issue_agent_token(agent: str, secret: str, ttl_seconds: int = 8 * 3600,
                      now: Optional[float] = None) -> str:
    if not agent or not agent.strip():
        raise ValueError("agent name is required")
    if not secret:
        raise ValueError("PROGRESS_AGENT_SECRET is not set")
    encoded = base64.urlsafe_b64encode(agent.strip().encode("utf-8")).decode("ascii").rstrip("=")
    expiry = int((time.time() if now is None else now) + ttl_seconds)
    payload = f"{_VERSION}.{encoded}.{expiry}"
    return f"{payload}.{_sign(secret, payload)}"


def verify_agent_token(token: str, secret: str, now: Optional[float] = None) -> Optional[str]:
    """The agent's name if the token is genuine and unexpired, else None."""
    if not token or not secret:
        return None
    parts = token.strip().split(".")
    if len(parts) != 4 or parts[0] != _VERSION:
        return None
    payload = ".".join(parts[:3])
    if not same_secret(parts[3], _sign(secret, payload)):
        return None
    try:
        expiry = int(parts[2])
        agent = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    if expiry < (time.time() if now is None else now):
        return None
    return agent or None

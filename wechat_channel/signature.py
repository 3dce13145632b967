"""Request signatures: SHA-1 over the sorted, concatenated parts; constant-time compare."""
import hashlib
import hmac
from typing import Optional

TIMESTAMP_TOLERANCE_SECONDS = 300


def sign(*parts: str) -> str:
    """`sha1("".join(sorted(parts)))` as lowercase hex (URL check, POST signature, msg_signature)."""
    return hashlib.sha1("".join(sorted(str(part) for part in parts)).encode("utf-8")).hexdigest()


def check_signature(token: str, timestamp: str, nonce: str, signature: Optional[str]) -> bool:
    """The `signature` query parameter sent with every request (GET check and POST push)."""
    if not signature or timestamp is None or nonce is None:
        return False
    return hmac.compare_digest(sign(token, timestamp, nonce).encode(), signature.lower().encode())


def check_msg_signature(token: str, timestamp: str, nonce: str, encrypt: str,
                        msg_signature: Optional[str]) -> bool:
    """`msg_signature` of an encrypted push: the signature also covers the Encrypt field."""
    if not msg_signature or timestamp is None or nonce is None or not encrypt:
        return False
    return hmac.compare_digest(
        sign(token, timestamp, nonce, encrypt).encode(), msg_signature.lower().encode()
    )


def is_fresh(timestamp: Optional[str], now: float,
             tolerance: float = TIMESTAMP_TOLERANCE_SECONDS) -> bool:
    """True when the request's timestamp is within `tolerance` seconds of our clock."""
    if not timestamp or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    return abs(int(timestamp) - now) <= tolerance

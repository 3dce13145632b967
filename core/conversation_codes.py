"""Conversation codes for the hotline (issue 19): a short code a person reads out on the
phone so that an agent can see what they said to the bot.

The action server issues a code when someone asks for a person (actions/answers.py,
actions/fallback.py); the web app's console looks it up (web/app.py). Both open the same
store: SQLite under .state/ by default, any SQLAlchemy URL (PostgreSQL in production)
from CONVERSATION_CODES_DATABASE_URL.

- A code is 6 characters from an alphabet without look-alikes (no 0/O, 1/I/L, U/V), about
  29 bits; it is valid for 24 hours from its issue.
- At rest only the SHA-256 of the code is kept, next to the conversation's sender id (the
  row's purpose) and a random nonce. The code itself is HMAC(CONVERSATION_CODE_KEY, nonce)
  mapped to the alphabet: the action server can say the same code again when the same
  conversation asks again, while a copy of the table (or the web app, which never holds
  the key) cannot derive any code. The nonce comes from `secrets`, so codes are not
  predictable even to someone who knows earlier ones.
- Rows are purged a day after they expire (until then the console can say "expired"
  instead of "wrong").
"""
import dataclasses
import hashlib
import hmac
import math
import os
import secrets
import threading
import time
import unicodedata
from typing import Callable, Mapping, Optional

import sqlalchemy as sa

from core import defaults
from core.private_files import private_database_file

DATABASE_URL_ENV = "CONVERSATION_CODES_DATABASE_URL"
KEY_ENV = "CONVERSATION_CODE_KEY"
DEFAULT_DATABASE_URL = f"sqlite:///{defaults.STATE_DIR / 'conversation-codes.db'}"

# Crockford's base32 without 0, 1 and U: nothing that reads like another character on the
# phone or on screen (0/O, 1/I/L, U/V).
ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 6
VALID_SECONDS = 24 * 3600
# expired rows stay this long so that the console can tell "expired" from "wrong"
KEEP_EXPIRED_SECONDS = 24 * 3600
# anything longer that an agent types is not looked at (hostile input stays cheap)
MAX_TYPED_CHARS = 64
_SEPARATORS = " -_.·\u3000"

metadata = sa.MetaData()
codes_table = sa.Table(
    "conversation_codes", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("code_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("sender_id", sa.String(255), nullable=False, index=True),
    sa.Column("nonce", sa.String(64), nullable=False),
    sa.Column("issued_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
)


@dataclasses.dataclass(frozen=True)
class IssuedCode:
    code: str
    expires_at: float
    reused: bool

    def hours_left(self, now: float) -> int:
        """Whole hours of validity left, rounded up (what the reply promises)."""
        return max(1, math.ceil((self.expires_at - now) / 3600))


@dataclasses.dataclass(frozen=True)
class FoundCode:
    sender_id: str
    issued_at: float
    expires_at: float
    row_id: int


def code_hash(code: str) -> str:
    return hashlib.sha256(("conversation-code:" + code).encode("utf-8")).hexdigest()


def derive_code(key: bytes, nonce: str) -> str:
    digest = hmac.new(key, nonce.encode("ascii"), hashlib.sha256).digest()
    value = int.from_bytes(digest, "big")  # 256 bits: the modulo bias is negligible
    characters = []
    for _ in range(LENGTH):
        value, index = divmod(value, len(ALPHABET))
        characters.append(ALPHABET[index])
    return "".join(characters)


def normalize_typed_code(typed: object) -> Optional[str]:
    """What an agent typed as a code, or None when it cannot be one (wrong length, a
    character outside the alphabet). Case, full-width forms, spaces and dashes are forgiven."""
    if not isinstance(typed, str):
        return None
    text = unicodedata.normalize("NFKC", typed[:MAX_TYPED_CHARS]).upper()
    text = "".join(character for character in text if character not in _SEPARATORS)
    if len(text) != LENGTH or any(character not in ALPHABET for character in text):
        return None
    return text


def database_url(environ: Mapping[str, str] = os.environ) -> str:
    return environ.get(DATABASE_URL_ENV) or DEFAULT_DATABASE_URL


class CodeStore:
    """The table of codes. `key` is needed only to issue codes (the action server); the
    console reads with `key=None`. `clock` is injectable for tests."""

    def __init__(self, url: str, key: Optional[str] = None, clock: Callable[[], float] = time.time):
        self.url = url
        self.key = key.encode("utf-8") if key else None
        self.clock = clock
        self._lock = threading.Lock()
        private_database_file(url)
        self.engine = sa.create_engine(url, future=True, pool_pre_ping=True)
        metadata.create_all(self.engine)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, with_key: bool = False,
                 clock: Callable[[], float] = time.time) -> "CodeStore":
        """with_key: the issuing side. Without CONVERSATION_CODE_KEY it uses a key of this
        process only (a development fallback): the same conversation then gets a new code
        after a restart of the action server, the old one staying valid."""
        key = None
        if with_key:
            key = environ.get(KEY_ENV) or secrets.token_urlsafe(32)
        return cls(database_url(environ), key=key, clock=clock)

    def issue(self, sender_id: str) -> IssuedCode:
        """The conversation's code: the one still valid, else a new one."""
        if not self.key:
            raise RuntimeError("this store cannot issue codes (no key)")
        now = self.clock()
        table = codes_table
        with self._lock, self.engine.begin() as db:
            db.execute(table.delete().where(table.c.expires_at < now - KEEP_EXPIRED_SECONDS))
            rows = db.execute(
                sa.select(table.c.code_hash, table.c.nonce, table.c.expires_at)
                .where(table.c.sender_id == sender_id, table.c.expires_at > now)
                .order_by(table.c.expires_at.desc())
            ).fetchall()
            for row in rows:
                code = derive_code(self.key, row.nonce)
                if hmac.compare_digest(code_hash(code), row.code_hash):  # else: another key
                    return IssuedCode(code, row.expires_at, reused=True)
            while True:
                nonce = secrets.token_hex(16)
                code = derive_code(self.key, nonce)
                hashed = code_hash(code)
                taken = db.execute(sa.select(table.c.id).where(table.c.code_hash == hashed)).first()
                if taken is None:  # a clash in 729 million: draw again
                    break
            expires_at = now + VALID_SECONDS
            db.execute(table.insert().values(code_hash=hashed, sender_id=sender_id, nonce=nonce,
                                             issued_at=now, expires_at=expires_at))
        return IssuedCode(code, expires_at, reused=False)

    def find(self, code: str) -> Optional[FoundCode]:
        """The row of a normalised code (valid or expired), or None."""
        table = codes_table
        with self.engine.connect() as db:
            row = db.execute(
                sa.select(table.c.id, table.c.sender_id, table.c.issued_at, table.c.expires_at)
                .where(table.c.code_hash == code_hash(code))
            ).first()
        if row is None:
            return None
        return FoundCode(sender_id=row.sender_id, issued_at=row.issued_at,
                         expires_at=row.expires_at, row_id=row.id)

    def is_valid(self, found: FoundCode) -> bool:
        return found.expires_at > self.clock()

    def purge(self) -> int:
        table = codes_table
        with self._lock, self.engine.begin() as db:
            return db.execute(table.delete().where(
                table.c.expires_at < self.clock() - KEEP_EXPIRED_SECONDS)).rowcount

    def close(self) -> None:
        self.engine.dispose()

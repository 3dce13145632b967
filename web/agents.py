"""Hotline-agent accounts, console sessions and the console's audit trail (one SQLite file).

Passwords are hashed with scrypt (stdlib `hashlib.scrypt`, N=2^15, r=8, p=3: an OWASP
recommended setting, 32 MiB per hash). The stored form carries its parameters, so they
can be raised later without invalidating existing accounts.

Sessions: the browser holds a random token in an HttpOnly cookie; the database keeps
only its SHA-256, so a copy of the file does not let anyone sign in. A session ends on
sign-out or after `idle_seconds` without a request. Each session has its own CSRF token.

Command line (used by `make agent-add USER=<name> PASSWORD=<password>`):
    python -m web.agents add <name>      # password from $PASSWORD, else asked on a terminal
    python -m web.agents list
    python -m web.agents remove <name>
"""
import argparse
import base64
import getpass
import hashlib
import hmac
import os
import pathlib
import re
import secrets
import sqlite3
import sys
import threading
import time
from typing import List, Optional, Tuple

from core.private_files import private_sqlite_file
from web.config import WebConfig

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 15, 8, 3
SCRYPT_MAXMEM = 64 * 1024 * 1024
USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{2,32}$")
MIN_PASSWORD_LENGTH = 10

SCHEMA = """
CREATE TABLE IF NOT EXISTS agents (
    username      TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    created_at    REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,
    username   TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_seen  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       REAL NOT NULL,
    username TEXT NOT NULL,
    kind     TEXT NOT NULL,
    subject  TEXT NOT NULL,
    outcome  TEXT NOT NULL
);
"""


class AccountError(ValueError):
    """A user name or password that cannot be used; the message is for the operator."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, salt: Optional[bytes] = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
        maxmem=SCRYPT_MAXMEM, dklen=32,
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r),
            p=int(p), maxmem=max(SCRYPT_MAXMEM, 128 * int(n) * int(r) * 2), dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


# Compared against when the user name is unknown, so both cases take the same time.
_DUMMY_HASH = None


def _dummy_hash() -> str:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(secrets.token_hex(16))
    return _DUMMY_HASH


def _token_hash(token: str) -> str:
    # surrogatepass: a cookie with undecodable bytes is an unknown session, not a 500
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def mask(text: str) -> str:
    """For logs and the audit trail: keep the first 2 and last 2 characters."""
    text = text or ""
    if len(text) <= 4:
        return "*" * len(text)
    return text[:2] + "*" * (len(text) - 4) + text[-2:]


class AgentStore:
    def __init__(self, path: pathlib.Path, idle_seconds: int = 900, clock=time.time):
        self.path = pathlib.Path(path)
        self.idle_seconds = idle_seconds
        self.clock = clock
        self._lock = threading.Lock()
        # 0600 in a 0700 state folder before SQLite creates it (core/private_files.py)
        private_sqlite_file(self.path)
        with self._connect() as db:
            db.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(str(self.path), timeout=5)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    # --- accounts --------------------------------------------------------------------
    def add_agent(self, username: str, password: str, replace: bool = True) -> bool:
        """Create the account, or set a new password. Returns True when it was new."""
        if not USERNAME_PATTERN.match(username or ""):
            raise AccountError("用户名只能用 2–32 位字母、数字、点、下划线或连字符")
        if len(password or "") < MIN_PASSWORD_LENGTH:
            raise AccountError(f"密码至少 {MIN_PASSWORD_LENGTH} 位")
        password_hash = hash_password(password)
        with self._lock, self._connect() as db:
            exists = db.execute("SELECT 1 FROM agents WHERE username=?", (username,)).fetchone()
            if exists and not replace:
                raise AccountError("该用户已存在")
            db.execute(
                "INSERT OR REPLACE INTO agents(username, password_hash, created_at) VALUES (?,?,?)",
                (username, password_hash, self.clock()),
            )
            if exists:  # a new password ends the sessions opened with the old one
                db.execute("DELETE FROM sessions WHERE username=?", (username,))
        return not exists

    def remove_agent(self, username: str) -> bool:
        with self._lock, self._connect() as db:
            db.execute("DELETE FROM sessions WHERE username=?", (username,))
            return db.execute("DELETE FROM agents WHERE username=?", (username,)).rowcount > 0

    def list_agents(self) -> List[str]:
        with self._connect() as db:
            return [row[0] for row in db.execute("SELECT username FROM agents ORDER BY username")]

    def check_password(self, username: str, password: str) -> bool:
        with self._connect() as db:
            row = db.execute(
                "SELECT password_hash FROM agents WHERE username=?", (username or "",)
            ).fetchone()
        if row is None:
            verify_password(password or "", _dummy_hash())
            return False
        return verify_password(password or "", row[0])

    # --- sessions --------------------------------------------------------------------
    def open_session(self, username: str) -> Tuple[str, str]:
        """Returns (session token for the cookie, CSRF token for the page)."""
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock, self._connect() as db:
            db.execute("DELETE FROM sessions WHERE last_seen < ?", (now - self.idle_seconds,))
            db.execute(
                "INSERT INTO sessions(token_hash, username, csrf_token, created_at, last_seen)"
                " VALUES (?,?,?,?,?)",
                (_token_hash(token), username, csrf, now, now),
            )
        return token, csrf

    def touch_session(self, token: str) -> Optional[Tuple[str, str]]:
        """(username, csrf token) of a live session, whose idle clock restarts; else None."""
        if not token:
            return None
        now = self.clock()
        key = _token_hash(token)
        with self._lock, self._connect() as db:
            row = db.execute(
                "SELECT s.username, s.csrf_token, s.last_seen FROM sessions s"
                " JOIN agents a ON a.username = s.username WHERE s.token_hash=?",
                (key,),
            ).fetchone()
            if row is None:
                return None
            if now - row[2] > self.idle_seconds:
                db.execute("DELETE FROM sessions WHERE token_hash=?", (key,))
                return None
            db.execute("UPDATE sessions SET last_seen=? WHERE token_hash=?", (now, key))
        return row[0], row[1]

    def close_session(self, token: str) -> None:
        with self._lock, self._connect() as db:
            db.execute("DELETE FROM sessions WHERE token_hash=?", (_token_hash(token or ""),))

    # --- audit -----------------------------------------------------------------------
    def audit(self, username: str, kind: str, subject: str, outcome: str) -> None:
        """`subject` must already be masked where it identifies a person or application."""
        with self._lock, self._connect() as db:
            db.execute(
                "INSERT INTO audit(at, username, kind, subject, outcome) VALUES (?,?,?,?,?)",
                (self.clock(), username, kind, subject, outcome),
            )

    def audit_rows(self, limit: int = 50) -> List[dict]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT at, username, kind, subject, outcome FROM audit ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [dict(zip(("at", "username", "kind", "subject", "outcome"), row)) for row in rows]


def default_db_path() -> pathlib.Path:
    return WebConfig.from_env().agent_db


def _read_password(username: str) -> str:
    password = os.environ.get("PASSWORD") or os.environ.get("AGENT_PASSWORD") or ""
    if password:
        return password
    if sys.stdin.isatty():
        first = getpass.getpass(f"为 {username} 设置密码（至少 {MIN_PASSWORD_LENGTH} 位）：")
        if getpass.getpass("再输入一次：") != first:
            raise AccountError("两次输入的密码不一致")
        return first
    raise AccountError("没有密码：请用 PASSWORD=<密码> 传入（例如 make agent-add USER=li PASSWORD=...）")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m web.agents", description="热线坐席账号管理")
    parser.add_argument("--db", type=pathlib.Path, default=None, help="默认取 AGENT_DB 或 .state/agents.db")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="新建账号或重设密码（密码取自环境变量 PASSWORD）")
    add.add_argument("username")
    remove = commands.add_parser("remove", help="删除账号")
    remove.add_argument("username")
    commands.add_parser("list", help="列出账号")
    args = parser.parse_args(argv)

    store = AgentStore(args.db or default_db_path())
    try:
        if args.command == "add":
            created = store.add_agent(args.username, _read_password(args.username))
            print(f"{'已创建' if created else '已重设密码'}：{args.username}（{store.path}）")
        elif args.command == "remove":
            print("已删除" if store.remove_agent(args.username) else "没有这个账号")
        else:
            for name in store.list_agents():
                print(name)
    except AccountError as error:
        print(f"错误：{error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

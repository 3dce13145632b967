"""Hotline-agent accounts, console sessions and the console's audit trail.

One SQLAlchemy store (Core, as core/conversation_codes.py and the progress service): the
SQLite file AGENT_DB (.state/agents.db) by default, or any SQLAlchemy URL from
AGENT_DATABASE_URL — PostgreSQL in production, so that every web replica shares the
accounts, the sessions and the audit. The tables are the ones the earlier sqlite3 version
created (same names, columns and types), so an existing AGENT_DB keeps working as it is;
the additions (an index on audit(username, at) for the lookup limits, the `devices` table)
are created on start when missing.

Passwords are hashed with scrypt (stdlib `hashlib.scrypt`, N=2^15, r=8, p=3: an OWASP
recommended setting, 32 MiB per hash). The stored form carries its parameters, so they
can be raised later without invalidating existing accounts.

Sessions: the browser holds a random token in an HttpOnly cookie; the database keeps
only its SHA-256, so a copy of the database does not let anyone sign in. A session ends on
sign-out, after `idle_seconds` without a request, or `max_seconds` after sign-in whatever
the activity (absolute lifetime, 8 hours by default). Each session has its own CSRF token.
A browser that signed in gets a device token too (30 days, its SHA-256 in `devices`): the
sign-in back-off counts its failures apart, so a stranger's cannot lock the agent out there.

Roles (issue 19): an account is an `agent` or a `supervisor` (the console's supervisor
page, docs/operations.md); `agents.role`, added to older databases on start, NULL = agent.

Command line (used by `make agent-add USER=<name> PASSWORD=<password> [ROLE=supervisor]`):
    python -m web.agents add [--role agent|supervisor] <name>   # password from $PASSWORD, else asked on a terminal
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
import sys
import threading
import time
from typing import List, Optional, Sequence, Tuple, Union

import sqlalchemy as sa

from core.private_files import private_sqlite_file, sqlite_path
from web.config import WebConfig

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 15, 8, 3
SCRYPT_MAXMEM = 64 * 1024 * 1024
USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{2,32}$")
MIN_PASSWORD_LENGTH = 10
DEFAULT_MAX_SECONDS = 8 * 3600

# The schema the sqlite3 version created, column for column (TEXT, REAL, INTEGER
# AUTOINCREMENT), so that files it made open unchanged.
metadata = sa.MetaData()
agents_table = sa.Table(
    "agents", metadata,
    sa.Column("username", sa.Text, primary_key=True),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    # added later (issue 19): "agent" or "supervisor"; NULL (accounts made before) is "agent".
    # Nullable without a default, so an older database gets it by a plain ADD COLUMN.
    sa.Column("role", sa.Text, nullable=True),
)
sessions_table = sa.Table(
    "sessions", metadata,
    sa.Column("token_hash", sa.Text, primary_key=True),
    sa.Column("username", sa.Text, nullable=False),
    sa.Column("csrf_token", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_seen", sa.Float, nullable=False),
)
audit_table = sa.Table(
    "audit", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("username", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("outcome", sa.Text, nullable=False),
    sqlite_autoincrement=True,
)
# added later, created on start when an older database lacks them: the index for the
# lookup limits, and the browsers an agent signed in from (the sign-in back-off spares them)
audit_user_time = sa.Index("audit_username_at", audit_table.c.username, audit_table.c.at)
devices_table = sa.Table(
    "devices", metadata,
    sa.Column("token_hash", sa.Text, primary_key=True),
    sa.Column("username", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)
DEVICE_SECONDS = 30 * 24 * 3600
AGENT, SUPERVISOR = "agent", "supervisor"
ROLES = (AGENT, SUPERVISOR)


def _add_role_column(engine) -> None:
    """agents.role on a database made before it existed (SQLite or PostgreSQL): a
    nullable column, NULL read as "agent". Replicas starting together may race; the
    loser finds the column there."""
    if "role" in {column["name"] for column in sa.inspect(engine).get_columns("agents")}:
        return
    try:
        with engine.begin() as db:
            if engine.dialect.name == "postgresql":
                db.execute(sa.text("ALTER TABLE agents ADD COLUMN IF NOT EXISTS role TEXT"))
            else:
                db.execute(sa.text("ALTER TABLE agents ADD COLUMN role TEXT"))
    except sa.exc.DBAPIError:
        if "role" not in {column["name"] for column in sa.inspect(engine).get_columns("agents")}:
            raise

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


def database_url(location: Union[str, pathlib.Path]) -> str:
    """An SQLAlchemy URL for a file path (the AGENT_DB form) or a URL (kept)."""
    text = str(location)
    return text if "://" in text else f"sqlite:///{text}"


class AgentStore:
    """`location`: an SQLite file path (AGENT_DB) or an SQLAlchemy URL (AGENT_DATABASE_URL).
    `clock` is injectable for tests."""

    def __init__(self, location: Union[str, pathlib.Path], idle_seconds: int = 900,
                 clock=time.time, max_seconds: int = DEFAULT_MAX_SECONDS):
        self.url = database_url(location)
        self.path = sqlite_path(self.url)
        self.idle_seconds = idle_seconds
        self.max_seconds = max_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self.sqlite = self.url.startswith("sqlite")
        if self.path is not None:
            # 0600 in a 0700 state folder before SQLite creates it (core/private_files.py)
            private_sqlite_file(self.path)
        connect_args = {"timeout": 5} if self.sqlite else {}
        self.engine = sa.create_engine(self.url, future=True, pool_pre_ping=not self.sqlite,
                                       connect_args=connect_args)
        if self.sqlite:
            sa.event.listen(self.engine, "connect", _sqlite_wal)
        metadata.create_all(self.engine)
        audit_user_time.create(self.engine, checkfirst=True)
        _add_role_column(self.engine)

    def describe(self) -> str:
        """Where the store is, for the operator (no password)."""
        return str(self.path) if self.path is not None else sa.engine.make_url(self.url).__repr__()

    def close(self) -> None:
        self.engine.dispose()

    # --- accounts --------------------------------------------------------------------
    def add_agent(self, username: str, password: str, replace: bool = True,
                  role: Optional[str] = None) -> bool:
        """Create the account, or set a new password. Returns True when it was new.
        `role`: "agent" or "supervisor"; None keeps an existing account's role (a new
        account is an agent). A changed role ends the account's sessions too."""
        if role is not None and role not in ROLES:
            raise AccountError("角色只能是 agent（坐席）或 supervisor（主管）")
        if not USERNAME_PATTERN.match(username or ""):
            raise AccountError("用户名只能用 2–32 位字母、数字、点、下划线或连字符")
        if len(password or "") < MIN_PASSWORD_LENGTH:
            raise AccountError(f"密码至少 {MIN_PASSWORD_LENGTH} 位")
        password_hash = hash_password(password)
        agents, sessions = agents_table, sessions_table
        with self._lock, self.engine.begin() as db:
            exists = db.execute(sa.select(agents.c.username).where(
                agents.c.username == username).with_for_update()).first() is not None
            if exists and not replace:
                raise AccountError("该用户已存在")
            if exists:
                values = {"password_hash": password_hash, "created_at": self.clock()}
                if role is not None:
                    values["role"] = role
                db.execute(agents.update().where(agents.c.username == username).values(**values))
                # a new password ends the sessions opened with the old one
                db.execute(sessions.delete().where(sessions.c.username == username))
            else:
                db.execute(agents.insert().values(username=username, password_hash=password_hash,
                                                  created_at=self.clock(), role=role or AGENT))
        return not exists

    def remove_agent(self, username: str) -> bool:
        agents, sessions = agents_table, sessions_table
        with self._lock, self.engine.begin() as db:
            db.execute(sessions.delete().where(sessions.c.username == username))
            db.execute(devices_table.delete().where(devices_table.c.username == username))
            return db.execute(agents.delete().where(agents.c.username == username)).rowcount > 0

    def list_agents(self) -> List[str]:
        with self.engine.connect() as db:
            return [row[0] for row in db.execute(
                sa.select(agents_table.c.username).order_by(agents_table.c.username))]

    def role(self, username: str) -> Optional[str]:
        """"agent" or "supervisor"; None when there is no such account. Read on every
        supervisor request, so a changed role counts at once."""
        with self.engine.connect() as db:
            row = db.execute(sa.select(agents_table.c.role).where(
                agents_table.c.username == (username or ""))).first()
        if row is None:
            return None
        return SUPERVISOR if row[0] == SUPERVISOR else AGENT

    def check_password(self, username: str, password: str) -> bool:
        with self.engine.connect() as db:
            row = db.execute(sa.select(agents_table.c.password_hash).where(
                agents_table.c.username == (username or ""))).first()
        if row is None:
            verify_password(password or "", _dummy_hash())
            return False
        return verify_password(password or "", row[0])

    # --- sessions --------------------------------------------------------------------
    def open_session(self, username: str) -> Tuple[str, str]:
        """Returns (session token for the cookie, CSRF token for the page)."""
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self.clock()
        sessions = sessions_table
        with self._lock, self.engine.begin() as db:
            db.execute(sessions.delete().where(sa.or_(
                sessions.c.last_seen < now - self.idle_seconds,
                sessions.c.created_at < now - self.max_seconds)))
            db.execute(sessions.insert().values(token_hash=_token_hash(token), username=username,
                                                csrf_token=csrf, created_at=now, last_seen=now))
        return token, csrf

    def touch_session(self, token: str) -> Optional[Tuple[str, str]]:
        """(username, csrf token) of a live session, whose idle clock restarts; else None."""
        if not token:
            return None
        now = self.clock()
        key = _token_hash(token)
        sessions, agents = sessions_table, agents_table
        with self._lock, self.engine.begin() as db:
            row = db.execute(
                sa.select(sessions.c.username, sessions.c.csrf_token, sessions.c.last_seen,
                          sessions.c.created_at)
                .select_from(sessions.join(agents, agents.c.username == sessions.c.username))
                .where(sessions.c.token_hash == key)
            ).first()
            if row is None:
                return None
            if now - row.last_seen > self.idle_seconds or now - row.created_at > self.max_seconds:
                db.execute(sessions.delete().where(sessions.c.token_hash == key))
                return None
            db.execute(sessions.update().where(sessions.c.token_hash == key).values(last_seen=now))
        return row.username, row.csrf_token

    def close_session(self, token: str) -> None:
        with self._lock, self.engine.begin() as db:
            db.execute(sessions_table.delete().where(
                sessions_table.c.token_hash == _token_hash(token or "")))

    # --- devices ---------------------------------------------------------------------
    def remember_device(self, username: str) -> str:
        """A token for the browser that just signed in as `username` (the device cookie):
        its failures are counted apart from a stranger's (web/limits.py)."""
        token = secrets.token_urlsafe(32)
        now = self.clock()
        devices = devices_table
        with self._lock, self.engine.begin() as db:
            db.execute(devices.delete().where(devices.c.created_at < now - DEVICE_SECONDS))
            db.execute(devices.insert().values(token_hash=_token_hash(token), username=username,
                                               created_at=now))
        return token

    def device_user(self, token: str) -> Optional[str]:
        """The agent whose browser holds this device token, if it is still valid."""
        if not token:
            return None
        devices = devices_table
        with self.engine.connect() as db:
            row = db.execute(sa.select(devices.c.username, devices.c.created_at).where(
                devices.c.token_hash == _token_hash(token))).first()
        if row is None or row.created_at < self.clock() - DEVICE_SECONDS:
            return None
        return row.username

    # --- audit -----------------------------------------------------------------------
    def audit(self, username: str, kind: str, subject: str, outcome: str) -> int:
        """`subject` must already be masked where it identifies a person or application.
        Returns the row's id."""
        with self._lock, self.engine.begin() as db:
            return db.execute(audit_table.insert().values(
                at=self.clock(), username=username, kind=kind, subject=subject, outcome=outcome,
            )).inserted_primary_key[0]

    def reserve(self, username: str, kind: str, subject: str,
                limits: Sequence[Tuple[int, float]]) -> Optional[int]:
        """Counts this agent's audit rows of `kind` (refused ones aside) within each
        (limit, window); under every limit: writes the row (outcome `pending`, to be set
        by `finish`) and returns its id; else writes a `rate_limited` row and returns None.
        Check and write are one transaction holding the agent's row (FOR UPDATE on
        PostgreSQL; the write lock on SQLite), so replicas cannot both take the last one."""
        audit = audit_table
        now = self.clock()
        with self._lock, self.engine.begin() as db:
            db.execute(sa.select(agents_table.c.username).where(
                agents_table.c.username == username).with_for_update())
            for limit, window in limits:
                used = db.execute(sa.select(sa.func.count()).select_from(audit).where(
                    audit.c.username == username, audit.c.kind == kind,
                    audit.c.at > now - window, audit.c.outcome != "rate_limited")).scalar_one()
                if used >= limit:
                    db.execute(audit.insert().values(at=now, username=username, kind=kind,
                                                     subject=subject, outcome="rate_limited"))
                    return None
            return db.execute(audit.insert().values(
                at=now, username=username, kind=kind, subject=subject, outcome="pending",
            )).inserted_primary_key[0]

    def finish(self, row_id: int, subject: str, outcome: str) -> None:
        with self._lock, self.engine.begin() as db:
            db.execute(audit_table.update().where(audit_table.c.id == row_id).values(
                subject=subject, outcome=outcome))

    def audit_rows(self, limit: int = 50) -> List[dict]:
        audit = audit_table
        with self.engine.connect() as db:
            rows = db.execute(sa.select(audit.c.at, audit.c.username, audit.c.kind, audit.c.subject,
                                        audit.c.outcome).order_by(audit.c.id.desc()).limit(limit)).fetchall()
        return [dict(zip(("at", "username", "kind", "subject", "outcome"), row)) for row in rows]


def _sqlite_wal(connection, _record) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def default_location() -> str:
    return WebConfig.from_env().agent_store_location

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
    parser.add_argument("--db", type=pathlib.Path, default=None, help="SQLite 文件；默认取 AGENT_DATABASE_URL，否则 AGENT_DB 或 .state/agents.db")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="新建账号或重设密码（密码取自环境变量 PASSWORD）")
    add.add_argument("--role", choices=ROLES, default=None,
                     help="agent（坐席，新账号的默认）或 supervisor（主管：可看未答问题页）；不写则保留原角色")
    add.add_argument("username")
    remove = commands.add_parser("remove", help="删除账号")
    remove.add_argument("username")
    commands.add_parser("list", help="列出账号")
    args = parser.parse_args(argv)

    store = AgentStore(args.db or default_location())
    try:
        if args.command == "add":
            created = store.add_agent(args.username, _read_password(args.username), role=args.role)
            print(f"{'已创建' if created else '已重设密码'}：{args.username}"
                  f"（{store.role(args.username)}，{store.describe()}）")
        elif args.command == "remove":
            print("已删除" if store.remove_agent(args.username) else "没有这个账号")
        else:
            for name in store.list_agents():
                print(name if store.role(name) == AGENT else f"{name} {SUPERVISOR}")
    except AccountError as error:
        print(f"错误：{error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

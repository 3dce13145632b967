"""Agent accounts: strong hashing, sign-in checks, idle sessions, creation without a terminal."""
import os
import pathlib
import sqlite3
import subprocess

import pytest

from web.agents import AccountError, AgentStore, hash_password, mask, verify_password

ROOT = pathlib.Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


def test_password_is_stored_as_salted_scrypt_never_in_clear(tmp_path):
    store = AgentStore(tmp_path / "agents.db")
    store.add_agent("zhang", "long-secret-pass-1")
    with sqlite3.connect(str(tmp_path / "agents.db")) as db:
        stored = db.execute("SELECT password_hash FROM agents").fetchone()[0]
    assert "long-secret-pass-1" not in stored
    scheme, n, r, p, _salt, _digest = stored.split("$")
    assert scheme == "scrypt" and int(n) >= 2 ** 15 and int(r) >= 8
    # same password, different salt -> different hash
    assert hash_password("long-secret-pass-1") != hash_password("long-secret-pass-1")


def test_only_the_right_password_signs_in(tmp_path):
    store = AgentStore(tmp_path / "agents.db")
    store.add_agent("zhang", "long-secret-pass-1")
    assert store.check_password("zhang", "long-secret-pass-1")
    assert not store.check_password("zhang", "long-secret-pass-2")
    assert not store.check_password("zhang", "")
    assert not store.check_password("nobody", "long-secret-pass-1")
    assert not verify_password("x", "not-a-hash")


def test_weak_passwords_and_odd_names_are_refused(tmp_path):
    store = AgentStore(tmp_path / "agents.db")
    with pytest.raises(AccountError):
        store.add_agent("zhang", "short")
    with pytest.raises(AccountError):
        store.add_agent("zh ang; drop", "long-secret-pass-1")
    assert store.list_agents() == []


def test_session_ends_after_inactivity_but_activity_keeps_it_alive(tmp_path):
    clock = Clock()
    store = AgentStore(tmp_path / "agents.db", idle_seconds=600, clock=clock)
    store.add_agent("zhang", "long-secret-pass-1")
    token, csrf = store.open_session("zhang")
    clock.now += 500
    assert store.touch_session(token) == ("zhang", csrf)
    clock.now += 500  # 1000 s after sign-in, but only 500 s idle
    assert store.touch_session(token) == ("zhang", csrf)
    clock.now += 601
    assert store.touch_session(token) is None
    assert store.touch_session(token) is None  # and it stays gone


def test_session_token_is_not_stored_and_sign_out_ends_it(tmp_path):
    store = AgentStore(tmp_path / "agents.db")
    store.add_agent("zhang", "long-secret-pass-1")
    token, _ = store.open_session("zhang")
    with sqlite3.connect(str(tmp_path / "agents.db")) as db:
        stored = [row[0] for row in db.execute("SELECT token_hash FROM sessions")]
    assert token not in stored and len(stored) == 1
    store.close_session(token)
    assert store.touch_session(token) is None


def test_new_password_ends_existing_sessions(tmp_path):
    store = AgentStore(tmp_path / "agents.db")
    store.add_agent("zhang", "long-secret-pass-1")
    token, _ = store.open_session("zhang")
    assert store.add_agent("zhang", "long-secret-pass-2") is False
    assert store.touch_session(token) is None
    assert store.check_password("zhang", "long-secret-pass-2")


def test_mask_keeps_only_the_ends():
    assert mask("NC2025000123") == "NC********23"
    assert mask("abc") == "***"


def _make(*args, env=None):
    return subprocess.run(
        ["make", "--no-print-directory", *args], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=300,
    )


def test_make_agent_add_works_without_a_terminal(tmp_path):
    db = tmp_path / "agents.db"
    env = dict(os.environ, AGENT_DB=str(db))
    env.pop("PASSWORD", None)
    # a '$' in the password must survive make's variable expansion
    result = _make("agent-add", "USER=wang", "PASSWORD=pa$$w0rd-long", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pa$$w0rd-long" not in result.stdout + result.stderr
    assert AgentStore(db).check_password("wang", "pa$$w0rd-long")


def test_make_agent_add_explains_what_is_missing(tmp_path):
    env = dict(os.environ, AGENT_DB=str(tmp_path / "agents.db"))
    env.pop("PASSWORD", None)
    no_password = _make("agent-add", "USER=wang", env=env)
    assert no_password.returncode != 0 and "PASSWORD" in no_password.stderr
    no_user = _make("agent-add", "PASSWORD=long-enough-pass", env=env)
    assert no_user.returncode != 0 and "USER=" in no_user.stderr
    assert AgentStore(tmp_path / "agents.db").list_agents() == []

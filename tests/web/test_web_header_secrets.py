"""Secrets in headers and cookies are compared as bytes: any value a client sends, non-ASCII
or undecodable included, is refused (401/403), never a server error (issue 16)."""
import json
import re

import pytest

from tests.support import raw_header_request

# all tests here share one started stack, so xdist keeps them on one worker (Makefile test-python)
pytestmark = pytest.mark.xdist_group("shared_stack")

STRANGE = ["é".encode("utf-8"), b"\xff\xfe", "令牌".encode("utf-8"), b"abc\x80"]


def request(web_stack, method, path, headers, body=b""):
    """(status, Set-Cookie headers) with header values sent as raw bytes."""
    return raw_header_request(int(web_stack.web_url.rsplit(":", 1)[1]), method, path, headers, body)


def cookie(set_cookies, name) -> bytes:
    for header in set_cookies:
        match = re.match(rf"{name}=([^;]*)", header)
        if match:
            return match.group(1).encode("ascii")
    raise AssertionError(f"no {name} cookie in {set_cookies}")


@pytest.fixture(scope="module")
def signed_in(web_stack):
    _, set_cookies = request(web_stack, "GET", "/agent", {})
    login_csrf = cookie(set_cookies, "agent_csrf")
    body = json.dumps({"username": web_stack.agent_user, "password": web_stack.agent_password}).encode()
    status, set_cookies = request(web_stack, "POST", "/agent/api/login", {
        "Cookie": b"agent_csrf=" + login_csrf, "X-CSRF-Token": login_csrf,
        "Content-Type": b"application/json"}, body)
    assert status == 200
    return login_csrf, cookie(set_cookies, "agent_session")


@pytest.mark.parametrize("value", STRANGE)
def test_strange_csrf_tokens_and_cookies_get_403_or_401(web_stack, signed_in, value):
    login_csrf, session = signed_in
    body = json.dumps({"username": "li", "password": "x"}).encode()
    json_type = {"Content-Type": b"application/json"}
    assert request(web_stack, "POST", "/agent/api/login", {
        "Cookie": b"agent_csrf=" + login_csrf, "X-CSRF-Token": value, **json_type}, body)[0] == 403
    for method, path in (("POST", "/agent/api/search"), ("POST", "/agent/api/logout")):
        status, _ = request(web_stack, method, path, {
            "Cookie": b"agent_session=" + session, "X-CSRF-Token": value, **json_type}, b'{"q": "x"}')
        assert status == 403, (path, status)
    assert request(web_stack, "GET", "/agent/api/me", {"Cookie": b"agent_session=" + value})[0] == 401
    # still signed in: nothing was changed by the refused requests
    assert request(web_stack, "GET", "/agent/api/me", {"Cookie": b"agent_session=" + session})[0] == 200

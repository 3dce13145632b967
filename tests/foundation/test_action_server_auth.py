"""The action server (actions/server.py, as tools/stack.py starts it): loopback only by
default, and nothing but GET /health without the shared secret (issue 16).

Rasa holding the right token through the whole stack is exercised by every stack test
that runs a custom action (tests/foundation/test_run_and_restart.py, the e2e tests)."""
import json
import pathlib
import socket
import urllib.error
import urllib.parse
import urllib.request

import pytest
import yaml

from actions import server
from tests.conftest import free_port
from tools.stack import Stack, StackSettings, build_services, runtime_endpoints

ROOT = pathlib.Path(__file__).resolve().parents[2]
TOKEN = "right-token_0123456789"
UNKNOWN_ACTION_CALL = {
    "next_action": "action_that_does_not_exist",
    "sender_id": "someone",
    "tracker": {"sender_id": "someone", "slots": {}, "latest_message": {}, "events": []},
    "domain": {},
    "version": "3.6.0",
}


def _request(url, body=None):
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read().decode("utf-8") or "null")


def _listening_addresses(port: int):
    """Local addresses of the TCP sockets listening on `port` (/proc/net/tcp{,6})."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = pathlib.Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == "0A":  # 0A = LISTEN
                found.append(address)
    return found


@pytest.fixture(scope="module")
def action_server(tmp_path_factory):
    """The actions service exactly as `make run` builds it, started on its own."""
    settings = StackSettings(state_dir=tmp_path_factory.mktemp("actions-only"))
    for name in settings.port_fields():
        setattr(settings, name, free_port())
    services = build_services(settings, {"ACTION_SERVER_TOKEN": TOKEN}, with_stand_in=False)
    actions = next(service for service in services if service.name == "actions")
    log = settings.state_dir / "actions.log"
    with log.open("w", encoding="utf-8") as output:
        stack = Stack([actions], output=output)
        stack.start()
        try:
            if not stack.wait_healthy():
                raise RuntimeError("action server did not start:\n" + log.read_text()[-4000:])
            yield f"http://127.0.0.1:{settings.actions_port}", settings.actions_port
        finally:
            stack.stop()


def test_health_answers_without_a_token(action_server):
    base, _ = action_server
    assert _request(f"{base}/health") == (200, {"status": "ok"})


@pytest.mark.parametrize("query", ["", "?token=wrong", "?token=", "?token=" + urllib.parse.quote("令牌"),
                                   "?other=" + TOKEN, "?token=" + TOKEN + "x"])
def test_webhook_and_action_list_refuse_a_missing_or_wrong_token(action_server, query):
    base, _ = action_server
    assert _request(f"{base}/webhook{query}", UNKNOWN_ACTION_CALL) == (401, {"error": "unauthorized"})
    assert _request(f"{base}/actions{query}")[0] == 401


def test_the_right_token_is_answered(action_server):
    base, _ = action_server
    status, body = _request(f"{base}/actions?token={TOKEN}")
    assert status == 200 and {"name": "action_check_progress"} in body
    # the call reaches rasa-sdk's executor, which answers for itself
    status, body = _request(f"{base}/webhook?token={TOKEN}", UNKNOWN_ACTION_CALL)
    assert status == 404 and body["action_name"] == "action_that_does_not_exist"


def test_it_listens_on_loopback_only(action_server):
    _, port = action_server
    addresses = _listening_addresses(port)
    assert addresses, "no listening socket found"
    assert set(addresses) == {"0100007F"}, addresses  # 127.0.0.1, nothing else
    # and a non-loopback address of this machine (if there is one) is not served
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # no packet is sent; picks the outgoing address
        own = probe.getsockname()[0]
    except OSError:
        own = None
    finally:
        probe.close()
    if own and not own.startswith("127."):
        with pytest.raises(OSError):
            socket.create_connection((own, port), timeout=2).close()


def test_the_server_refuses_to_start_without_a_token(monkeypatch, capsys):
    monkeypatch.delenv("ACTION_SERVER_TOKEN", raising=False)
    assert server.main(["--port", str(free_port())]) == 2
    assert "ACTION_SERVER_TOKEN" in capsys.readouterr().err
    with pytest.raises(ValueError):
        server.build_app("")


def test_defaults_are_loopback_and_the_shared_token(tmp_path):
    assert server.DEFAULT_HOST == "127.0.0.1"
    settings = StackSettings(state_dir=tmp_path)
    services = {s.name: s for s in build_services(settings, {}, with_stand_in=False)}
    actions, rasa = services["actions"], services["rasa"]
    assert actions.env["ACTIONS_HOST"] == "127.0.0.1"
    # a development secret in the state folder's secrets.env, the same for both sides
    token = actions.env["ACTION_SERVER_TOKEN"]
    assert token and rasa.env["ACTION_SERVER_TOKEN"] == token
    assert f"ACTION_SERVER_TOKEN={token}" in (tmp_path / "secrets.env").read_text()
    assert not any(token in part for part in actions.command + rasa.command)
    assert services["web"].env.get("ACTION_SERVER_TOKEN") in (None, "")


@pytest.mark.parametrize("endpoints", ["endpoints.yml", "deploy/endpoints.production.yml"])
def test_rasa_gets_the_token_reference_for_its_action_endpoint(tmp_path, endpoints, monkeypatch):
    from rasa.utils.endpoints import read_endpoint_config

    settings = StackSettings(state_dir=tmp_path, endpoints=ROOT / endpoints)
    path = runtime_endpoints(settings)
    text = path.read_text(encoding="utf-8")
    assert TOKEN not in text and "${ACTION_SERVER_TOKEN}" in text
    shipped = yaml.safe_load((ROOT / endpoints).read_text(encoding="utf-8"))
    runtime = yaml.safe_load(text)
    assert runtime["tracker_store"] == shipped["tracker_store"]
    for name in ("ACTION_ENDPOINT_URL", "DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME",
                 "DB_LOGIN_DB", "REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "REDIS_DB"):
        monkeypatch.setenv(name, "1")
    monkeypatch.setenv("ACTION_SERVER_TOKEN", TOKEN)
    config = read_endpoint_config(str(path), "action_endpoint")
    assert config.token == TOKEN and config.token_name == "token"

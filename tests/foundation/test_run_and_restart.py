"""`python -m tools.stack` (what `make run` execs): health, URLs, clean stop, persistence."""
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

from tests.conftest import ROOT, free_port, make_settings


def _start(settings, token):
    env = dict(os.environ)
    env.update(
        RASA_PORT=str(settings.rasa_port),
        ACTIONS_PORT=str(settings.actions_port),
        STACK_STATE_DIR=str(settings.state_dir),
        RASA_MODEL=str(settings.model_path),
        RASA_ENDPOINTS=str(settings.endpoints),
        RASA_AUTH_TOKEN=token,
    )
    for name in settings.port_fields():
        env[name.upper()] = str(getattr(settings, name))
    process = subprocess.Popen(
        [sys.executable, "-m", "tools.stack"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    lines = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        line = process.stdout.readline().decode("utf-8", "replace")
        if not line and process.poll() is not None:
            break
        lines.append(line)
        if "press Ctrl-C to stop" in line:
            return process, lines
    process.kill()
    raise AssertionError("stack did not come up:\n" + "".join(lines[-80:]))


def _stop(process):
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=60)[0].decode("utf-8", "replace")
    return process.returncode, output


def _children_of(pid):
    result = subprocess.run(["ps", "-eo", "pid,ppid,pgid,args"], capture_output=True, text=True)
    return [line for line in result.stdout.splitlines()[1:] if f" {pid} " in f" {line} "]


def _say(port, sender, text):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhooks/rest/webhook",
        data=json.dumps({"sender": sender, "message": text}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _tracker_events(port, sender, token):
    # a REST sender's conversation is "rest:<sender>" (channels/masked.py)
    url = f"http://127.0.0.1:{port}/conversations/rest:{sender}/tracker?token={token}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())["events"]


def test_stack_prints_urls_prefixes_logs_stops_cleanly_and_keeps_conversations(trained_model, tmp_path):
    settings = make_settings(tmp_path / "state", trained_model)
    token = "test-token-" + str(free_port())

    process, lines = _start(settings, token)
    startup = "".join(lines)
    assert f":{settings.rasa_port}/webhooks/rest/webhook" in startup
    assert "[rasa" in startup and "[actions" in startup  # log lines carry the service name

    reply = _say(settings.rasa_port, "u1", "你好")
    assert "小助手" in reply[0]["text"]
    # the HTTP API answers only with the token
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{settings.rasa_port}/conversations/u1/tracker", timeout=5)
        raise AssertionError("tracker readable without token")
    except urllib.error.HTTPError as error:
        assert error.code == 401
    before = [e for e in _tracker_events(settings.rasa_port, "u1", token) if e["event"] == "user"]
    assert [e["text"] for e in before] == ["你好"]

    code, output = _stop(process)
    assert code == 0, output[-3000:]
    assert "stopped" in output
    time.sleep(1)
    assert not _children_of(process.pid), "services left running after SIGTERM"
    # every service's own health route must refuse the connection: an HTTP answer of any
    # status (HTTPError is a URLError too, so it is caught first) means it still runs
    for port, route in ((settings.rasa_port, "/"), (settings.actions_port, "/health"),
                        (settings.progress_port, "/health"), (settings.web_port, "/health")):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{route}", timeout=2)
            answered = True
        except urllib.error.HTTPError:
            answered = True
        except (urllib.error.URLError, ConnectionError, OSError):
            answered = False
        assert not answered, f"port {port} still answers {route} after stop"

    # start again on the same state folder: u1's conversation is still there
    process, _ = _start(settings, token)
    try:
        after = [e for e in _tracker_events(settings.rasa_port, "u1", token) if e["event"] == "user"]
        assert [e["text"] for e in after] == ["你好"]
        _say(settings.rasa_port, "u1", "谢谢")
        texts = [e["text"] for e in _tracker_events(settings.rasa_port, "u1", token) if e["event"] == "user"]
        assert texts == ["你好", "谢谢"]
    finally:
        _stop(process)

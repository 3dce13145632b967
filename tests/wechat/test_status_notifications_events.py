"""The progress service's side of status-change notifications (progress_service/events.py,
issue 19): after an agency push that changed a status, one signed event to
PROGRESS_EVENTS_URL, sent in the background; nothing for a push that changed no status.
The receiver here is a plain HTTP server on loopback that checks the signature with
core/status_events.py, as the WeChat channel does."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core import status_events
from tests.progress.progress_helpers import EXAMPLE_CSV, ServiceProcess, new_secrets, run_import

SECRET = "progress-events-test-secret"


class Receiver:
    """Records every event; `hold` keeps the answer back until released."""

    def __init__(self):
        self.events, self.refused = [], 0
        self.hold = threading.Event()
        self.hold.set()
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ok = status_events.verify(SECRET, self.headers.get(status_events.TIMESTAMP_HEADER),
                                          self.headers.get(status_events.SIGNATURE_HEADER),
                                          body, time.time())
                if ok:
                    receiver.events.append(json.loads(body))
                else:
                    receiver.refused += 1
                receiver.arrived.set()
                receiver.hold.wait(30)
                self.send_response(202 if ok else 403)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/wechat/status-events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()


def wait_for(condition, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not condition():
        time.sleep(0.05)
    return condition()


@pytest.fixture(scope="module")
def receiver():
    opened = Receiver()
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def service(tmp_path_factory, receiver):
    directory = tmp_path_factory.mktemp("progress-events")
    url = f"sqlite:///{directory / 'progress.db'}"
    secrets_env = new_secrets()
    done = run_import(EXAMPLE_CSV, url, secrets_env)
    assert done.returncode == 0, done.stdout + done.stderr
    process = ServiceProcess(url, secrets_env, directory / "service.log",
                             PROGRESS_EVENTS_URL=receiver.url, PROGRESS_EVENTS_SECRET=SECRET,
                             # long: a push that waited for the event would wait this long
                             PROGRESS_EVENTS_TIMEOUT_SECONDS=40)
    yield process
    process.stop()


def push(service, number, body):
    return service.request("POST", f"/api/v1/applications/{number}/status",
                           {"X-API-Key": service.secrets["PROGRESS_AGENCY_KEY"]}, body)


def test_a_status_change_sends_one_signed_event(service, receiver):
    before = len(receiver.events)
    status, result, _ = push(service, "NC2025000102", {"status": "expert_review"})
    assert status == 200 and result["status_changed"]
    assert wait_for(lambda: len(receiver.events) == before + 1)
    event = receiver.events[-1]
    assert event["application_no"] == "NC2025000102" and event["status"] == "expert_review"
    assert event["status_updated_at"] and event["event_id"]
    assert set(event) == {"application_no", "status", "status_updated_at", "event_id"}
    assert receiver.refused == 0


def test_a_push_without_a_status_change_sends_nothing(service, receiver):
    push(service, "NC2025000103", {"status": "need_more", "note": "请补充病历"})
    assert wait_for(lambda: any(e["application_no"] == "NC2025000103" for e in receiver.events))
    count = len(receiver.events)
    status, result, _ = push(service, "NC2025000103", {"status": "need_more", "note": "请补充诊断证明"})
    assert status == 200 and not result["status_changed"]
    time.sleep(1.5)
    assert len(receiver.events) == count


def test_the_push_does_not_wait_for_the_event(service, receiver):
    receiver.hold.clear()  # the receiver takes the event and does not answer until released
    receiver.arrived.clear()
    answers = []
    pushing = threading.Thread(
        target=lambda: answers.append(push(service, "NC2025000101", {"status": "accepted"})))
    try:
        pushing.start()
        pushing.join(20)  # the event stays unanswered for up to 30 s, its timeout is 40 s
        assert not pushing.is_alive() and answers, "the push waited for the event"
        status, result, _ = answers[0]
        assert status == 200 and result["status_changed"]
    finally:
        receiver.hold.set()
        pushing.join(30)
    assert wait_for(lambda: any(e["application_no"] == "NC2025000101" for e in receiver.events))
    assert "NC2025000101" not in service.log()  # the number is masked in every log line

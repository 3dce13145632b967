"""ProgressClient and action_check_progress when the service is down, slow or broken.

The action must answer with the hotline within 3 seconds and never block the action
server's event loop while it waits.
"""
import asyncio
import http.server
import json
import threading
import time

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.progress import ActionCheckProgress
from core.progress_client import ProgressClient
from progress_helpers import free_port


class LoopbackServer:
    """A threaded HTTP server on a free 127.0.0.1 port; subclasses bring the handler."""

    def serve(self, handler):
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def loopback():
    """Starts LoopbackServer subclasses; all are closed after the test."""
    servers = []

    def start(kind, **kwargs):
        servers.append(kind(**kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


class Stub(LoopbackServer):
    """A loopback HTTP server answering every GET with (status, body) after `delay` s."""

    def __init__(self, status=200, body=None, delay=0.0):
        stub = self
        self.requests = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                stub.requests.append((self.path, dict(self.headers)))
                time.sleep(delay)
                payload = json.dumps(body or {}).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up first

            def log_message(self, *args):
                pass

        self.serve(Handler)


@pytest.fixture
def stub(loopback):
    return lambda **kwargs: loopback(Stub, **kwargs)


def tracker(sender="user-1"):
    return Tracker(sender, {"application_no": "NC2025000104", "id_last4": "1357", "lookup_attempts": 0},
                   {"text": "1357", "intent": {"name": "inform_application"}, "entities": []},
                   [], False, None, {}, "progress_form")


async def run_action(client):
    """Run the action while a ticker checks that the event loop keeps running."""
    ticks = 0
    stop = asyncio.Event()

    async def ticker():
        nonlocal ticks
        while not stop.is_set():
            await asyncio.sleep(0.05)
            ticks += 1

    dispatcher = CollectingDispatcher()
    ticking = asyncio.create_task(ticker())
    started = time.monotonic()
    events = await ActionCheckProgress(client=client).run(dispatcher, tracker(), {})
    elapsed = time.monotonic() - started
    stop.set()
    await ticking
    text = "\n".join(message.get("text") or "" for message in dispatcher.messages)
    return text, events, elapsed, ticks


def test_service_stopped_gets_a_hotline_answer_quickly():
    client = ProgressClient(base_url=f"http://127.0.0.1:{free_port()}", api_key="k", timeout=2.0)
    text, events, elapsed, _ = asyncio.run(run_action(client))
    assert "12393" in text and "连不上" in text
    assert elapsed < 3.0
    # the conversation goes on: the typed number and suffix are forgotten, no follow-up loop
    assert {e["name"]: e["value"] for e in events if e["event"] == "slot"} == {
        "application_no": None, "id_last4": None}


def test_service_answering_after_5_seconds_gets_a_hotline_answer_within_3_seconds(stub):
    slow = stub(status=200, body={"status": "approved"}, delay=5.0)
    client = ProgressClient(base_url=slow.url, api_key="k", timeout=2.0)
    text, _, elapsed, ticks = asyncio.run(run_action(client))
    assert "12393" in text
    assert elapsed < 3.0
    assert ticks >= 20  # the event loop kept running while the request waited


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_get_a_hotline_answer(stub, status):
    broken = stub(status=status, body={"error": "internal"})
    text, _, elapsed, _ = asyncio.run(run_action(ProgressClient(base_url=broken.url, api_key="k")))
    assert "12393" in text and elapsed < 3.0


def test_wrong_key_is_unavailable_not_a_no_match(stub):
    refusing = stub(status=401, body={"error": "unauthorized"})
    assert ProgressClient(base_url=refusing.url, api_key="k").lookup("NC2025000104", "1357", "u").outcome == "unavailable"


def test_client_sends_key_suffix_and_a_hashed_sender(stub):
    server = stub(status=404, body={"error": "no_match"})
    result = ProgressClient(base_url=server.url, api_key="the-key").lookup("NC2025000104", "1357", "wechat-openid-42")
    assert result.outcome == "no_match"
    path, headers = server.requests[0]
    assert path == "/api/v1/applications/NC2025000104"
    assert headers["X-API-Key"] == "the-key" and headers["X-Id-Last4"] == "1357"
    assert "wechat-openid-42" not in headers["X-Sender"] and len(headers["X-Sender"]) == 32


def test_locked_answer_carries_the_wait(stub):
    server = stub(status=429, body={"error": "locked", "retry_after": 600})
    result = ProgressClient(base_url=server.url, api_key="k").lookup("NC2025000104", "1357", "u")
    assert (result.outcome, result.retry_after) == ("locked", 600)


class Trickle(LoopbackServer):
    """A loopback server that answers 200 but sends its bytes one at a time, slowly:
    the whole body (`where="body"`) or even the headers (`where="headers"`)."""

    def __init__(self, where="body", interval=0.1):
        stop = self.stop = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                payload = json.dumps({"status": "approved", "padding": "x" * 2000}).encode()
                try:
                    if where == "headers":
                        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                        head = b"X-Slow: " + b"a" * 10000
                        for byte in head:
                            if stop.wait(interval):
                                return
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                        return
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.flush()
                    for byte in payload:
                        if stop.wait(interval):
                            return
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                except OSError:
                    pass  # the client gave up

            def log_message(self, *args):
                pass

        self.serve(Handler)

    def close(self):
        self.stop.set()
        super().close()


@pytest.fixture
def trickle(loopback):
    return lambda **kwargs: loopback(Trickle, **kwargs)


def test_a_body_trickled_byte_by_byte_is_cut_off_at_the_total_deadline(trickle):
    # every byte arrives well within the per-read timeout, the whole body would take 200 s
    server = trickle(where="body", interval=0.1)
    client = ProgressClient(base_url=server.url, api_key="k", timeout=1.0)
    started = time.monotonic()
    result = client.lookup("NC2025000104", "1357", "user-1")  # the blocking call itself
    assert result.outcome == "unavailable"
    assert time.monotonic() - started < 2.0


def test_trickled_headers_fill_only_the_lookup_pool_not_the_default_pool(trickle):
    server = trickle(where="headers", interval=0.2)
    client = ProgressClient(base_url=server.url, api_key="k", timeout=0.5)
    lookups = client.lookup_threads + 2

    async def scenario():
        started = time.monotonic()
        results = await asyncio.gather(*[
            client.lookup_async("NC2025000104", "1357", f"user-{i}") for i in range(lookups)])
        lookup_elapsed = time.monotonic() - started
        # the stuck lookup threads do not take the default pool's threads
        started = time.monotonic()
        assert await asyncio.wait_for(asyncio.to_thread(lambda: "free"), 1.0) == "free"
        return results, lookup_elapsed, time.monotonic() - started

    results, lookup_elapsed, default_elapsed = asyncio.run(scenario())
    assert [r.outcome for r in results] == ["unavailable"] * lookups
    assert lookup_elapsed < 1.5  # each caller got its answer at the deadline
    assert default_elapsed < 0.5

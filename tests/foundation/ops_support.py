"""Helpers of the operations tests (readiness, request ids, metrics; docs/deploy.md).

- `TcpProxy`: a loopback TCP forwarder the test can cut and restore, to make the real
  PostgreSQL or Redis unreachable for one process without touching the shared servers;
- `StubHttp`: a loopback HTTP server answering 200 to anything (an upstream that is up),
  recording the headers it saw; stopped, its port refuses connections;
- `start_process`: one project process started as tools/stack.py starts it;
- `get_json`, `metric`: what a client sees.
"""
import http.server
import json
import pathlib
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Dict, List, Optional, Tuple

from prometheus_client.parser import text_string_to_metric_families

from tools.stack import Service, Stack


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TcpProxy:
    """127.0.0.1:`port` → 127.0.0.1:`target`. `cut()` closes the listener and every
    connection (the upstream is unreachable from then on); `restore()` listens again."""

    def __init__(self, target: int, port: Optional[int] = None):
        self.target = target
        self.port = port or free_port()
        self._listener: Optional[socket.socket] = None
        self._sockets: List[socket.socket] = []
        self._lock = threading.Lock()
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        if self._listener is not None:
            try:  # wakes the thread blocked in accept() (close alone does not, on Linux)
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


class StubHttp:
    """Answers every GET/POST with 200 {"status": "ok"}; `seen` holds (method, path,
    headers) of each request."""

    def __init__(self, port: Optional[int] = None):
        self.port = port or free_port()
        self.seen: List[Tuple[str, str, Dict[str, str]]] = []
        self._server: Optional[http.server.ThreadingHTTPServer] = None
        self.start()

    def start(self) -> None:
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                stub.seen.append((self.command, self.path, dict(self.headers)))
                body = b'[{"text": "ok"}]' if self.command == "POST" else b'{"status": "ok"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class _Log:
    def __init__(self, path: pathlib.Path):
        self.handle = path.open("a", encoding="utf-8")

    def write(self, text):
        self.handle.write(text)

    def flush(self):
        self.handle.flush()


def start_process(name: str, command: List[str], env: Dict[str, str], health_url: str,
                  log: pathlib.Path, timeout: float = 180.0) -> Stack:
    """Start one process as the stack does (its log lines go to `log`); fails the test
    with the log when it does not answer `health_url`."""
    stack = Stack([Service(name=name, command=command, health_url=health_url, public_urls=[],
                           env=env, startup_timeout=timeout)], output=_Log(log))
    stack.start()
    if not stack.wait_healthy():
        stack.stop()
        raise AssertionError(f"{name} did not start:\n" + log.read_text(encoding="utf-8")[-4000:])
    return stack


def get_json(url: str, headers: Optional[Dict[str, str]] = None, data: Optional[bytes] = None,
             timeout: float = 30.0) -> Tuple[int, object]:
    request = urllib.request.Request(url, headers=headers or {}, data=data)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    try:
        return status, json.loads(body.decode("utf-8"))
    except ValueError:
        return status, body.decode("utf-8", "replace")


def wait_for(condition, timeout: float = 30.0, every: float = 0.3):
    """The first truthy value of condition() within `timeout` seconds, else the last one."""
    deadline = time.monotonic() + timeout
    value = condition()
    while not value and time.monotonic() < deadline:
        time.sleep(every)
        value = condition()
    return value


def metric(port: int, name: str, **labels: str) -> float:
    """The sample `name` with `labels` on the metrics endpoint at `port` (0.0 if absent)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode("utf-8")
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total

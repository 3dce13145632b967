"""Helpers for the progress tests: databases (SQLite, PostgreSQL), a service process, CSV files.

PostgreSQL runs against database `test` as user `postgres` at 127.0.0.1:5432, in a
schema of its own per fixture, dropped afterwards. Unreachable PostgreSQL skips those
tests locally and fails them under CI=true.
"""
import contextlib
import json
import os
import pathlib
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

from tests.support import postgres_schema

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLE_CSV = ROOT / "progress_service" / "example_export.csv"
CSV_HEADER = ("application_no,id_last4,applicant_name,disease,channel,submitted_at,status,"
              "status_updated_at,note,valid_from,valid_until")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def database(kind: str, directory: pathlib.Path):
    """A database URL for `kind`; PostgreSQL gets a fresh schema, dropped on exit."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'progress.db'}"
        return
    with postgres_schema("progress_test") as url:
        yield url


def new_secrets() -> dict:
    return {
        "PROGRESS_API_KEY": secrets.token_urlsafe(16),
        "PROGRESS_AGENCY_KEY": secrets.token_urlsafe(16),
        "PROGRESS_ID_HASH_KEY": secrets.token_urlsafe(16),
        "PROGRESS_AGENT_SECRET": secrets.token_urlsafe(16),
    }


def run_import(path, database_url: str, secrets_env: dict, use_make: bool = False):
    """`make import-progress FILE=...` (or the module) with this database and key."""
    env = {**os.environ, **secrets_env, "PROGRESS_DATABASE_URL": database_url,
           "PYTHONPATH": str(ROOT)}
    if use_make:
        command = ["make", "--no-print-directory", "import-progress", f"FILE={path}"]
    else:
        command = [str(ROOT / ".venv" / "bin" / "python"), "-m", "progress_service.importer", str(path)]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


class ServiceProcess:
    """progress_service.app in its own process group on a free port."""

    def __init__(self, database_url: str, secrets_env: dict, log_path: pathlib.Path, **settings):
        self.secrets = secrets_env
        self.log_path = log_path
        self._log = log_path.open("wb")
        # A port found free can be taken by another test worker's service before ours binds
        # it; then /health is answered by a stranger (with other keys). Retry on a new port.
        for _attempt in range(3):
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            env = {**os.environ, **secrets_env, "PYTHONPATH": str(ROOT),
                   "PROGRESS_DATABASE_URL": database_url, "PROGRESS_PORT": str(self.port),
                   "PROGRESS_HOST": "127.0.0.1", "PYTHONUNBUFFERED": "1"}
            env.update({key: str(value) for key, value in settings.items()})
            self.process = subprocess.Popen(
                [str(ROOT / ".venv" / "bin" / "python"), "-m", "progress_service.app"],
                cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
            if self._answers_as_itself():
                return
            if "address already in use" not in self.log().lower():
                break
        self.stop()
        raise RuntimeError("progress service did not start:\n" + self.log())

    def _answers_as_itself(self) -> bool:
        """True once this process is up and the service on the port knows our key."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1):
                    pass
            except OSError:
                time.sleep(0.2)
                continue
            # a key check only this process passes: no suffix is a 400, a stranger says 401
            status = self.request("GET", "/api/v1/applications/NC0000000000",
                                  {"X-API-Key": self.secrets["PROGRESS_API_KEY"]})[0]
            if status != 401 and self.process.poll() is None:
                return True
            time.sleep(0.2)
        return False

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def request(self, method: str, path: str, headers=None, body=None):
        """(status, parsed JSON body, headers) without raising on 4xx/5xx."""
        data = json.dumps(body).encode("utf-8") if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null"), response.headers
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null"), error.headers

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()


def write_csv(path: pathlib.Path, rows, encoding="utf-8", header=CSV_HEADER) -> pathlib.Path:
    path.write_bytes(("\r\n".join([header, *rows]) + "\r\n").encode(encoding))
    return path

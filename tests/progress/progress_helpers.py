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
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.secrets = secrets_env
        self.log_path = log_path
        env = {**os.environ, **secrets_env, "PYTHONPATH": str(ROOT),
               "PROGRESS_DATABASE_URL": database_url, "PROGRESS_PORT": str(self.port),
               "PROGRESS_HOST": "127.0.0.1", "PYTHONUNBUFFERED": "1"}
        env.update({key: str(value) for key, value in settings.items()})
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "python"), "-m", "progress_service.app"],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("progress service exited:\n" + self.log())
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("progress service did not start:\n" + self.log())

    def log(self) -> str:
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

"""What every test area shares that is not a fixture: the CI switch, `skip_or_fail`, the
plugin that fails a CI session with skipped tests (wired in tests/conftest.py), and the
check that a training or test example really has traditional characters.

Under CI=true every test must run: a missing prerequisite (a trained model, Chromium,
PostgreSQL, Redis, the project guide) is a failure, not a skip. Locally it is a skip, so
a quick `pytest tests/knowledge` works without the services.
"""
import contextlib
import http.client
import os
import re
import uuid
from typing import Iterator, List, Tuple

import pytest
import sqlalchemy as sa

from core.textnorm import to_simplified

IN_CI = os.environ.get("CI", "").lower() == "true"
# PostgreSQL for the tests: database `test` at 127.0.0.1:5432, a fresh schema per use
PG_BASE = os.environ.get("PROGRESS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def skip_or_fail(reason: str):
    """Skip locally; under CI a missing prerequisite is a failure, not a skip."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: this must run)")
    pytest.skip(reason)


@contextlib.contextmanager
def postgres_schema(prefix: str) -> Iterator[str]:
    """A URL on a schema of its own (`prefix` + random), dropped on exit. PostgreSQL not
    reachable: skipped locally, a failure under CI=true."""
    admin = sa.create_engine(PG_BASE, future=True)
    try:
        with admin.connect() as connection:
            connection.execute(sa.text("select 1"))
    except Exception as error:  # noqa: BLE001 - any failure means: no PostgreSQL here
        admin.dispose()
        skip_or_fail(f"PostgreSQL not reachable at {PG_BASE}: {type(error).__name__}")
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.begin() as connection:
        connection.execute(sa.text(f'create schema "{schema}"'))
    try:
        yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'drop schema if exists "{schema}" cascade'))
        admin.dispose()


def _reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # (path, line, "Skipped: why")
        return str(longrepr[2]).removeprefix("Skipped: ")
    lines = str(longrepr or "").strip().splitlines()
    return lines[-1] if lines else ""


class NoSkipsUnderCI:
    """Fails the session when any test was skipped (a `skipif`, `importorskip`, a plain
    `pytest.skip`): a green CI run means every test ran. Registered on the controller
    only; with pytest-xdist the workers' reports arrive there too. Expected failures
    (xfail) are not skips."""

    def __init__(self):
        self.skipped: List[Tuple[str, str]] = []

    def pytest_runtest_logreport(self, report):
        if report.skipped and not hasattr(report, "wasxfail"):
            self.skipped.append((report.nodeid, _reason(report)))

    def pytest_collectreport(self, report):
        if report.skipped:  # a module-level skip (allow_module_level=True)
            self.skipped.append((report.nodeid or "(collection)", _reason(report)))

    def pytest_sessionfinish(self, session):
        if self.skipped and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter):
        if not self.skipped:
            return
        terminalreporter.section("skipped under CI=true", sep="=", red=True, bold=True)
        terminalreporter.line(f"{len(self.skipped)} test(s) skipped; under CI=true every test must "
                              "run (use tests.support.skip_or_fail for prerequisites):", red=True)
        for nodeid, reason in self.skipped:
            terminalreporter.line(f"  SKIPPED {nodeid}: {reason}")


# CJK ideographs: the unified block, extension A and the compatibility ideographs
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def has_traditional(text: str) -> bool:
    """True when the project's traditional -> simplified conversion (core.textnorm:
    OpenCC t2s with its phrase tables, as the NLU normaliser uses it) changes a CJK
    character of the text. What normalize_text changes besides (full-width letters and
    digits, spaces, emoji) does not count: "ＡＰＰ怎么  申请" has no traditional character."""
    converted = to_simplified(text)
    if len(converted) == len(text):
        return any(old != new for old, new in zip(text, converted) if _CJK.match(old) or _CJK.match(new))
    return _CJK.findall(converted) != _CJK.findall(text)


def raw_header_request(port: int, method: str, path: str, headers: dict, body: bytes = b"",
                       timeout: float = 20) -> Tuple[int, List[str]]:
    """(status, Set-Cookie headers) of a request whose header values are sent as raw bytes
    (non-ASCII, undecodable): what no well-behaved client library lets a test send."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.putrequest(method, path)
        for name, value in {**headers, "Content-Length": str(len(body)).encode()}.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        response.read()
        return response.status, response.headers.get_all("Set-Cookie") or []
    finally:
        connection.close()

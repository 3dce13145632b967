"""Under CI=true a skipped test fails the session (tests/conftest.py wires
tests/support.py: NoSkipsUnderCI), with a list of what was skipped and why; locally a
skip is still a skip. Checked on a small throwaway suite run by a real pytest, with and
without pytest-xdist (make test runs two workers)."""
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

SUITE = '''
import pytest

def test_runs():
    pass

def test_skipped_in_the_body():
    pytest.skip("no widget server here")

@pytest.mark.skipif(True, reason="only on Tuesdays")
def test_skipped_by_a_mark():
    pass

@pytest.mark.xfail(reason="a known bug, not a skip")
def test_expected_failure():
    assert False
'''
PASSING = '''
def test_runs():
    pass
'''


def run_suite(tmp_path, source: str, ci: bool, *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "conftest.py").write_text(
        "from tests.conftest import pytest_configure  # noqa: F401 - the hook under test\n", encoding="utf-8")
    (tmp_path / "test_sample.py").write_text(source, encoding="utf-8")
    env = {key: value for key, value in os.environ.items()
           if key not in ("CI", "PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER")}
    env["PYTHONPATH"] = str(ROOT)
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--rootdir", str(tmp_path),
         *args, str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["in-process", "xdist"])
def test_a_skip_under_ci_fails_the_session_and_names_each_skipped_test(tmp_path, workers):
    result = run_suite(tmp_path, SUITE, True, *workers)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "skipped under CI=true" in output
    assert "2 test(s) skipped" in output
    assert "test_sample.py::test_skipped_in_the_body: no widget server here" in output
    assert "test_sample.py::test_skipped_by_a_mark: only on Tuesdays" in output
    assert "test_expected_failure:" not in output  # an xfail is not a skip


def test_locally_a_skip_is_only_a_skip(tmp_path):
    result = run_suite(tmp_path, SUITE, False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "skipped under CI=true" not in result.stdout


def test_under_ci_a_run_without_skips_passes(tmp_path):
    result = run_suite(tmp_path, PASSING, True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "skipped under CI=true" not in result.stdout

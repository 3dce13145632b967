"""The lock files are what CI installs: complete, hashed, in step with requirements*.txt.

requirements.txt / requirements-dev.txt / requirements-tools.txt name the packages we ask for;
requirements.lock / requirements-dev.lock / requirements-tools.lock pin every transitive
dependency with its hashes (`make lock`), and `make install` installs only from the locks with
--require-hashes. These tests fail when a requirements file is edited without `make lock`, when
a lock entry has no hash, when the two project locks disagree, when audit-known.txt accepts a
finding for a version that is no longer locked, and when the running environment is not the
locked one (then what the tests test is not what CI installs: run `make install-dev`).
"""
import re
from importlib import metadata

import pytest

from tests.conftest import ROOT

PAIRS = {
    "requirements.txt": ["requirements.lock", "requirements-dev.lock"],
    "requirements-dev.txt": ["requirements-dev.lock"],
    "requirements-tools.txt": ["requirements-tools.lock"],
}
LOCKS = ["requirements.lock", "requirements-dev.lock", "requirements-tools.lock"]
ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;[^\\]*)?\\?$")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(name: str) -> dict[str, str]:
    """name -> version of every `name[extras]==version` line (comments dropped)."""
    pins = {}
    for line in (ROOT / name).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==(\S+)", line)
        assert match, f"{name}: {line!r} is not an exact pin (name==version)"
        pins[canonical(match[1])] = match[3]
    return pins


def lock(name: str) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of every entry of a pip-compile lock with hashes."""
    entries: dict[str, tuple[str, list[str]]] = {}
    current = None
    for number, raw in enumerate((ROOT / name).read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if raw.startswith((" ", "\t")):
            hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", line)
            assert current and hashes, f"{name}:{number}: unexpected continuation {line!r}"
            entries[current][1].extend(hashes)
            continue
        match = ENTRY.match(line)
        assert match, f"{name}:{number}: {line!r} is not 'name==version \\' (no URLs, no -e, no ranges)"
        current = canonical(match[1])
        assert current not in entries, f"{name}: {current} is locked twice"
        entries[current] = (match[2], [])
    return entries


@pytest.mark.parametrize("lock_name", LOCKS)
def test_every_locked_package_is_pinned_with_hashes(lock_name):
    entries = lock(lock_name)
    assert entries, f"{lock_name} is empty"
    unhashed = sorted(name for name, (_, hashes) in entries.items() if not hashes)
    assert not unhashed, f"{lock_name}: no --hash for {unhashed}"


@pytest.mark.parametrize("source", PAIRS)
def test_every_requirement_is_locked_at_its_pinned_version(source):
    wanted = requirements(source)
    for lock_name in PAIRS[source]:
        locked = lock(lock_name)
        stale = {
            name: (version, locked.get(name, ("missing", []))[0])
            for name, version in wanted.items()
            if locked.get(name, ("missing", []))[0] != version
        }
        assert not stale, f"{source} vs {lock_name} (asked, locked): {stale}: run `make lock`"


def test_the_dev_lock_installs_exactly_the_runtime_lock_plus_dev_packages():
    runtime, dev = lock("requirements.lock"), lock("requirements-dev.lock")
    differing = sorted(name for name in runtime if dev.get(name) != runtime[name])
    assert not differing, f"requirements-dev.lock disagrees with requirements.lock on {differing}"


def test_make_install_installs_only_from_the_locks_with_hashes():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    installs = re.findall(r"^\t.*pip install .*$", makefile, flags=re.M)
    project = [line for line in installs if "$(PY)" in line and "upgrade pip" not in line]
    assert project, "no pip install of the project's environment in the Makefile"
    for line in project:
        assert "--require-hashes" in line and re.search(r"-r requirements(-dev)?\.lock\b", line), line
    assert re.search(r"^\$\(VENV\)/\.installed-runtime: requirements\.lock\b", makefile, re.M)
    assert re.search(r"^\$\(VENV\)/\.installed-dev: requirements-dev\.lock\b", makefile, re.M)


def test_accepted_audit_findings_name_the_locked_version_and_a_reason():
    locked = lock("requirements-dev.lock")
    for number, raw in enumerate((ROOT / "audit-known.txt").read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split(None, 2)
        assert len(fields) == 3, f"audit-known.txt:{number}: want 'ID name==version reason': {raw!r}"
        finding, pin, _reason = fields
        name, _, version = pin.partition("==")
        assert locked.get(canonical(name), ("not locked",))[0] == version, (
            f"audit-known.txt:{number}: {finding} was accepted for {pin}, but the lock has "
            f"{locked.get(canonical(name), ('no such package',))[0]}: review the entry"
        )


def test_the_running_environment_is_the_locked_one():
    installed = {canonical(dist.metadata["Name"]): dist.version for dist in metadata.distributions()}
    drift = {
        name: (version, installed.get(name, "not installed"))
        for name, (version, _) in lock("requirements-dev.lock").items()
        if installed.get(name) != version
    }
    assert not drift, f"(locked, installed): {drift}: run `make install-dev`"

"""Versioned models with rollback (docs/deploy.md "Model versions and rollback").

`make train` trains into .state/models/versions/assistant-<UTC timestamp>.tar.gz, then
`publish` points .state/models/assistant.tar.gz (what every command and `rasa run` use) at
it and keeps the newest MODEL_VERSIONS_KEEP (3) versions. `make rollback-model` points it at
the version before the current one. A running Rasa keeps the model it loaded: restart it.

assistant.tar.gz is a hard link to its version (a copy where links are impossible), touched
when it changes, so the Makefile's freshness rule sees a current model after a rollback
too; versions are ordered by the timestamp in their names, never by file times. Rasa only
reads `*.tar.gz` directly in the folder it is given, so the versions/ subfolder never
competes with assistant.tar.gz.

    python -m tools.model_versions new-name     # the name `make train` trains to
    python -m tools.model_versions publish      # newest version becomes current; prune
    python -m tools.model_versions rollback     # the previous version becomes current
    python -m tools.model_versions list
"""
import argparse
import datetime
import os
import pathlib
import re
import shutil
import sys
from typing import List, Optional

from core import defaults

MODELS_DIR = defaults.STATE_DIR / "models"
CURRENT = "assistant.tar.gz"
VERSIONS = "versions"
KEEP_ENV = "MODEL_VERSIONS_KEEP"
DEFAULT_KEEP = 3
_VERSION = re.compile(r"^assistant-(\d{8}T\d{6}Z)\.tar\.gz$")


class VersionError(Exception):
    """Nothing to roll back to, or a folder that is not what it should be."""


def new_name(now: Optional[datetime.datetime] = None) -> str:
    """The next version's name, without .tar.gz (Rasa's --fixed-model-name adds it)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return "assistant-" + now.astimezone(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def versions(models_dir: pathlib.Path = MODELS_DIR) -> List[pathlib.Path]:
    """The kept versions, oldest first (by the timestamp in the name)."""
    folder = models_dir / VERSIONS
    if not folder.is_dir():
        return []
    return sorted((path for path in folder.iterdir() if _VERSION.match(path.name)), key=lambda path: path.name)


def current_version(models_dir: pathlib.Path = MODELS_DIR) -> Optional[pathlib.Path]:
    """The version assistant.tar.gz is (the same file, or identical bytes for a copy)."""
    current = models_dir / CURRENT
    if not current.exists():
        return None
    for version in reversed(versions(models_dir)):
        if os.path.samefile(version, current):
            return version
    size = current.stat().st_size
    for version in reversed(versions(models_dir)):
        if version.stat().st_size == size and _same_bytes(version, current):
            return version
    return None


def _same_bytes(one: pathlib.Path, other: pathlib.Path) -> bool:
    with one.open("rb") as a, other.open("rb") as b:
        while True:
            chunk = a.read(1 << 20)
            if chunk != b.read(1 << 20):
                return False
            if not chunk:
                return True


def point_to(version: pathlib.Path, models_dir: pathlib.Path = MODELS_DIR) -> None:
    """Make `version` the current model, atomically (a reader sees the old or the new file)."""
    temporary = models_dir / f".{CURRENT}.tmp"
    temporary.unlink(missing_ok=True)
    _link_or_copy(version, temporary)
    os.replace(temporary, models_dir / CURRENT)
    os.utime(models_dir / CURRENT)  # newer than the training inputs: make keeps it


def _adopt_unversioned(models_dir: pathlib.Path) -> None:
    """A model trained before versions existed becomes a version (named by its file time),
    so the first rollback can return to it."""
    current = models_dir / CURRENT
    if current.exists() and current_version(models_dir) is None:
        stamp = datetime.datetime.fromtimestamp(current.stat().st_mtime, datetime.timezone.utc)
        target = models_dir / VERSIONS / f"{new_name(stamp)}.tar.gz"
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            _link_or_copy(current, target)


def _link_or_copy(source: pathlib.Path, target: pathlib.Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # a file system without hard links
        shutil.copyfile(source, target)


def prune(models_dir: pathlib.Path = MODELS_DIR, keep: int = DEFAULT_KEEP) -> List[pathlib.Path]:
    """Delete all but the newest `keep` versions; the current one is never deleted."""
    current = current_version(models_dir)
    kept = versions(models_dir)[-keep:] if keep > 0 else []
    removed = []
    for version in versions(models_dir):
        if version not in kept and version != current:
            version.unlink()
            removed.append(version)
    return removed


def publish(models_dir: pathlib.Path = MODELS_DIR, keep: int = DEFAULT_KEEP) -> pathlib.Path:
    """The newest version becomes the current model; older ones beyond `keep` go."""
    available = versions(models_dir)
    if not available:
        raise VersionError(f"no model in {models_dir / VERSIONS}: train first (make train)")
    newest = available[-1]
    if current_version(models_dir) != newest:
        _adopt_unversioned(models_dir)
        point_to(newest, models_dir)
    prune(models_dir, keep)
    return newest


def rollback(models_dir: pathlib.Path = MODELS_DIR) -> pathlib.Path:
    """The version before the current one becomes the current model."""
    available = versions(models_dir)
    current = current_version(models_dir)
    if current is None:
        raise VersionError(f"{models_dir / CURRENT} is none of the kept versions in {models_dir / VERSIONS}")
    index = available.index(current)
    if index == 0:
        raise VersionError(f"{current.name} is the oldest kept version: nothing to roll back to")
    previous = available[index - 1]
    point_to(previous, models_dir)
    return previous


def keep_from_env(environ=os.environ) -> int:
    value = int(environ.get(KEEP_ENV, DEFAULT_KEEP))
    if value < 1:
        raise VersionError(f"{KEEP_ENV} must be at least 1")
    return value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("new-name", "publish", "rollback", "list"))
    parser.add_argument("--models", type=pathlib.Path, default=MODELS_DIR, help="default .state/models")
    args = parser.parse_args(argv)
    try:
        if args.command == "new-name":
            print(new_name())
        elif args.command == "publish":
            version = publish(args.models, keep_from_env())
            print(f"current model: {version.name} (kept: {', '.join(v.name for v in versions(args.models))})")
        elif args.command == "rollback":
            version = rollback(args.models)
            print(f"current model: {version.name}; restart Rasa to load it (make run / the cluster / the pods)")
        else:
            current = current_version(args.models)
            for version in versions(args.models):
                print(("* " if version == current else "  ") + version.name)
    except VersionError as error:
        print(f"model versions: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

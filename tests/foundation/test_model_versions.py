"""Versioned models and rollback (tools/model_versions.py, `make train` / `make rollback-model`),
with tiny fake model files: no training here."""
import datetime
import os
import pathlib
import subprocess
import sys
import time

import pytest
from rasa.model import get_latest_model

from tools import model_versions
from tools.model_versions import CURRENT, VersionError

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _train(models: pathlib.Path, minute: int, body: bytes = b"") -> pathlib.Path:
    """What `rasa train --out versions --fixed-model-name <new-name>` leaves: one new file."""
    name = model_versions.new_name(datetime.datetime(2026, 12, 3, 12, minute, tzinfo=datetime.timezone.utc))
    path = models / "versions" / f"{name}.tar.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body or f"model trained at minute {minute}".encode())
    return path


def _current(models):
    return (models / CURRENT).read_bytes()


def test_train_publishes_the_newest_and_keeps_three(tmp_path):
    trained = []
    for minute in range(5):
        trained.append(_train(tmp_path, minute))
        assert model_versions.publish(tmp_path, keep=3) == trained[-1]
        assert _current(tmp_path) == trained[-1].read_bytes()
    assert [p.name for p in model_versions.versions(tmp_path)] == [p.name for p in trained[-3:]]
    assert not trained[0].exists() and not trained[1].exists()
    assert sorted(p.name for p in tmp_path.glob("*.tar.gz")) == [CURRENT]  # what `rasa run --model <folder>` sees


def test_rollback_goes_back_one_version_at_a_time_and_make_keeps_it(tmp_path):
    first, second, third = (_train(tmp_path, minute) for minute in (1, 2, 3))
    model_versions.publish(tmp_path)
    inputs_changed = time.time()
    os.utime(first, (inputs_changed - 3600, inputs_changed - 3600))  # an old file
    assert model_versions.rollback(tmp_path) == second
    assert _current(tmp_path) == second.read_bytes()
    assert model_versions.rollback(tmp_path) == first
    assert _current(tmp_path) == first.read_bytes()
    # the Makefile's freshness rule compares $(MODEL)'s time with the training inputs':
    # a rolled-back model is not retrained by the next `make run`
    assert (tmp_path / CURRENT).stat().st_mtime >= inputs_changed - 1
    with pytest.raises(VersionError, match="oldest"):
        model_versions.rollback(tmp_path)
    # versions are ordered by name, not file time: the next training still wins
    fourth = _train(tmp_path, 4)
    assert model_versions.publish(tmp_path) == fourth
    # and the version rolled back to (current until a moment ago) was the oldest: pruned
    assert [p.name for p in model_versions.versions(tmp_path)] == [second.name, third.name, fourth.name]


def test_rasa_loads_the_current_model_from_the_folder_after_a_rollback(tmp_path):
    """`rasa run --model .state/models` takes the newest *.tar.gz in that folder: only
    assistant.tar.gz is there, whatever the versions' times."""
    _train(tmp_path, 1)
    model_versions.publish(tmp_path)
    _train(tmp_path, 2)
    model_versions.publish(tmp_path)
    model_versions.rollback(tmp_path)
    assert get_latest_model(str(tmp_path)) == str(tmp_path / CURRENT)
    assert _current(tmp_path) == b"model trained at minute 1"


def test_a_model_trained_before_versions_can_be_rolled_back_to(tmp_path):
    (tmp_path / CURRENT).write_bytes(b"the old unversioned model")
    trained_at = datetime.datetime(2026, 12, 3, 11, 0, tzinfo=datetime.timezone.utc).timestamp()
    os.utime(tmp_path / CURRENT, (trained_at, trained_at))
    new = _train(tmp_path, 30)
    model_versions.publish(tmp_path)
    assert _current(tmp_path) == new.read_bytes()
    previous = model_versions.rollback(tmp_path)
    assert previous != new and _current(tmp_path) == b"the old unversioned model"


def test_a_copied_current_model_is_still_recognised(tmp_path):
    """Where hard links fail (another file system), assistant.tar.gz is a copy."""
    one, two = _train(tmp_path, 1), _train(tmp_path, 2)
    (tmp_path / CURRENT).write_bytes(two.read_bytes())  # a copy, not a link
    assert model_versions.current_version(tmp_path) == two
    assert model_versions.rollback(tmp_path) == one


def test_nothing_to_roll_back_to_is_said_and_fails(tmp_path):
    done = subprocess.run([sys.executable, "-m", "tools.model_versions", "rollback", "--models", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          timeout=60)
    assert done.returncode == 1 and "none of the kept versions" in done.stderr
    _train(tmp_path, 1)
    _train(tmp_path, 2)
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "tools.model_versions", *args, "--models", str(tmp_path)], cwd=ROOT,
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert run("publish").returncode == 0
    done = run("rollback")
    assert done.returncode == 0 and "restart Rasa" in done.stdout
    assert run("list").stdout.splitlines() == ["* assistant-20261203T120100Z.tar.gz",
                                               "  assistant-20261203T120200Z.tar.gz"]


def test_make_train_trains_a_new_version_and_publishes_it():
    """The Makefile's rule, as make would run it (dry run: nothing is trained)."""
    # --no-print-directory: under `make test` (a sub-make) make would add "Leaving directory"
    done = subprocess.run(["make", "--no-print-directory", "-n", "-B", "train", "rollback-model"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    train = next(i for i, line in enumerate(lines) if " train --domain domain" in line)
    assert "--out .state/models/versions --fixed-model-name assistant-" in lines[train + 1]
    assert any(line.endswith("-m tools.model_versions publish") for line in lines[train + 2:])
    assert lines[-1].endswith("-m tools.model_versions rollback")
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "MODEL  := $(STATE)/models/assistant.tar.gz" in makefile  # what every command uses

"""End to end: after a progress lookup through the REST channel of a running stack, the
SQLite tracker store (read raw, with sqlite3, not through Rasa) holds none of the lookup's
values, while mid-lookup it does (the form needs them). The stack runs with endpoints.yml's
tracker store (channels/tracker_store.py) in a state folder `.state`, and the folder and
its databases end up private (0700 / 0600).
"""
import json
import os
import sqlite3
import stat

import pytest

from channels.tracker_store import PLACEHOLDER
from progress_helpers import EXAMPLE_CSV, new_secrets, run_import
from tests.conftest import ROOT, make_settings, start_stack
from tests.stored_conversations import still_stored

NUMBER, SUFFIX = "NC2025000104", "1357"  # example_export.csv: 王芳, 尿毒症透析, need_more
RESULT_VALUES = ["尿毒症透析", "诊断证明书", "完整病历", "王*", "需补充材料"]

# one stack for the module's tests, on one worker (each started stack costs a minute of CPU)
pytestmark = pytest.mark.xdist_group("progress_at_rest")


@pytest.fixture(scope="module")
def stack(trained_model, tmp_path_factory):
    state = tmp_path_factory.mktemp("at-rest") / ".state"
    state.mkdir()
    os.chmod(state, 0o755)  # as `rasa train` or an older version leaves it
    secrets_env = new_secrets()
    database_url = f"sqlite:///{state / 'progress.db'}"
    done = run_import(EXAMPLE_CSV, database_url, secrets_env)
    assert done.returncode == 0, done.stdout + done.stderr
    settings = make_settings(state, trained_model)
    text = (ROOT / "endpoints.yml").read_text(encoding="utf-8")
    text = text.replace("http://localhost:5055/webhook", f"http://127.0.0.1:{settings.actions_port}/webhook")
    text = text.replace("db: .state/rasa-tracker.db", f"db: \"{state / 'rasa-tracker.db'}\"")
    settings.endpoints = state / "endpoints.at-rest.yml"
    settings.endpoints.write_text(text, encoding="utf-8")
    environ = {**os.environ, **secrets_env, "PROGRESS_DATABASE_URL": database_url}
    environ.pop("PROGRESS_SERVICE_URL", None)
    handle = start_stack(settings, environ)
    yield handle
    handle.stack.stop()


def rows(stack, sender=None):
    with sqlite3.connect(str(stack.settings.state_dir / "rasa-tracker.db")) as connection:
        connection.row_factory = sqlite3.Row
        query, parameters = "SELECT * FROM events", ()
        if sender:
            # a REST sender's conversation is "rest:<sender>" (channels/masked.py)
            query, parameters = query + " WHERE sender_id = ?", ("rest:" + sender,)
        return [dict(row) for row in connection.execute(query + " ORDER BY id", parameters)]


def test_a_lookup_leaves_nothing_at_rest_and_the_conversation_goes_on(stack):
    user = "at-rest-1"
    assert "身份证" in stack.say_text(user, f"帮我查{NUMBER}的进度")
    # in flight: the number is kept for the form's next turn
    assert still_stored(rows(stack, user), [NUMBER]) == [NUMBER]
    answer = stack.say_text(user, SUFFIX)
    assert "需补充材料" in answer and "诊断证明书" in answer and "王*" in answer
    stored = rows(stack, user)
    assert stored, "the conversation was not stored at all"
    assert still_stored(stored, [NUMBER, NUMBER[2:], SUFFIX] + RESULT_VALUES) == []
    assert [json.loads(row["data"])["text"] for row in stored if row["type_name"] == "user"] == [PLACEHOLDER] * 2

    # the redacted conversation loads and goes on: a new lookup asks from the start
    assert "申请编号" in stack.say_text(user, "查进度")
    assert "身份证" in stack.say_text(user, "NC2025000102")
    assert "已受理" in stack.say_text(user, "5678")
    assert still_stored(rows(stack, user), [NUMBER, SUFFIX, "NC2025000102", "5678", "李*明", "糖尿病"]) == []
    assert stack.say_text(user, "高血压能办吗")
    assert still_stored(rows(stack, user), ["高血压能办吗"]) == ["高血压能办吗"]  # not part of a lookup


def test_a_failed_try_then_quitting_leaves_nothing(stack):
    user = "at-rest-2"
    stack.say_text(user, "查进度")
    assert "身份证" in stack.say_text(user, "NC2025000101")
    assert "没查到" in stack.say_text(user, "9999")  # and the form asks for the number again
    assert still_stored(rows(stack, user), ["NC2025000101", "9999"]) == ["NC2025000101", "9999"]
    assert "不查了" in stack.say_text(user, "算了")
    assert still_stored(rows(stack, user), ["NC2025000101", "9999"]) == []


def test_the_state_folder_and_its_databases_are_private(stack):
    state = stack.settings.state_dir
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    databases = [path for path in state.iterdir() if ".db" in path.name]
    assert {"rasa-tracker.db", "progress.db", "agents.db"} <= {path.name for path in databases}
    for path in databases:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name

"""The Rasa adaptations (channels/rasa_adaptations.py) change cost, never behaviour."""
import jsonschema
import pytest
from rasa.core.actions.action import RemoteAction

import channels  # noqa: F401 - loading the channels applies the adaptations, as in Rasa
from channels import rasa_adaptations

SAMPLES = [
    {},
    {"events": [], "responses": []},
    {"events": [{"event": "slot", "name": "a", "value": 1}],
     "responses": [{"text": "好的", "buttons": [{"title": "下一步", "payload": "/affirm"}]}]},
    {"events": [{"event": "bot", "text": "x"}], "responses": [{"text": "x"}]},
    {"events": "not a list"},
    {"events": [{"event": 5}]},
    {"events": [{"event": "no_such_event"}]},
    {"responses": "text"},
    {"responses": ["not an object"]},
    [],
]


def outcome(function, result):
    try:
        return function(RemoteAction("action_x", None), result), None
    except jsonschema.ValidationError as error:
        return None, error.message


def test_loading_the_channels_installs_the_validator_built_once():
    assert RemoteAction._validate_action_result is rasa_adaptations._validate_action_result


@pytest.mark.parametrize("result", SAMPLES)
def test_same_verdict_and_message_as_rasa(result):
    assert outcome(rasa_adaptations._ORIGINAL_VALIDATE, result) == outcome(
        rasa_adaptations._validate_action_result, result)


def test_the_schema_is_checked_once_not_per_response(monkeypatch):
    rasa_adaptations._action_response_validator.cache_clear()
    checks = []
    validator_class = jsonschema.validators.validator_for(RemoteAction.action_response_format_spec())
    original = validator_class.check_schema
    monkeypatch.setattr(validator_class, "check_schema",
                        classmethod(lambda cls, schema, **kw: checks.append(1) or original(schema, **kw)))
    for _ in range(5):
        rasa_adaptations._validate_action_result(None, {"events": [], "responses": []})
    assert len(checks) == 1


def test_another_rasa_line_is_left_alone(monkeypatch):
    monkeypatch.setattr(rasa_adaptations.rasa, "__version__", "3.7.0")
    monkeypatch.setattr(RemoteAction, "_validate_action_result", rasa_adaptations._ORIGINAL_VALIDATE)
    assert rasa_adaptations.apply() is False
    assert RemoteAction._validate_action_result is rasa_adaptations._ORIGINAL_VALIDATE


def test_the_sqlite_tracker_store_writes_ahead_and_keeps_conversations(tmp_path):
    import asyncio

    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    db = tmp_path / "tracker.db"
    store = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(db))
    tracker = DialogueStateTracker.from_events("u1", [ActionExecuted("action_listen"), UserUttered("你好")])
    asyncio.run(store.save(tracker))
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    again = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(db))
    restored = asyncio.run(again.retrieve("u1"))
    assert [e.as_dict().get("text") for e in restored.events if isinstance(e, UserUttered)] == ["你好"]

"""Small, documented adaptations of Rasa 3.6 for the Rasa server process.

Rasa 3.6 is frozen upstream; where it wastes work on every turn, we change that one
function here instead of carrying a patched copy of Rasa. Each adaptation checks that it
meets the function it expects (same Rasa line) and otherwise leaves Rasa as it is.
Applied when Rasa imports `channels` (every Rasa server of this project loads its input
channels from credentials.yml). docs/performance.md lists them with the measurements;
tests/foundation/test_rasa_adaptations.py checks behaviour is unchanged.
"""
import functools
import logging
import sqlite3

import jsonschema
import rasa
import sqlalchemy as sa
from rasa.core.actions.action import RemoteAction
from rasa.shared.constants import DOCS_BASE_URL

logger = logging.getLogger(__name__)

SUPPORTED_RASA = "3.6."
_ORIGINAL_VALIDATE = RemoteAction._validate_action_result


@functools.lru_cache(maxsize=1)
def _action_response_validator():
    """Built once. `jsonschema.validate()` first checks the schema itself against the
    meta-schema and builds a new validator, on every action-server response (12–25 %
    of the Rasa process's time under load, issue 17)."""
    schema = RemoteAction.action_response_format_spec()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def _validate_action_result(self, result) -> bool:
    """Same contract as Rasa's RemoteAction._validate_action_result (raises the same
    ValidationError with the same hint), with the validator built once."""
    # the error jsonschema.validate() would raise: the best match of all errors
    error = jsonschema.exceptions.best_match(_action_response_validator().iter_errors(result))
    if error is None:
        return True
    error.message += (
        ". Failed to validate Action server response from API, "
        "make sure your response from the Action endpoint is valid. "
        f"For more information about the format visit {DOCS_BASE_URL}/custom-actions"
    )
    raise error


def _sqlite_write_ahead_log(dbapi_connection, _record) -> None:
    """SQLite tracker store (the embedded default): write-ahead log, and sync at checkpoints
    instead of at every commit. Rasa commits twice a turn; with the rollback journal each
    commit waits for the disk. A crash of the machine (not of Rasa) can lose the last
    turns, never corrupt the file; production uses PostgreSQL (deploy/)."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def apply() -> bool:
    """Install the adaptations; False (Rasa untouched) on another Rasa line."""
    if not rasa.__version__.startswith(SUPPORTED_RASA):
        logger.warning("Rasa %s is not %sx: leaving RemoteAction validation as Rasa ships it",
                       rasa.__version__, SUPPORTED_RASA)
        return False
    RemoteAction._validate_action_result = _validate_action_result
    if not sa.event.contains(sa.engine.Engine, "connect", _sqlite_write_ahead_log):
        sa.event.listen(sa.engine.Engine, "connect", _sqlite_write_ahead_log)
    return True

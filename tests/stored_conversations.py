"""Reading the tracker store's raw table in tests: what text is stored, anywhere.

`stored_texts` walks every row of `events` as the database holds it: the text columns
(sender, type, intent, action) and, in the JSON of `data`, every key, every string and
every integer. Left out are the row id and the float timestamps, and hex identifiers
(message ids, model ids, hashes of the client address), whose random digits would make a
4-digit ID suffix "appear" by chance. The JSON is decoded, so Chinese text that is stored
as \\u escapes is compared as the characters themselves.
"""
import json
import re
from typing import Any, Iterable, List

HEX_ID = re.compile(r"^[0-9a-f]{16,}$")
SKIPPED_COLUMNS = {"id", "timestamp"}


def _walk(value: Any, out: List[str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            out.append(str(key))
            _walk(item, out)
    elif isinstance(value, list):
        for item in value:
            _walk(item, out)
    elif isinstance(value, str):
        if not HEX_ID.match(value):
            out.append(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        out.append(str(value))


def stored_texts(rows: Iterable[Any]) -> List[str]:
    """`rows`: mappings (column -> value) of the `events` table."""
    out: List[str] = []
    for row in rows:
        for column, value in dict(row).items():
            if column in SKIPPED_COLUMNS or value is None:
                continue
            if column == "data":
                _walk(json.loads(value), out)
            elif isinstance(value, str):
                out.append(value)
    return out


def still_stored(rows: Iterable[Any], secrets: Iterable[str]) -> List[str]:
    """The secrets found in any stored text."""
    texts = stored_texts(rows)
    return [secret for secret in secrets if any(secret in text for text in texts)]

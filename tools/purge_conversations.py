"""`make purge-conversations`: apply the conversation retention once, now.

Reads the tracker store from an endpoints file (default endpoints.yml; ENDPOINTS or
`--endpoints deploy/endpoints.production.yml` with the DB_* variables for production),
deletes conversations older than CONVERSATION_RETENTION_DAYS and redacts lookups
abandoned half-way (channels/tracker_store.py, docs/security.md). The Rasa process does the
same when it starts and then periodically; this command is for cron and for a store no
Rasa process is running on. Exit status 2 when the endpoints file names another store.
"""
import argparse
import pathlib
import sys
from typing import List, Optional

from channels.tracker_store import NotOurStore, open_from_endpoints
from core import defaults


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=pathlib.Path, default=defaults.ROOT / "endpoints.yml")
    args = parser.parse_args(argv)
    try:
        store = open_from_endpoints(args.endpoints)
    except NotOurStore as error:
        print(f"{error}; nothing purged", file=sys.stderr)
        return 2
    try:
        result = store.purge()
    finally:
        store.close()
    print(f"retention {store.settings.retention_days:g} days: deleted {result['deleted_events']} events "
          f"({result['deleted_conversations']} whole conversations); "
          f"redacted {result['redacted_lookups']} abandoned lookups")
    return 0


if __name__ == "__main__":
    sys.exit(main())

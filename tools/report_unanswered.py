"""`make report-unanswered SINCE=2026-11-01`: the questions the bot could not answer.

Reads the tracker store from an endpoints file (default endpoints.yml; ENDPOINTS or
`--endpoints deploy/endpoints.production.yml` with the DB_* variables for production), as
`make purge-conversations` does, and writes one CSV row per user turn that ended in a
clarification ("您是想问…？"), the human route, a request for a person or a 👎
(core/unanswered.py; the columns: docs/operations.md). With `--candidates`, also a YAML
file of NLU training candidates for a reviewer: similar questions grouped, counts per
ISO week, intents named TO_REVIEW_<best guess>. Never written into data/.

SINCE and UNTIL are dates (or date-times) in Asia/Shanghai time; UNTIL's day is included.
The files go to .state/reports/ unless --out / --candidates name another place; they are
created 0600 (they hold what people typed). The CSV is UTF-8 with a BOM, so Excel shows
the Chinese text without an import dialog. Exit status 2 when the endpoints file names
another store or the arguments are wrong.
"""
import argparse
import csv
import datetime as dt
import pathlib
import sys
from collections import Counter
from typing import List, Optional, Tuple

import yaml
from channels.tracker_store import NotOurStore, PrivateSQLTrackerStore, open_from_endpoints
from core import defaults
from core.formats import CHINA_TZ
from core.private_files import private_file
from core.unanswered import CSV_COLUMNS, Row, candidate_clusters, candidates_document, csv_record, unanswered_rows

REPORTS_DIR = defaults.STATE_DIR / "reports"
TRAINING_DATA_DIR = defaults.ROOT / "data"
CANDIDATES_HEADER = """\
# NLU training candidates from the unanswered-question report (make report-unanswered).
# For review, NOT training data: rename each TO_REVIEW_<guess> to the right intent (the
# guess is only the NLU's best one and often wrong), delete what is noise or personal
# (names, addresses), then move the examples into data/nlu/ by hand and retrain.
# metadata: how often the question came in (count, per ISO week) and what the bot did.
# Holds what people typed: keep it on the server, do not mail it (docs/operations.md).
"""


def parse_time(value: str, end_of_day: bool = False) -> float:
    """'2026-11-01' or '2026-11-01T08:00' in Asia/Shanghai time (unless it names its own
    offset) as unix time; a bare date as `end_of_day` means the start of the next day."""
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {value!r} (use 2026-11-01)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=CHINA_TZ)
    if end_of_day and len(value.strip()) == 10:
        moment += dt.timedelta(days=1)
    return moment.timestamp()


class _Dumper(yaml.SafeDumper):
    """Rasa's look: multi-line strings (the examples) as literal blocks."""


_Dumper.add_representer(str, lambda dumper, value: dumper.represent_scalar(
    "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None))


def _refuse_training_data(path: pathlib.Path) -> None:
    resolved = path.resolve()
    if resolved == TRAINING_DATA_DIR.resolve() or TRAINING_DATA_DIR.resolve() in resolved.parents:
        raise SystemExit(f"{path}: the report never writes into data/ (review it first; docs/operations.md)")


def write_csv(path: pathlib.Path, rows: List[Row]) -> None:
    _refuse_training_data(path)
    private_file(path)  # 0600 before any text goes in
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(csv_record(row) for row in rows)


def write_candidates(path: pathlib.Path, rows: List[Row]) -> int:
    _refuse_training_data(path)
    clusters = candidate_clusters(rows)
    private_file(path)
    text = yaml.dump(candidates_document(clusters), Dumper=_Dumper, allow_unicode=True, sort_keys=False)
    path.write_text(CANDIDATES_HEADER + text, encoding="utf-8")
    return len(clusters)


def read_rows(store: PrivateSQLTrackerStore, since: float, until: Optional[float]) -> Tuple[List[Row], int]:
    """(the rows, in time order; how many conversations were read)."""
    senders = store.conversations_since(since)
    rows: List[Row] = []
    for sender_id in senders:
        rows.extend(unanswered_rows(sender_id, store.conversation_events(sender_id), since, until))
    rows.sort(key=lambda row: (row.timestamp, row.conversation))
    return rows, len(senders)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=pathlib.Path, default=defaults.ROOT / "endpoints.yml")
    parser.add_argument("--since", required=True, help="first day, e.g. 2026-11-01 (Asia/Shanghai)")
    parser.add_argument("--until", help="last day, included (default: up to now)")
    parser.add_argument("--out", type=pathlib.Path,
                        help="the CSV (default .state/reports/unanswered_<since>_<until>.csv)")
    parser.add_argument("--candidates", nargs="?", const="", metavar="PATH",
                        help="also write NLU training candidates for review "
                             "(default .state/reports/nlu-candidates_<since>_<until>.yml)")
    args = parser.parse_args(argv)
    try:
        since = parse_time(args.since)
        until = parse_time(args.until, end_of_day=True) if args.until else None
    except argparse.ArgumentTypeError as error:
        parser.print_usage(sys.stderr)
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        store = open_from_endpoints(args.endpoints)
    except NotOurStore as error:
        print(f"{error}; no report", file=sys.stderr)
        return 2
    try:
        rows, conversations = read_rows(store, since, until)
    finally:
        store.close()

    period = f"{args.since}_{args.until or dt.datetime.now(CHINA_TZ).date().isoformat()}"
    out = args.out or REPORTS_DIR / f"unanswered_{period}.csv"
    write_csv(out, rows)
    kinds = Counter(kind for row in rows for kind in row.outcome.split("+"))
    summary = ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items())) or "none"
    print(f"{len(rows)} unanswered turns ({summary}) in {conversations} conversations -> {out}")
    if args.candidates is not None:
        path = pathlib.Path(args.candidates) if args.candidates else REPORTS_DIR / f"nlu-candidates_{period}.yml"
        clusters = write_candidates(path, rows)
        print(f"{clusters} candidate groups for review -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

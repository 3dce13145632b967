"""Find test utterances that are (near-)copies of training examples.

    python -m bench.leak_check tests/nlu/hard_set.yml tests/nlu/test_set.yml

A held-out test set only measures something when its utterances are not the training
examples again with one character changed (申请表从哪里下载 / 申请表在哪里下载). Both sides
are compared after the same normalisation: entity markup [text](entity) -> text,
core.textnorm.normalize_text (traditional -> simplified, full-width -> half-width),
lower case, spaces and punctuation removed. A test utterance is a near-copy when its
character edit distance to ANY training example (of any intent) is at most 2 AND at most
25 % of the test utterance's normalised length; exact copies count too. So utterances of
up to 3 characters are flagged only as exact copies, 4-7 characters at distance 1, longer
ones at distance 2.

Training examples: data/nlu/**/*.yml without data/nlu/generated/ (the disease lookup,
which is names only). Exit status 1 when any near-copy is found.
"""
import argparse
import pathlib
import re
import sys
import time
import unicodedata
from collections import defaultdict
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import yaml

from core.textnorm import normalize_text

ROOT = pathlib.Path(__file__).resolve().parent.parent
TRAIN_DIR = ROOT / "data" / "nlu"
GENERATED = "generated"

MAX_DISTANCE = 2
MAX_SHARE = 0.25

# [text](entity), [text]{"entity": ...}
_MARKUP = re.compile(r"\[([^\]]+)\]\([^)]*\)|\[([^\]]+)\]\{[^}]*\}")


def strip_markup(text: str) -> str:
    return _MARKUP.sub(lambda m: m.group(1) or m.group(2), text)


def normalise(text: str) -> str:
    """What is compared: normalised text without spaces, punctuation or case."""
    text = normalize_text(strip_markup(text)).casefold()
    return "".join(
        char for char in text
        if not char.isspace() and not unicodedata.category(char).startswith("P")
    )


def read_examples(path) -> List[Tuple[str, str]]:
    """(utterance as written, intent) from a Rasa YAML NLU file; other blocks (regex,
    lookup, synonym) are skipped."""
    path = pathlib.Path(path)
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    found = []
    for block in document.get("nlu") or []:
        if "intent" not in block:
            continue
        for line in str(block.get("examples") or "").splitlines():
            line = line.strip()
            if line.startswith("- "):
                found.append((line[2:].strip(), block["intent"]))
    return found


def training_paths(directory: pathlib.Path = TRAIN_DIR) -> List[pathlib.Path]:
    return sorted(
        path for path in pathlib.Path(directory).rglob("*.yml")
        if GENERATED not in path.relative_to(directory).parts
    )


def allowed_distance(length: int) -> int:
    """Largest edit distance that still counts as a near-copy of a text this long."""
    return min(MAX_DISTANCE, int(length * MAX_SHARE))


def edit_distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance of a and b, or limit + 1 as soon as it must exceed limit.

    Only the diagonal band |i - j| <= limit is computed (a path leaving it costs more
    than limit), and the rows stop as soon as every cell in the band exceeds limit."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    if a == b:
        return 0
    if limit == 0:
        return 1
    over = limit + 1
    n, m = len(a), len(b)
    previous = [j if j <= limit else over for j in range(m + 1)]
    for i in range(1, n + 1):
        low, high = max(1, i - limit), min(m, i + limit)
        current = [over] * (m + 1)
        current[0] = i if i <= limit else over
        best = current[0] if low == 1 else over
        char_a = a[i - 1]
        for j in range(low, high + 1):
            cost = previous[j - 1] + (char_a != b[j - 1])
            if previous[j] + 1 < cost:
                cost = previous[j] + 1
            if current[j - 1] + 1 < cost:
                cost = current[j - 1] + 1
            if cost > over:
                cost = over
            current[j] = cost
            if cost < best:
                best = cost
        if best > limit:
            return over
        previous = current
    return previous[m] if previous[m] <= limit else over


def _pieces(text: str, count: int) -> List[str]:
    """text cut into count consecutive non-empty pieces of nearly equal length."""
    count = max(1, min(count, len(text)))
    size, extra = divmod(len(text), count)
    pieces, start = [], 0
    for number in range(count):
        end = start + size + (1 if number < extra else 0)
        pieces.append(text[start:end])
        start = end
    return pieces


class TrainingIndex:
    """Normalised training examples grouped by length, so a test utterance is compared
    only with examples whose length could be within the allowed distance."""

    def __init__(self, examples: Iterable[Tuple[str, str]]):
        self.by_length: Dict[int, Dict[str, str]] = defaultdict(dict)
        for text, _intent in examples:
            norm = normalise(text)
            if norm:
                self.by_length[len(norm)].setdefault(norm, strip_markup(text))

    def nearest(self, text: str) -> Optional[Tuple[str, int]]:
        """(training example as written, distance) of the closest near-copy, or None."""
        norm = normalise(text)
        if not norm:
            return None
        limit = allowed_distance(len(norm))
        exact = self.by_length.get(len(norm), {}).get(norm)
        if exact is not None:
            return exact, 0
        # Pigeonhole filter: k edits leave at least one of k + 1 disjoint pieces of the
        # text intact, so a candidate holding none of them is farther than k.
        pieces = _pieces(norm, limit + 1)
        best = None
        for length in range(len(norm) - limit, len(norm) + limit + 1):
            for candidate, original in self.by_length.get(length, {}).items():
                if not any(piece in candidate for piece in pieces):
                    continue
                distance = edit_distance(norm, candidate, limit)
                if distance <= limit:
                    limit = distance  # only a closer one is of interest now
                    best = (original, distance)
                    if distance == 1:
                        break
        return best


def near_copies(test_path, train_paths: Optional[Sequence] = None,
                index: Optional[TrainingIndex] = None) -> List[Tuple[str, str, str]]:
    """(test utterance without markup, its intent, the training example it copies) for
    every near-copy in test_path. train_paths defaults to data/nlu without generated/;
    a prebuilt index (several test files against the same training data) replaces it."""
    if index is None:
        index = build_index(train_paths)
    found = []
    for text, intent in read_examples(test_path):
        match = index.nearest(text)
        if match is not None:
            found.append((strip_markup(text), intent, match[0]))
    return found


def build_index(train_paths: Optional[Sequence] = None) -> TrainingIndex:
    if train_paths is None:
        train_paths = training_paths()
    return TrainingIndex(example for path in train_paths for example in read_examples(path))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("test_sets", nargs="+", help="Rasa NLU YAML test files")
    parser.add_argument("--train", nargs="*", help="training files (default: data/nlu/**/*.yml without generated/)")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    train = [pathlib.Path(p) for p in args.train] if args.train else training_paths()
    index = build_index(train)
    total = 0
    for test_path in args.test_sets:
        copies = near_copies(test_path, index=index)
        count = len(read_examples(test_path))
        print(f"{test_path}: {len(copies)} near-copies of training examples in {count} utterances")
        for text, intent, train_text in copies:
            print(f"  [{intent}] {text}  <->  {train_text}")
        total += len(copies)
    print(f"checked against {len(train)} training files in {time.perf_counter() - started:.2f}s")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())

"""Similar unanswered questions grouped, for the console's supervisor page (issue 19).

Input: the rows of core/unanswered.py (masked text, time, outcome, top intents), as the
report reads them. Output: clusters of questions, largest first, each with its count,
its count per ISO week and per reason (outcome), and the questions in it; and, for the
questions a supervisor selects, the NLU training-candidate YAML of
`make report-unanswered CANDIDATES=1` (core.unanswered.candidates_document).

Which rows: the report's candidate rows (clarification, hand-off, 👎 with words); not
`asked_human` (the NLU understood those), button presses, messages without words or the
placeholder of a redacted lookup — core.unanswered.CANDIDATE_OUTCOMES and the same tests.

How clusters are made (deterministic; the same partition as the candidates file):
1. a question is its normalised text, `core.unanswered.candidate_key`: core/textnorm.py
   (traditional -> simplified, full-width -> half-width), then punctuation, spaces, emoji
   and case dropped. Texts with the same key are one question;
2. two questions are similar when the Jaccard index of their character bigrams is at
   least `core.unanswered.SIMILARITY` (0.5): "那个东西是啥" and "那个东西是什么" share
   4 of 6 bigrams;
3. clusters are the connected groups of similar questions (single link): a chain of
   similar questions is one cluster, so a cluster may hold two different questions.
Only questions sharing a bigram are compared (an index by bigram), so a large period
stays cheap; at most MAX_QUESTIONS distinct questions (the most frequent) are clustered,
the rest are counted as `left_out`.
"""
import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Set

import yaml

from core.textnorm import has_content
from core.unanswered import (CANDIDATE_OUTCOMES, PLACEHOLDER, SIMILARITY, Cluster, Row, candidate_key,
                             candidates_document, iso_week, unanswered_rows)

MAX_QUESTIONS = 5000
CANDIDATES_HEADER = """\
# NLU training candidates from the unanswered-question report (console supervisor page).
# For review, NOT training data: rename each TO_REVIEW_<guess> to the right intent (the
# guess is only the NLU's best one and often wrong), delete what is noise or personal
# (names, addresses), then move the examples into data/nlu/ by hand and retrain.
# metadata: how often the question came in (count, per ISO week) and what the bot did.
# Holds what people typed: keep it on the server, do not mail it (docs/operations.md).
"""


@dataclass
class Question:
    """Every row with one normalised text (`key`)."""
    key: str
    texts: Counter = field(default_factory=Counter)  # masked text as typed -> times
    weeks: Counter = field(default_factory=Counter)
    outcomes: Counter = field(default_factory=Counter)
    guesses: Counter = field(default_factory=Counter)  # the NLU's best guess -> times
    count: int = 0

    def add(self, row: Row) -> None:
        self.count += 1
        self.texts[row.text] += 1
        self.weeks[iso_week(row.timestamp)] += 1
        for kind in row.outcome.split("+"):
            self.outcomes[kind] += 1
        if row.top_intent:
            self.guesses[row.top_intent] += 1

    @property
    def text(self) -> str:
        """The most frequent way it was typed (ties: the first in sort order)."""
        return min(self.texts.items(), key=lambda item: (-item[1], item[0]))[0]


@dataclass
class QuestionCluster:
    questions: List[Question]  # largest first

    @property
    def count(self) -> int:
        return sum(question.count for question in self.questions)

    def _sum(self, name: str) -> Dict[str, int]:
        total: Counter = Counter()
        for question in self.questions:
            total.update(getattr(question, name))
        return dict(sorted(total.items()))

    @property
    def weeks(self) -> Dict[str, int]:
        return self._sum("weeks")

    @property
    def outcomes(self) -> Dict[str, int]:
        return self._sum("outcomes")

    @property
    def top_guess(self) -> str:
        guesses = self._sum("guesses")
        return min(guesses.items(), key=lambda item: (-item[1], item[0]))[0] if guesses else ""

    @property
    def id(self) -> str:
        """Stable while the cluster holds the same questions: a hash of their keys."""
        keys = "\n".join(sorted(question.key for question in self.questions))
        return hashlib.sha256(keys.encode("utf-8")).hexdigest()[:12]


@dataclass
class Grouping:
    clusters: List[QuestionCluster]
    left_out: int = 0  # rows of questions beyond MAX_QUESTIONS, not clustered


def is_candidate(row: Row) -> bool:
    """A row whose text can become a training example (as the candidates file decides)."""
    if not CANDIDATE_OUTCOMES.intersection(row.outcome.split("+")):
        return False
    text = row.text
    return not text.startswith("/") and PLACEHOLDER not in text and has_content(text) and bool(candidate_key(text))


def bigrams(key: str) -> frozenset:
    return frozenset(key[i:i + 2] for i in range(len(key) - 1)) if len(key) > 1 else frozenset({key})


def jaccard(first: frozenset, second: frozenset) -> float:
    union = first | second
    return len(first & second) / len(union) if union else 0.0


def group_questions(rows: Iterable[Row], similarity: float = SIMILARITY,
                    max_questions: int = MAX_QUESTIONS) -> Grouping:
    """The candidate rows as clusters of similar questions, largest first (ties: by the
    first question's text), questions in a cluster largest first."""
    questions: Dict[str, Question] = {}
    for row in rows:
        if is_candidate(row):
            key = candidate_key(row.text)
            questions.setdefault(key, Question(key)).add(row)
    ordered = sorted(questions.values(), key=lambda question: (-question.count, question.key))
    kept, dropped = ordered[:max_questions], ordered[max_questions:]
    grams = [bigrams(question.key) for question in kept]
    parent = list(range(len(kept)))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    by_gram: Dict[str, List[int]] = {}
    for index, own in enumerate(grams):
        seen: Set[int] = set()
        for gram in sorted(own):
            for other in by_gram.get(gram, ()):
                if other in seen:
                    continue
                seen.add(other)
                if root(other) != root(index) and jaccard(grams[other], own) >= similarity:
                    first, second = sorted((root(other), root(index)))
                    parent[second] = first
            by_gram.setdefault(gram, []).append(index)
    members: Dict[int, List[Question]] = {}
    for index, question in enumerate(kept):
        members.setdefault(root(index), []).append(question)  # kept is largest first
    clusters = [QuestionCluster(questions) for questions in members.values()]
    clusters.sort(key=lambda cluster: (-cluster.count, cluster.questions[0].text))
    return Grouping(clusters=clusters, left_out=sum(question.count for question in dropped))


def read_rows(store, since: float, until: Optional[float]) -> List[Row]:
    """The rows of a period, in time order, from any store with `conversations_since` and
    `conversation_events` (channels/tracker_store.py's, or core/tracker_reader.py's)."""
    rows: List[Row] = []
    for sender_id in store.conversations_since(since):
        rows.extend(unanswered_rows(sender_id, store.conversation_events(sender_id), since, until))
    rows.sort(key=lambda row: (row.timestamp, row.conversation))
    return rows


def reason_totals(rows: Sequence[Row]) -> Dict[str, int]:
    """All rows of the period (asked_human and button presses too) per reason."""
    return dict(sorted(Counter(kind for row in rows for kind in row.outcome.split("+")).items()))


def selected_candidates(clusters: Sequence[QuestionCluster], keys: Optional[Iterable[str]] = None) -> List[Cluster]:
    """The clusters as the candidates file's groups (core.unanswered.Cluster), holding
    only the questions whose key is in `keys` (all when None); empty groups dropped."""
    wanted = None if keys is None else set(keys)
    result = []
    for cluster in clusters:
        chosen = [q for q in cluster.questions if wanted is None or q.key in wanted]
        if not chosen:
            continue
        part = QuestionCluster(chosen)
        texts: Counter = Counter()
        for question in chosen:
            texts.update(question.texts)
        result.append(Cluster(
            examples=[text for text, _ in sorted(texts.items(), key=lambda item: (-item[1], item[0]))],
            count=part.count, weeks=part.weeks, outcomes=part.outcomes, top_guess=part.top_guess))
    return sorted(result, key=lambda cluster: (-cluster.count, cluster.examples[0]))


class _Dumper(yaml.SafeDumper):
    """Rasa's look: multi-line strings (the examples) as literal blocks."""


_Dumper.add_representer(str, lambda dumper, value: dumper.represent_scalar(
    "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None))


def candidates_yaml(groups: Sequence[Cluster], header: str = CANDIDATES_HEADER) -> str:
    """The candidates file's text: the header, then Rasa's NLU YAML (TO_REVIEW_ intents)."""
    return header + yaml.dump(candidates_document(groups), Dumper=_Dumper, allow_unicode=True, sort_keys=False)


def weeks_between(since: float, until: float) -> List[str]:
    """Every ISO week (2026-W45) touched by [since, until), in order."""
    weeks: List[str] = []
    moment = since
    while moment < until:
        week = iso_week(moment)
        if not weeks or weeks[-1] != week:
            weeks.append(week)
        moment += 86400
    last = iso_week(max(since, until - 1))
    if not weeks or weeks[-1] != last:
        weeks.append(last)
    return weeks


def cluster_view(cluster: QuestionCluster, max_questions: int = 50) -> Mapping[str, object]:
    """A cluster as the page shows it (JSON): masked texts only."""
    return {
        "id": cluster.id, "count": cluster.count, "weeks": cluster.weeks, "outcomes": cluster.outcomes,
        "top_guess": cluster.top_guess,
        "questions": [{"key": q.key, "text": q.text, "count": q.count, "variants": len(q.texts)}
                      for q in cluster.questions[:max_questions]],
        "more_questions": max(0, len(cluster.questions) - max_questions),
    }

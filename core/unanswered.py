"""Which questions the bot could not answer: rows for issue 19's report (pure, no Rasa).

Input: one conversation's stored events as dicts, in order, as the tracker store holds
them (channels/tracker_store.py: `conversation_events`). Output: one `Row` per user turn
that ended in one of these outcomes:

- `clarification`: the fallback ladder asked "您是想问…？", or for other words when it had no
  guess to offer (`action_fallback_ladder` ran
  in the turn and set `fallback_stage` to "asked");
- `handoff`: the ladder gave up and gave the human route (it ran and set
  `fallback_stage` to anything else). A message without words ("？？？", a lone emoji)
  gets a "please use words" reply from the same action and is not a row (the action
  decides that with `core.textnorm.has_content` too);
- `asked_human`: the person asked for a person (intent `ask_human`, answered), typed or
  by the "都不是" button of a clarification;
- `thumbs_down`: the person rated the bot's answer to the turn with 👎 (the widget and
  WeChat write it in the FEEDBACK shape below: core/feedback.py, channels/feedback.py).

A turn with several (a clarification later rated 👎) is one row, outcomes joined with "+".

Each row says what the person did next: the next user turn of the same session (its
intent and text), or "left" when the session ended (or the stored conversation does)
without one. Feedback events are not "next": they are about the turn, not a new one.

Privacy (defence in depth: the channels already masked ID numbers before anything was
stored, and the store redacted lookups): every text is masked again here (`mask_report_text`:
ID numbers, application numbers, any other run of 4 or more digits such as an ID suffix or
a mobile number), and the sender id is never in a row, only `conversation_ref`, a
short hash of it that groups the rows of one conversation.
"""
import datetime as dt
import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

from core.formats import CHINA_TZ
from core.privacy import mask_text
from core.textnorm import has_content, normalize_text

# As the action server names them (actions/fallback.py, actions/answers.py, domain/).
LADDER_ACTION = "action_fallback_ladder"
LADDER_SLOT = "fallback_stage"
LADDER_ASKED = "asked"
ASK_HUMAN_INTENT = "ask_human"
FALLBACK_INTENT = "nlu_fallback"  # the FallbackClassifier's marker, never a guess

CLARIFICATION = "clarification"
HANDOFF = "handoff"
ASKED_HUMAN = "asked_human"
THUMBS_DOWN = "thumbs_down"
OUTCOMES = (CLARIFICATION, HANDOFF, ASKED_HUMAN, THUMBS_DOWN)  # the order in a row
LEFT = "left"

# The 👎 shape, as the widget and WeChat write it (core/feedback.py). A `user` event is a 👎 on the
# previous user turn of its session when either
#   - its intent is `feedback_negative` (a button payload "/feedback_negative"), or
#   - the channel put {"feedback": "negative"} into its metadata (server-side, as the
#     channels set `client`: a client's own metadata is dropped, docs/security.md).
# A 👍 is the same with "feedback_positive" / "positive" and is never a row.
FEEDBACK = {"intent": "feedback_negative", "metadata_key": "feedback", "metadata_value": "negative"}
FEEDBACK_INTENTS = frozenset({"feedback_negative", "feedback_positive"})
FEEDBACK_REASON_KEY = "feedback_reason"  # a 👎's reason, in the same metadata (core/feedback.py)

# Digit runs that survive mask_text: 4 or more digits with up to 3 separators between
# them ("1 3 5 7", "138-1234-5678"). An ID suffix on its own is such a run.
_DIGIT_RUN = re.compile(r"\d(?:[\s\-_.,/|·、。]{0,3}\d){3,}")
# What Excel would run as a formula at the start of a cell (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def mask_report_text(text: Optional[str]) -> str:
    """The text as it may appear in a report: ID numbers and application numbers masked
    as in the logs (core.privacy.mask_text), then every remaining run of 4+ digits
    starred, and line breaks made spaces (one row, one line)."""
    masked = mask_text(text or "")
    masked = _DIGIT_RUN.sub(lambda match: re.sub(r"\d", "*", match.group(0)), masked)
    return " ".join(masked.split())


def spreadsheet_safe(value: str) -> str:
    """A cell Excel shows as text: a leading =, +, -, @ gets a quote (CSV injection)."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def conversation_ref(sender_id: str) -> str:
    """12 hex characters naming a conversation in a report, never the sender id (a WeChat
    OpenID, a widget visitor's id) itself. Its own prefix: not the X-Sender hash."""
    return hashlib.sha256(("report:" + (sender_id or "")).encode("utf-8", "surrogatepass")).hexdigest()[:12]


def local_time(timestamp: float) -> dt.datetime:
    """Unix time as Asia/Shanghai time (UTC+8 all year, no daylight saving)."""
    return dt.datetime.fromtimestamp(timestamp, CHINA_TZ).replace(microsecond=0)


def iso_week(timestamp: float) -> str:
    year, week, _ = local_time(timestamp).isocalendar()
    return f"{year}-W{week:02d}"


@dataclass
class Row:
    timestamp: float
    conversation: str
    channel: str
    text: str
    intents: List[Tuple[str, float]]  # up to 3 guesses, best first, without nlu_fallback
    outcome: str
    next_intent: str  # LEFT when the person did not write again in the session
    next_text: str = ""
    reason: str = ""  # a 👎's reason (masked), if one was given

    @property
    def time(self) -> str:
        return local_time(self.timestamp).isoformat()

    @property
    def top_intent(self) -> str:
        return self.intents[0][0] if self.intents else ""


CSV_COLUMNS = ("time", "conversation", "channel", "outcome", "text",
               "intent_1", "confidence_1", "intent_2", "confidence_2", "intent_3", "confidence_3",
               "next_intent", "next_text", "reason")


def csv_record(row: Row) -> List[str]:
    """The row's cells in CSV_COLUMNS order, every text cell safe to open in Excel."""
    guesses: List[str] = []
    for index in range(3):
        name, confidence = row.intents[index] if index < len(row.intents) else ("", None)
        guesses += [name, "" if confidence is None else f"{confidence:.2f}"]
    cells = [row.time, row.conversation, row.channel, row.outcome, row.text, *guesses,
             row.next_intent, row.next_text, row.reason]
    return [spreadsheet_safe(cell) for cell in cells]


# --- reading the events -------------------------------------------------------------------
def _intent(event: Mapping[str, Any]) -> str:
    return str(((event.get("parse_data") or {}).get("intent") or {}).get("name") or "")


def _top_intents(event: Mapping[str, Any], count: int = 3) -> List[Tuple[str, float]]:
    parse_data = event.get("parse_data") or {}
    ranking = list(parse_data.get("intent_ranking") or []) or [parse_data.get("intent") or {}]
    guesses = []
    for entry in ranking:
        name = entry.get("name")
        if name and name != FALLBACK_INTENT:
            guesses.append((str(name), float(entry.get("confidence") or 0.0)))
    return guesses[:count]


def is_negative_feedback(event: Mapping[str, Any]) -> bool:
    if event.get("event") != "user":
        return False
    metadata = event.get("metadata") or {}
    return (_intent(event) == FEEDBACK["intent"]
            or metadata.get(FEEDBACK["metadata_key"]) == FEEDBACK["metadata_value"])


def _is_feedback(event: Mapping[str, Any]) -> bool:
    return (_intent(event) in FEEDBACK_INTENTS
            or (event.get("metadata") or {}).get(FEEDBACK["metadata_key"]) is not None)


@dataclass
class _Turn:
    user: Mapping[str, Any]
    session: int
    events: List[Mapping[str, Any]] = field(default_factory=list)
    rated_down: bool = False
    reason: str = ""  # what the person said was wrong with the answer, after a 👎


def _turns(events: Iterable[Mapping[str, Any]]) -> List[_Turn]:
    """The user turns (feedback events attached to the turn they rate), with their session."""
    turns: List[_Turn] = []
    session = 0
    current: Optional[_Turn] = None
    for event in events:
        kind = event.get("event")
        if kind in ("session_started", "restart"):
            session += 1
            current = None
        elif kind == "user" and _is_feedback(event):
            previous = turns[-1] if turns and turns[-1].session == session else None
            if previous is not None and is_negative_feedback(event):
                previous.rated_down = True
                reason = (event.get("metadata") or {}).get(FEEDBACK_REASON_KEY)
                if isinstance(reason, str) and reason.strip():
                    previous.reason = reason.strip()
            current = None  # what the bot does after feedback is no outcome of the rated turn
        elif kind == "user":
            current = _Turn(user=event, session=session)
            turns.append(current)
        elif current is not None:
            current.events.append(event)
    return turns


def _ladder_stage(turn: _Turn) -> Tuple[bool, Any]:
    """(whether the fallback ladder ran in the turn, the stage it set)."""
    ran, stage = False, None
    for event in turn.events:
        if event.get("event") == "action" and event.get("name") == LADDER_ACTION:
            ran = True
        elif ran and event.get("event") == "slot" and event.get("name") == LADDER_SLOT:
            stage = event.get("value")
    return ran, stage


def outcomes(turn: _Turn) -> List[str]:
    found = set()
    ran, stage = _ladder_stage(turn)
    text = turn.user.get("text") or ""
    # no words: the ladder only asks for words and re-sets the stage it had (which may
    # be "asked" from the turn before), so neither a question nor a hand-off
    no_words = _intent(turn.user) == FALLBACK_INTENT and not has_content(text)
    if ran and not no_words:
        found.add(CLARIFICATION if stage == LADDER_ASKED else HANDOFF)
    if _intent(turn.user) == ASK_HUMAN_INTENT and any(event.get("event") == "bot" for event in turn.events):
        found.add(ASKED_HUMAN)
    if turn.rated_down:
        found.add(THUMBS_DOWN)
    return [kind for kind in OUTCOMES if kind in found]


def unanswered_rows(sender_id: str, events: Sequence[Mapping[str, Any]],
                    since: Optional[float] = None, until: Optional[float] = None) -> Iterator[Row]:
    """The report's rows for one conversation: user turns at or after `since` and before
    `until` (unix times) that ended in a clarification, a hand-off, a request for a person
    or a 👎."""
    turns = _turns(events)
    reference = conversation_ref(sender_id)
    for index, turn in enumerate(turns):
        timestamp = float(turn.user.get("timestamp") or 0.0)
        if (since is not None and timestamp < since) or (until is not None and timestamp >= until):
            continue
        kinds = outcomes(turn)
        if not kinds:
            continue
        following = turns[index + 1] if index + 1 < len(turns) else None
        if following is not None and following.session == turn.session:
            next_intent, next_text = _intent(following.user), mask_report_text(following.user.get("text"))
        else:
            next_intent, next_text = LEFT, ""
        yield Row(timestamp=timestamp, conversation=reference,
                  channel=str(turn.user.get("input_channel") or ""),
                  text=mask_report_text(turn.user.get("text")), intents=_top_intents(turn.user),
                  outcome="+".join(kinds), next_intent=next_intent or "", next_text=next_text,
                  reason=mask_report_text(turn.reason) if turn.reason else "")


# --- NLU training candidates -----------------------------------------------------------------
CANDIDATE_OUTCOMES = frozenset({CLARIFICATION, HANDOFF, THUMBS_DOWN})  # asked_human: understood
REVIEW_PREFIX = "TO_REVIEW_"
PLACEHOLDER = "［已隐去］"  # channels/tracker_store.py: a redacted lookup message
SIMILARITY = 0.5  # Jaccard of character bigrams at which two questions are one cluster
_NOT_TEXT = re.compile(r"[^\w*]+")  # punctuation, spaces, emoji: not part of the question


def candidate_key(text: str) -> str:
    """What two questions must share to be the same question: the normalised text
    (core.textnorm: simplified, half-width) without punctuation, spaces or case."""
    return _NOT_TEXT.sub("", normalize_text(text)).lower()


def _bigrams(key: str) -> frozenset:
    return frozenset(key[i:i + 2] for i in range(len(key) - 1)) if len(key) > 1 else frozenset({key})


def _similar(first: frozenset, second: frozenset) -> bool:
    union = first | second
    return bool(union) and len(first & second) / len(union) >= SIMILARITY


@dataclass
class Cluster:
    examples: List[str]  # distinct masked texts, most frequent first
    count: int
    weeks: Dict[str, int]
    outcomes: Dict[str, int]
    top_guess: str

    @property
    def intent(self) -> str:
        return REVIEW_PREFIX + (self.top_guess or "unknown")


def candidate_clusters(rows: Iterable[Row]) -> List[Cluster]:
    """Group the questions the bot did not answer (clarification, hand-off, 👎): first by
    normalised text, then groups whose character bigrams overlap by SIMILARITY or more
    (single link, so "那个东西是啥" and "那个东西是什么" meet). Largest clusters first."""
    groups: Dict[str, List[Row]] = {}
    for row in rows:
        if not CANDIDATE_OUTCOMES.intersection(row.outcome.split("+")):
            continue
        text = row.text
        if text.startswith("/") or PLACEHOLDER in text or not has_content(text):
            continue  # a button payload, a redacted lookup message, no words
        key = candidate_key(text)
        if key:
            groups.setdefault(key, []).append(row)
    keys = sorted(groups, key=lambda key: (-len(groups[key]), key))
    grams = {key: _bigrams(key) for key in keys}
    parent = {key: key for key in keys}

    def root(key: str) -> str:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for position, first in enumerate(keys):
        for second in keys[position + 1:]:
            if root(first) != root(second) and _similar(grams[first], grams[second]):
                parent[root(second)] = root(first)
    members: Dict[str, List[Row]] = {}
    for key in keys:
        members.setdefault(root(key), []).extend(groups[key])
    clusters = []
    for rows_of in members.values():
        texts = Counter(row.text for row in rows_of)
        guesses = Counter(row.top_intent for row in rows_of if row.top_intent)
        kinds = Counter(kind for row in rows_of for kind in row.outcome.split("+"))
        weeks = Counter(iso_week(row.timestamp) for row in rows_of)
        clusters.append(Cluster(
            examples=[text for text, _ in sorted(texts.items(), key=lambda item: (-item[1], item[0]))],
            count=len(rows_of), weeks=dict(sorted(weeks.items())), outcomes=dict(sorted(kinds.items())),
            top_guess=min(guesses.items(), key=lambda item: (-item[1], item[0]))[0] if guesses else ""))
    return sorted(clusters, key=lambda cluster: (-cluster.count, cluster.examples[0]))


def candidates_document(clusters: Sequence[Cluster]) -> Dict[str, Any]:
    """Rasa's NLU YAML shape (version, nlu: intent, metadata, examples) for a reviewer:
    every intent is TO_REVIEW_<top guess>, to be renamed to a real intent, merged or
    dropped before anything goes into data/."""
    return {"version": "3.1", "nlu": [
        {"intent": cluster.intent,
         "metadata": {"count": cluster.count, "weeks": cluster.weeks, "outcomes": cluster.outcomes},
         "examples": "".join(f"- {text}\n" for text in cluster.examples)}
        for cluster in clusters]}

"""👍/👎 on the bot's knowledge answers (issue 19): what the action marks, what the
channels may record, and the shape they record it in. Pure: no Rasa, no wording.

The flow (docs/web.md and docs/wechat.md "Feedback", docs/operations.md "Feedback (👎)"):

1. `action_answer_topic` marks an answer that may be rated: its last message carries
   `{"feedback": "offer"}` beside text and buttons (Rasa keeps it as the BotUttered's
   metadata; the widget's channel turns it into the rating's wording, WeChat gets a
   numbered "有帮助吗？" question with the buttons PAYLOADS, once per session).
2. The person rates. The channel (never the client, never the dialogue) appends ONE
   user event to the conversation in the tracker store, through Rasa's agent, without a
   bot run: no NLU, no policy, no action. Its metadata is the server's own (`client`)
   plus `{"feedback": "positive" | "negative"}` and, for a 👎, an optional
   `feedback_reason` (typed text, masked like any typed text, at most MAX_REASON_CHARS).
   This is core/unanswered.py's FEEDBACK shape: the report makes the 👎 a `thumbs_down`
   row of the rated turn.
3. What may be rated (`rating_allowed`): only the latest turn of the current session, only
   when its answer carried the offer, once; after a 👎, one more event may add the reason.

Policies never see the rating: it is a user event after the turn's `action_listen` and
before the next message, so the dialogue state the next turn is predicted from is the
same as without it (latest message = the next message; walk, lookup and fallback slots
untouched), and nothing of it can reach the fallback ladder.
"""
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from core.inbound import typed_text
from core.unanswered import FEEDBACK, FEEDBACK_INTENTS, FEEDBACK_REASON_KEY

# The marker on the last message of an answer that may be rated (a BotUttered's metadata).
OFFER_KEY, OFFER = "feedback", "offer"
POSITIVE, NEGATIVE = "positive", FEEDBACK["metadata_value"]
RATINGS = (POSITIVE, NEGATIVE)
RATING_KEY = FEEDBACK["metadata_key"]  # "feedback", in the rating event's metadata
REASON_KEY = FEEDBACK_REASON_KEY  # the report reads it (core/unanswered.py)
MAX_REASON_CHARS = 100
# The numbered choice on channels without a rating widget (WeChat): a tapped line sends
# its payload; the channel records it and never runs the bot on it.
POSITIVE_PAYLOAD, NEGATIVE_PAYLOAD = "/feedback_positive", "/feedback_negative"
PAYLOADS = {POSITIVE_PAYLOAD: POSITIVE, NEGATIVE_PAYLOAD: NEGATIVE}

# What rating_allowed answers.
ALLOWED = "allowed"
NOTHING_TO_RATE = "nothing_to_rate"  # no offer on the latest turn, or no turn in the session
ALREADY_RATED = "already_rated"
SESSION_EXPIRED = "session_expired"


def reason_text(text: Any) -> str:
    """A 👎's reason as it may be stored: typed text (ID numbers masked, no leading "/",
    core.inbound) cut to MAX_REASON_CHARS, on one line."""
    if not isinstance(text, str):
        return ""
    return " ".join(typed_text(text)[:MAX_REASON_CHARS].split())


def rating_metadata(rating: str, reason: str = "") -> Dict[str, str]:
    """The feedback part of the rating event's metadata (the channel adds `client`)."""
    if rating not in RATINGS:
        raise ValueError(f"rating must be one of {RATINGS}")
    metadata = {RATING_KEY: rating}
    if rating == NEGATIVE and reason:
        metadata[REASON_KEY] = reason
    return metadata


def is_offer(event: Mapping[str, Any]) -> bool:
    return event.get("event") == "bot" and (event.get("metadata") or {}).get(OFFER_KEY) == OFFER


def is_rating(event: Mapping[str, Any]) -> bool:
    """A user event that is a rating (as core/unanswered.py reads it: metadata or intent)."""
    if event.get("event") != "user":
        return False
    intent = str((((event.get("parse_data") or {}).get("intent")) or {}).get("name") or "")
    return (event.get("metadata") or {}).get(RATING_KEY) in RATINGS or intent in FEEDBACK_INTENTS


def _current_session(events: Sequence[Mapping[str, Any]]) -> List[Mapping[str, Any]]:
    start = 0
    for index, event in enumerate(events):
        if event.get("event") in ("session_started", "restart"):
            start = index + 1
    return list(events[start:])


def offered_this_session(events: Iterable[Mapping[str, Any]]) -> bool:
    """Whether an answer of the current session already carried the offer (WeChat asks
    at most once per session)."""
    return any(is_offer(event) for event in _current_session(list(events)))


def rating_allowed(events: Sequence[Mapping[str, Any]], rating: str, has_reason: bool,
                   now: float, session_minutes: Optional[float]) -> str:
    """May the person rate now? `events`: the conversation as stored (dicts, in order).
    A rating rates the latest turn of the current session; that turn's answer must carry
    the offer; one rating per answer, and after a 👎 one more event carrying its reason."""
    session = _current_session(events)
    last_user = None
    for index, event in enumerate(session):
        if event.get("event") == "user" and not is_rating(event):
            last_user = index
    if last_user is None:
        return NOTHING_TO_RATE
    timestamp = session[last_user].get("timestamp")
    later = session[last_user + 1:]
    latest = max([float(timestamp or 0)] + [float(e.get("timestamp") or 0) for e in later if is_rating(e)])
    if session_minutes and now - latest > session_minutes * 60:
        return SESSION_EXPIRED  # the next message starts a new session: nothing left to rate
    if not any(is_offer(event) for event in later):
        return NOTHING_TO_RATE
    given = [(event.get("metadata") or {}) for event in later if is_rating(event)]
    if not given:
        return ALLOWED
    if (rating == NEGATIVE and has_reason and len(given) == 1
            and given[0].get(RATING_KEY) == NEGATIVE and not given[0].get(REASON_KEY)):
        return ALLOWED  # the reason, after the 👎 itself
    return ALREADY_RATED

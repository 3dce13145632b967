"""The application-progress lookup: form validation and the lookup itself.

progress_form asks for application_no, then id_last4. Both slots use custom mappings
filled here: the number from the regex entity (also in the first message) or, while it
is being asked for, from any answer that contains digits; the suffix only while it is
being asked for. Answers without digits ("要带哪些材料", "算了") are not taken, so the
form lets other rules handle them. Replies live in knowledge/progress_replies.yml; this
module picks one and fills its variables.
"""
import asyncio
import datetime as dt
import logging
import re
from typing import Any, Callable, Dict, List, Optional, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import config
from actions.reply import send
from assistant.contacts import last_resort
from assistant.content import texts
from assistant.presentation import Message
from core import metrics
from core.formats import (
    CHINA_TZ, STATUS_LABELS, find_application_no, is_plausible_application_no,
    normalize_application_no, normalize_id_last4,
)
from core.privacy import mask_id_card_numbers
from core.progress_client import LookupResult, ProgressClient
from core.status_subscriptions import (
    DECLINE_PAYLOAD, FINAL_STATUSES, SUBSCRIBE_PAYLOAD, WATCH_KEY, WATCH_OFFER,
    SubscriptionStore,
)
from core.textnorm import to_halfwidth

logger = logging.getLogger(__name__)

FORM = "progress_form"
ID_LAST4_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])[0-9]{3}[0-9Xx](?![0-9A-Za-z])")
FULL_ID_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")
DIGIT = re.compile(r"[0-9]")
NOT_A_NUMBER = "-"  # slot value for an answer with digits but no plausible number in it

REPLIES = "progress_replies"  # knowledge/progress_replies.yml

# status code -> reply; each reply says what happens next for that status
STATUS_REPLIES = {
    "submitted": "submitted",
    "accepted": "accepted",
    "expert_review": "expert_review",
    "need_more": "need_more",
    "approved": "approved",
    "rejected": "rejected",
    "withdrawn": "withdrawn",
}
# status code -> the text said when the agency's record has no note
NOTE_FALLBACKS = {"need_more": "note_need_more", "rejected": "note_rejected"}


# Status-change notifications (issue 19) are offered after a found application on these
# channels only: the channel itself answers the picked line and sends the notifications.
NOTIFY_CHANNELS = {"wechat", "web"}
_shared_subscriptions: Optional[SubscriptionStore] = None


def shared_subscriptions() -> SubscriptionStore:
    """The status-subscription store (STATUS_SUBSCRIPTIONS_DATABASE_URL, the same as the
    WeChat channel's; tools/stack.py sets it for both), opened on first use."""
    global _shared_subscriptions
    if _shared_subscriptions is None:
        _shared_subscriptions = SubscriptionStore.from_env()
    return _shared_subscriptions


def reply_text(reply: str, **variables: Any) -> str:
    return texts(REPLIES).render(reply, **variables)


def say(dispatcher: CollectingDispatcher, tracker: Tracker, reply: str, **variables: Any) -> None:
    try:
        text = reply_text(reply, **variables)
    except Exception:  # noqa: BLE001 - a broken texts file must not break the conversation
        logger.exception("progress reply %s could not be rendered", reply)
        text = last_resort("progress_unavailable")
    send(dispatcher, tracker, text)


def _latest_text(tracker: Tracker) -> str:
    return to_halfwidth((tracker.latest_message or {}).get("text") or "")


def _attempts(tracker: Tracker) -> int:
    try:
        return int(tracker.get_slot("lookup_attempts") or 0)
    except (TypeError, ValueError):
        return 0


def _asking(tracker: Tracker, slot: str) -> bool:
    return (tracker.active_loop_name == FORM and tracker.get_slot("requested_slot") == slot
            and not _latest_message_used(tracker))


def _latest_message_used(tracker: Tracker) -> bool:
    """True when a lookup already ran on the latest user message: after "没查到" the form
    starts again on the same message, which must not be read as the next answer (it would
    try the same digits as a number, then as a suffix, and use up the attempts)."""
    for event in reversed(tracker.events or []):
        if event.get("event") == "user":
            return False
        if event.get("event") == "action" and event.get("name") == "action_check_progress":
            return True
    return False


def requester(tracker: Tracker) -> str:
    """Who asks, for the service's lockout: what the channel saw and the client cannot
    choose (channels/inbound.py puts a hash of the client address in the message's
    metadata); else the sender id, which only WeChat's signed OpenID and Rasa's
    authenticated HTTP API leave without one."""
    for event in reversed(tracker.events or []):
        if event.get("event") == "user":
            client = (event.get("metadata") or {}).get("client")
            if isinstance(client, str) and client:
                return "client:" + client
            break
    return "sender:" + (tracker.sender_id or "")


def _day(value: Optional[str]) -> str:
    if not value:
        return ""
    try:
        day = dt.date.fromisoformat(value[:10])
    except ValueError:
        return value
    return f"{day.year}年{day.month}月{day.day}日"


def _moment(value: Optional[str]) -> str:
    if not value:
        return ""
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return value
    return f"{moment.year}年{moment.month}月{moment.day}日 {moment:%H:%M}"


def _history_line(history: List[Dict[str, Any]]) -> str:
    steps = []
    for entry in history[-5:]:
        try:
            moment = dt.datetime.fromisoformat(entry.get("changed_at") or "")
            when = f"{moment.month}月{moment.day}日"
        except ValueError:
            when = ""
        label = entry.get("status_label") or STATUS_LABELS.get(entry.get("status"), "")
        steps.append(f"{when} {label}".strip())
    return reply_text("history", steps=" → ".join(steps)) if steps else ""


def status_reply(application: Dict[str, Any]) -> Dict[str, Any]:
    """The response name and its variables for one found application."""
    status = application.get("status")
    note = (application.get("note") or "").strip().rstrip("。.；;")
    if not note and status in NOTE_FALLBACKS:
        note = reply_text(NOTE_FALLBACKS[status])
    reply = STATUS_REPLIES.get(status, "other")
    if status == "approved" and not (application.get("valid_from") and application.get("valid_until")):
        reply = "approved_no_dates"
    return {
        "reply": reply,
        "name": application.get("applicant_name_masked") or "",
        "disease": application.get("disease") or reply_text("default_disease"),
        "status_label": application.get("status_label") or STATUS_LABELS.get(status, status or ""),
        "updated": _moment(application.get("status_updated_at")),
        "note": note,
        "valid_from": _day(application.get("valid_from")),
        "valid_until": _day(application.get("valid_until")),
        "history": _history_line(application.get("history") or []),
    }


def retry_time(retry_after: int, now: Optional[dt.datetime] = None) -> Dict[str, str]:
    now = now or dt.datetime.now(CHINA_TZ)
    at = now + dt.timedelta(seconds=max(retry_after, 1))
    minutes = max(1, -(-retry_after // 60))
    return {"retry_time": f"{at:%H:%M}", "retry_minutes": str(minutes)}


class ValidateProgressForm(FormValidationAction):
    """The number is not checked against a format (the real one is not known): anything
    that plausibly is one (letters and digits, at least 4, with a digit) goes to the
    service, which decides; a miss is answered as "没查到" with the possible reasons."""

    def __init__(self, max_attempts: Optional[int] = None):
        self.max_attempts = max_attempts or config.PROGRESS_MAX_ATTEMPTS

    def name(self) -> Text:
        return "validate_progress_form"

    # --- extraction (custom slot mappings) -----------------------------------------------
    async def extract_application_no(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                     domain: DomainDict) -> Dict[Text, Any]:
        entity = next(tracker.get_latest_entity_values("application_no"), None)
        if entity and not _latest_message_used(tracker):
            return {"application_no": entity}
        if _asking(tracker, "application_no") and DIGIT.search(_latest_text(tracker)):
            # an attempt. Only the number itself is kept, never the message: a full ID
            # number, a mobile number or an ID suffix typed here is not one (NOT_A_NUMBER,
            # which validation answers with "没认出来")
            number = find_application_no(mask_id_card_numbers(_latest_text(tracker)))
            return {"application_no": number or NOT_A_NUMBER}
        return {}

    async def extract_id_last4(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                               domain: DomainDict) -> Dict[Text, Any]:
        if not _asking(tracker, "id_last4"):
            return {}
        if next(tracker.get_latest_entity_values("application_no"), None):
            return {}  # the user gave (another) number instead
        # a full ID number (also typed in groups) keeps only its last 4, which is the answer
        text = mask_id_card_numbers(_latest_text(tracker))
        full_id = FULL_ID_IN_TEXT.search(text)
        if full_id:
            return {"id_last4": full_id.group(0)[-4:]}
        match = ID_LAST4_IN_TEXT.search(text)
        if match:
            return {"id_last4": match.group(0)}
        if DIGIT.search(text):
            return {"id_last4": text}
        return {}

    # --- validation -----------------------------------------------------------------------
    def _failed(self, tracker: Tracker, slot: str, dispatcher: CollectingDispatcher,
                reply: str) -> Dict[Text, Any]:
        attempts = _attempts(tracker) + 1
        if attempts >= self.max_attempts:
            # stop asking: action_check_progress explains and offers the hotline
            return {slot: None, "lookup_attempts": attempts, "requested_slot": None}
        say(dispatcher, tracker, reply)
        return {slot: None, "lookup_attempts": attempts}

    async def validate_application_no(self, value: Any, dispatcher: CollectingDispatcher,
                                      tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        if value is None:  # cleared by the lookup itself, not an answer: nothing to count
            return {"application_no": None}
        text = value if isinstance(value, str) else ""
        number = normalize_application_no(text)
        if not is_plausible_application_no(number):
            number = find_application_no(text)  # "编号是 2025-000104"
        if is_plausible_application_no(number):
            return {"application_no": number}
        return self._failed(tracker, "application_no", dispatcher,
                            "bad_application_no")

    async def validate_id_last4(self, value: Any, dispatcher: CollectingDispatcher,
                                tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        if value is None:  # cleared by the lookup itself, not an answer: nothing to count
            return {"id_last4": None}
        suffix = normalize_id_last4(value if isinstance(value, str) else "")
        if suffix:
            return {"id_last4": suffix}
        return self._failed(tracker, "id_last4", dispatcher, "bad_id_last4")


class ActionCheckProgress(Action):
    def __init__(self, client: Optional[ProgressClient] = None, max_attempts: Optional[int] = None,
                 subscriptions: Callable[[], SubscriptionStore] = shared_subscriptions):
        self.subscriptions = subscriptions
        self.client = client or ProgressClient(
            config.PROGRESS_SERVICE_URL, config.PROGRESS_API_KEY, config.PROGRESS_TIMEOUT_SECONDS,
            config.PROGRESS_LOOKUP_THREADS)
        self.max_attempts = max_attempts or config.PROGRESS_MAX_ATTEMPTS

    def name(self) -> Text:
        return "action_check_progress"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        try:
            return await self._run(dispatcher, tracker)
        except Exception as error:  # an error here would make Rasa log the tracker
            logger.error("progress lookup failed: %s", type(error).__name__)
            say(dispatcher, tracker, "unavailable")
            return [SlotSet("application_no", None), SlotSet("id_last4", None)]

    async def _run(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
        number = tracker.get_slot("application_no")
        suffix = tracker.get_slot("id_last4")
        attempts = _attempts(tracker)
        # The number and suffix are used once and the slots are cleared here. Rasa still
        # stored them (the typed messages, the slot events) and stores this reply; the
        # tracker store (channels/tracker_store.py) redacts all of that as soon as no
        # lookup is in flight, and a lookup left half-way once its session has expired.
        events: List[EventType] = [SlotSet("application_no", None), SlotSet("id_last4", None)]

        if not number or not suffix:
            if attempts >= self.max_attempts:
                say(dispatcher, tracker, "too_many_attempts", attempts=attempts)
                return events + [SlotSet("lookup_attempts", 0)]
            return events

        result: LookupResult = await self.client.lookup_async(number, suffix, requester(tracker))
        metrics.LOOKUPS.labels(outcome=result.outcome).inc()  # docs/deploy.md "Metrics"
        if result.outcome == "found":
            variables = status_reply(result.application or {})
            say(dispatcher, tracker, variables.pop("reply"), **variables)
            await self._offer_notifications(dispatcher, tracker, number, result.application or {})
            return events + [SlotSet("lookup_attempts", 0)]
        if result.outcome == "locked":
            say(dispatcher, tracker, "locked", **retry_time(result.retry_after))
            return events + [SlotSet("lookup_attempts", 0)]
        if result.outcome in ("no_match", "not_found", "invalid"):
            attempts += 1
            if attempts >= self.max_attempts:
                say(dispatcher, tracker, "too_many_attempts", attempts=attempts)
                return events + [SlotSet("lookup_attempts", 0)]
            say(dispatcher, tracker, "no_match")
            # ask again, from the number on
            return events + [SlotSet("lookup_attempts", attempts), FollowupAction(FORM)]
        say(dispatcher, tracker, "unavailable")
        return events


    async def _offer_notifications(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                   number: str, application: Dict[str, Any]) -> None:
        """The status can still change. WeChat: "状态有变化时通知我？" with two numbered
        lines; the offer (OpenID = sender id, number, status) waits in the store for the
        answer, which the channel handles. The widget (a `web-` session, not the agents'
        console): the offer under the session id, a note (progress_replies.yml watch_note)
        and the marker {"status_watch": "offer"}, which the web channel turns into the
        browser's watch token on the way out (docs/web.md "Status changes"): no token in
        the tracker store. Any failure: no offer, the lookup stands."""
        status = application.get("status")
        channel = (tracker.get_latest_input_channel() or "").lower()
        if channel not in NOTIFY_CHANNELS or status not in STATUS_LABELS or status in FINAL_STATUSES:
            return
        widget = channel == "web"
        if widget and not (tracker.sender_id or "").startswith("web-"):
            return
        number = normalize_application_no(application.get("application_no") or number)
        try:
            store = self.subscriptions()
            await asyncio.get_running_loop().run_in_executor(
                None, store.offer, tracker.sender_id, number, status)
            offer = Message(reply_text("watch_note")) if widget else Message(
                reply_text("notify_offer"), [
                    {"title": reply_text("notify_yes"), "payload": SUBSCRIBE_PAYLOAD},
                    {"title": reply_text("notify_no"), "payload": DECLINE_PAYLOAD}])
        except Exception as error:  # noqa: BLE001 - the lookup's answer is what matters
            logger.error("status notifications not offered: %s", type(error).__name__)
            return
        send(dispatcher, tracker, offer)
        if widget:
            dispatcher.utter_message(json_message={WATCH_KEY: WATCH_OFFER})


class ActionAskApplicationNo(Action):
    def name(self) -> Text:
        return "action_ask_application_no"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
        if intent == "check_progress":  # a new lookup: earlier failed tries do not count
            say(dispatcher, tracker, "ask_application_no")
            return [SlotSet("lookup_attempts", 0)] if _attempts(tracker) else []
        say(dispatcher, tracker, "ask_application_no_again" if _attempts(tracker) else "ask_application_no")
        return []


class ActionAskIdLast4(Action):
    def name(self) -> Text:
        return "action_ask_id_last4"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        again = tracker.get_slot("requested_slot") == "id_last4" and _attempts(tracker)
        say(dispatcher, tracker, "ask_id_last4_again" if again else "ask_id_last4")
        return []


class ActionProgressStopped(Action):
    """The user quit the form: forget what was typed and say how to come back."""

    def name(self) -> Text:
        return "action_progress_stopped"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        say(dispatcher, tracker, "stopped")
        return [SlotSet("application_no", None), SlotSet("id_last4", None),
                SlotSet("lookup_attempts", 0)]

"""Custom actions for the step-by-step application guide (issue 4).

The walk itself (state, wording, rendering) is in assistant/guide.py and
knowledge/guide_steps.yml; these actions only translate between Rasa and it:
slots -> GuideState, latest message -> intent/text/entities, Turn -> messages + SlotSet.
"""
import logging
import pathlib
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import config
from assistant import guide
from actions.rendering import send
from assistant.knowledge import get_knowledge, with_contacts

logger = logging.getLogger(__name__)

# Hotline from knowledge/contacts.yml (with_contacts), written in one place.
UNAVAILABLE = "申请步骤指引暂时打不开。您可以直接问我具体问题，或拨打{hotline_name} {hotline}。"
NOT_UNDERSTOOD_FALLBACK = "不好意思，我没说清楚。您可以换个说法再问我，或拨打{hotline_name} {hotline}。"


class _GuideMixin:
    """Shared run(); not an Action itself, so the SDK does not register it."""

    def __init__(self, steps_file: Optional[pathlib.Path] = None):
        self.steps_file = pathlib.Path(steps_file or config.GUIDE_STEPS_FILE)

    def turn(self, data: guide.GuideData, tracker: Tracker, state: guide.GuideState, wechat: bool) -> guide.Turn:
        raise NotImplementedError

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        try:
            data = guide.load_guide(self.steps_file)
            state = guide.GuideState.from_slots(tracker.current_slot_values(), data)
            channel = (tracker.get_latest_input_channel() or "").lower()
            wechat = channel in data.wechat_channels()
            result = self.turn(data, tracker, state, wechat)
        except Exception:  # a broken knowledge file must not break the conversation
            logger.exception("guide: cannot run %s", self.name())
            dispatcher.utter_message(text=with_contacts(UNAVAILABLE))
            return [SlotSet("guide_active", False), SlotSet("guide_awaiting", None)]

        for reply in result.replies:
            dispatcher.utter_message(**reply.as_message())
        return [
            SlotSet(name, value)
            for name, value in result.state.to_slots().items()
            if tracker.get_slot(name) != value
        ]


def _latest(tracker: Tracker):
    message = tracker.latest_message or {}
    intent = (message.get("intent") or {}).get("name") or ""
    entities = {
        entity.get("entity"): entity.get("value")
        for entity in message.get("entities") or []
        if entity.get("entity")
    }
    return intent, message.get("text") or "", entities


def _earlier_user_messages(tracker: Tracker, limit: int = 6):
    """(intent, text) of this session's user messages before the latest one, newest first."""
    found, seen_latest = [], False
    for event in reversed(tracker.events or []):
        if event.get("event") == "session_started" or len(found) >= limit:
            break
        if event.get("event") != "user":
            continue
        if not seen_latest:
            seen_latest = True  # the message this turn answers; handle() reads it itself
            continue
        intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name") or ""
        found.append((intent, event.get("text") or ""))
    return found


class ActionGuide(_GuideMixin, Action):
    """Start, choose channel/person, next, back, jump, restart, exit."""

    def name(self) -> Text:
        return "action_guide"

    def turn(self, data, tracker, state, wechat):
        intent, text, entities = _latest(tracker)
        earlier_whom = None
        if state.for_whom is None:  # only then can the earlier messages matter
            earlier_whom = data.whom_from_earlier(_earlier_user_messages(tracker))
        return guide.handle(data, intent, text, state, entities, wechat, earlier_whom=earlier_whom)


class ActionGuideTroubleshoot(_GuideMixin, Action):
    """'人脸识别不过' / '找不到入口' during the walk: advice for the current step."""

    def name(self) -> Text:
        return "action_guide_troubleshoot"

    def turn(self, data, tracker, state, wechat):
        intent, text, _ = _latest(tracker)
        return guide.troubleshoot(data, text, state, wechat, intent=intent)


class ActionGuideOfferResume(_GuideMixin, Action):
    """After a question answered mid-walk: '继续第4步吗？'."""

    def name(self) -> Text:
        return "action_guide_offer_resume"

    def turn(self, data, tracker, state, wechat):
        _, text, _ = _latest(tracker)
        return guide.offer_resume(data, state, text, wechat)


class ActionNotUnderstood(_GuideMixin, Action):
    """"没看懂" / "啥意思": during the walk the current step again; otherwise another way
    in (ask differently, the walk, a person)."""

    def name(self) -> Text:
        return "action_not_understood"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        if tracker.get_slot("guide_active"):
            return await super().run(dispatcher, tracker, domain)
        try:
            answer = get_knowledge().not_understood()
        except Exception:  # noqa: BLE001 - a broken knowledge file must not break the reply
            logger.exception("knowledge/ could not be loaded")
            dispatcher.utter_message(text=with_contacts(NOT_UNDERSTOOD_FALLBACK))
            return []
        send(dispatcher, answer, tracker.get_latest_input_channel())
        return []

    def turn(self, data, tracker, state, wechat):
        return guide.repeat(data, state, wechat)

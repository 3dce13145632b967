"""Custom actions for the step-by-step application guide.

The walk itself (state, wording, rendering) is in assistant/guide/ and
knowledge/guide_steps.yml; these actions only translate between Rasa and it:
slots -> GuideState, latest message -> intent/text/entities, Turn -> messages + SlotSet.
"""
import logging
import pathlib
from typing import Any, Dict, List, Mapping, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import config
from actions.reply import profile, send
from assistant import guide
from assistant.contacts import last_resort
from assistant.content import get_knowledge, load_guide

logger = logging.getLogger(__name__)

# GuideState field -> slot (domain/guide.yml)
SLOTS = {
    "channel": "guide_channel",
    "for_whom": "guide_for_whom",
    "step": "guide_step",
    "active": "guide_active",
    "awaiting": "guide_awaiting",
}


def state_from_slots(slots: Mapping[str, Any], data: guide.GuideData) -> guide.GuideState:
    channel = slots.get(SLOTS["channel"])
    whom = slots.get(SLOTS["for_whom"])
    step = slots.get(SLOTS["step"])
    state = guide.GuideState(
        channel=channel if channel in data.channels else None,
        for_whom=whom if whom in guide.WHOM_VALUES else None,
        step=int(step) if isinstance(step, (int, float)) and not isinstance(step, bool) else None,
        active=bool(slots.get(SLOTS["active"])),
        awaiting=slots.get(SLOTS["awaiting"]) or None,
    )
    if state.channel is None or state.step is None or not 1 <= state.step <= data.step_count(state.channel):
        state.step = None  # e.g. the knowledge file lost a step since the last turn
    return state


def state_to_slots(state: guide.GuideState) -> Dict[str, Any]:
    return {
        SLOTS["channel"]: state.channel,
        SLOTS["for_whom"]: state.for_whom,
        SLOTS["step"]: float(state.step) if state.step is not None else None,
        SLOTS["active"]: state.active,
        SLOTS["awaiting"]: state.awaiting,
    }


class _GuideMixin:
    """Shared run(); not an Action itself, so the SDK does not register it."""

    def __init__(self, steps_file: Optional[pathlib.Path] = None):
        self.steps_file = pathlib.Path(steps_file or config.GUIDE_STEPS_FILE)

    def turn(self, data: guide.GuideData, tracker: Tracker, state: guide.GuideState, links: bool) -> guide.Turn:
        raise NotImplementedError

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        try:
            data = load_guide(self.steps_file)
            state = state_from_slots(tracker.current_slot_values(), data)
            result = self.turn(data, tracker, state, profile(tracker).miniprogram_links)
        except Exception:  # a broken knowledge file must not break the conversation
            logger.exception("guide: cannot run %s", self.name())
            send(dispatcher, tracker, last_resort("guide_unavailable"))
            return [SlotSet(SLOTS["active"], False), SlotSet(SLOTS["awaiting"], None)]

        send(dispatcher, tracker, result.replies)
        return [
            SlotSet(name, value)
            for name, value in state_to_slots(result.state).items()
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

    def turn(self, data, tracker, state, links):
        intent, text, entities = _latest(tracker)
        earlier_whom = None
        if state.for_whom is None:  # only then can the earlier messages matter
            earlier_whom = data.whom_from_earlier(_earlier_user_messages(tracker))
        return guide.handle(data, intent, text, state, entities, links, earlier_whom=earlier_whom)


class ActionGuideTroubleshoot(_GuideMixin, Action):
    """'人脸识别不过' / '找不到入口' during the walk: advice for the current step."""

    def name(self) -> Text:
        return "action_guide_troubleshoot"

    def turn(self, data, tracker, state, links):
        intent, text, _ = _latest(tracker)
        return guide.troubleshoot(data, text, state, links, intent=intent)


class ActionGuideOfferResume(_GuideMixin, Action):
    """After a question answered mid-walk: '继续第4步吗？'."""

    def name(self) -> Text:
        return "action_guide_offer_resume"

    def turn(self, data, tracker, state, links):
        _, text, _ = _latest(tracker)
        return guide.offer_resume(data, state, text, links)


class ActionNotUnderstood(_GuideMixin, Action):
    """"没看懂" / "啥意思": during the walk the current step again; otherwise another way
    in (ask differently, the walk, a person)."""

    def name(self) -> Text:
        return "action_not_understood"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        if tracker.get_slot(SLOTS["active"]):
            return await super().run(dispatcher, tracker, domain)
        try:
            answer = get_knowledge().not_understood()
        except Exception:  # noqa: BLE001 - a broken knowledge file must not break the reply
            logger.exception("knowledge/ could not be loaded")
            send(dispatcher, tracker, last_resort("not_understood"))
            return []
        send(dispatcher, tracker, answer)
        return []

    def turn(self, data, tracker, state, links):
        return guide.repeat(data, state, links)

"""action_fallback_ladder: what to do when the NLU is unsure (intent nlu_fallback).

1st unclear message: "您是想问“A”，还是“B”？" with the two best guesses as buttons
   (titles in knowledge/intents.yml) and "都不是" (-> the human route); with no guess worth
   offering ("qwerty asdf"), a request for other words.
2nd unclear message in a row: the human route, 12393 and the service window.

Also config.yml's core fallback (the dialogue policies are unsure): then the user's
message is reverted, as Rasa's default fallback does, so the bot waits for the next one.
"""
import logging
from typing import Any, Callable, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet, UserUtteranceReverted
from rasa_sdk.executor import CollectingDispatcher

from actions.answers import shared_codes, with_conversation_code
from actions.reply import send
from assistant.contacts import last_resort
from assistant.content import get_knowledge
from core import metrics
from core.conversation_codes import CodeStore
from core.textnorm import has_content

logger = logging.getLogger(__name__)

ASKED = "asked"


def asked_on_previous_turn(events: List[Dict[Text, Any]]) -> bool:
    """True when the bot's reply to the previous user message was the '您是想问' question."""
    users = [index for index, event in enumerate(events) if event.get("event") == "user"]
    if len(users) < 2:
        return False
    for event in events[users[-2]:users[-1]]:
        if event.get("event") == "slot" and event.get("name") == "fallback_stage":
            return event.get("value") == ASKED
    return False


class ActionFallbackLadder(Action):
    def __init__(self, codes: Callable[[], CodeStore] = shared_codes):
        self.codes = codes

    def name(self) -> Text:
        return "action_fallback_ladder"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
            domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        try:
            kb = get_knowledge()
        except Exception:  # noqa: BLE001
            logger.exception("knowledge/ could not be loaded")
            send(dispatcher, tracker, last_resort("handoff"))
            return []
        intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
        # core fallback: forget the message the policies could not handle
        reverted = [] if intent == "nlu_fallback" else [UserUtteranceReverted()]
        text = (tracker.latest_message or {}).get("text") or ""
        if intent == "nlu_fallback" and not has_content(text):
            # "？？？" / "..." / a lone emoji: no guesses to offer, and not yet a reason for
            # the human route; the ladder's stage stays where it was
            send(dispatcher, tracker, kb.no_content())
            metrics.FALLBACKS.labels(kind="no_content").inc()
            # set again on this turn: the ladder looks at the previous turn only
            return [SlotSet("fallback_stage", tracker.get_slot("fallback_stage"))]
        if not asked_on_previous_turn(tracker.events):
            ranking = (tracker.latest_message or {}).get("intent_ranking") or []
            guesses = [entry.get("name") for entry in ranking if entry.get("name") != "nlu_fallback"]
            question = kb.fallback_question(guesses)
            if question is not None:
                logger.info("fallback: asking between %s", [b["payload"] for b in question.buttons])
                send(dispatcher, tracker, question)
                metrics.FALLBACKS.labels(kind="clarification").inc()
            else:
                # nothing to offer is no reason to skip the first rung: one more try in other words
                send(dispatcher, tracker, kb.rephrase())
                metrics.FALLBACKS.labels(kind="rephrase").inc()
            return reverted + [SlotSet("fallback_stage", ASKED)]
        logger.info("fallback: human route")
        # twice not understood: where the account staffs 客服 (WeChat), a person takes over
        # the code for the hotline goes with it (issue 19; actions/answers.py)
        send(dispatcher, tracker, with_conversation_code(kb.handoff(), tracker, self.codes), handover=True)
        metrics.FALLBACKS.labels(kind="handoff").inc()
        return reverted + [SlotSet("fallback_stage", None)]

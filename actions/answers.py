"""action_answer_topic: answer a knowledge question from knowledge/*.yml.

The action holds no business text: the intent picks a topic (knowledge/intents.yml),
the topic's answer comes from knowledge/topics.yml, diseases from knowledge/diseases.yml.
Disease follow-ups use the `disease` slot ("高血压能办吗" -> "那要什么材料") and the
`knowledge_topic` slot ("高血压要什么材料" -> "那糖尿病呢"). Which topic and diseases a message
is about is decided by assistant/disease_match.py, the matcher the agent console uses too.
"""
import dataclasses
import logging
from typing import Any, Callable, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.reply import send
from assistant.contacts import last_resort
from assistant.content import get_knowledge, texts
from assistant.disease_match import match_question
from assistant.knowledge import Answer
from core.conversation_codes import CodeStore

logger = logging.getLogger(__name__)

# Topics that answer a request for a person: the reply carries the hand-over marker
# (actions/reply.py), so WeChat can pass the user to 客服 when the account staffs it.
HANDOVER_TOPICS = {"human"}

_shared_codes: Optional[CodeStore] = None


def shared_codes() -> CodeStore:
    """The action server's conversation-code store (CONVERSATION_CODES_DATABASE_URL and
    CONVERSATION_CODE_KEY, set by tools/stack.py), opened on first use."""
    global _shared_codes
    if _shared_codes is None:
        _shared_codes = CodeStore.from_env(with_key=True)
    return _shared_codes


def with_conversation_code(answer: Answer, tracker: Tracker,
                           codes: Callable[[], CodeStore] = shared_codes) -> Answer:
    """The human route's answer plus a last message with the conversation's code for the
    hotline (issue 19; the console shows the conversation to an agent who is told the code).
    Without the store the answer goes out as it was: the hotline is in it anyway."""
    try:
        store = codes()
        issued = store.issue(tracker.sender_id)
        line = texts("channel_texts").render(
            "conversation_code", code=issued.code, hours=issued.hours_left(store.clock()))
    except Exception:  # noqa: BLE001 - the hand-over must never fail for want of a code
        logger.exception("no conversation code for this hand-over")
        return answer
    logger.info("conversation code %s", "given again" if issued.reused else "issued")
    return dataclasses.replace(answer, messages=[*answer.messages, line])


class ActionAnswerTopic(Action):
    def __init__(self, codes: Callable[[], CodeStore] = shared_codes):
        self.codes = codes

    def name(self) -> Text:
        return "action_answer_topic"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
            domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        try:
            kb = get_knowledge()
        except Exception:  # noqa: BLE001 - the user still gets an answer with the hotline
            logger.exception("knowledge/ could not be loaded")
            send(dispatcher, tracker, last_resort("answers_unavailable"))
            return []

        message = tracker.latest_message or {}
        intent = (message.get("intent") or {}).get("name")
        remembered = tracker.get_slot("disease") or []
        # the same matcher as the agent console (assistant/disease_match.py)
        match = match_question(
            kb, intent, message.get("text") or "", message.get("entities") or [],
            previous_topic=tracker.get_slot("knowledge_topic"),
            remembered=remembered if isinstance(remembered, list) else [remembered],
        )
        if match.topic is None:
            logger.warning("no knowledge topic for intent %s", intent)
            send(dispatcher, tracker, kb.handoff())
            return []
        events: List[Dict[Text, Any]] = [SlotSet("knowledge_topic", match.topic)]
        if match.forget_remembered:
            events.append(SlotSet("disease", None))  # don't answer for an older disease
        elif match.named_here:
            # also when only the text named it (the NLU found no entity): "那要什么材料" next
            events.append(SlotSet("disease", list(match.diseases)))
        answer = kb.answer_topic(match.topic, match.diseases, match.unknown, match.said)
        logger.info("intent=%s topic=%s diseases=%s unknown=%d", intent, match.topic, answer.diseases,
                    len(match.unknown))
        handover = match.topic in HANDOVER_TOPICS
        if handover:
            answer = with_conversation_code(answer, tracker, self.codes)
        # a knowledge answer may be rated (👍/👎, core/feedback.py); the way to a person is not
        send(dispatcher, tracker, answer, handover=handover, feedback=not handover)
        return events

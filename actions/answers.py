"""action_answer_topic: answer a knowledge question from knowledge/*.yml.

The action holds no business text: the intent picks a topic (knowledge/intents.yml),
the topic's answer comes from knowledge/topics.yml, diseases from knowledge/diseases.yml.
Disease follow-ups use the `disease` slot ("高血压能办吗" -> "那要什么材料") and the
`knowledge_topic` slot ("高血压要什么材料" -> "那糖尿病呢").
"""
import logging
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.reply import send
from assistant.contacts import last_resort
from assistant.content import get_knowledge
from assistant.knowledge import (
    DISEASE_TOPICS,
    KnowledgeBase,
    asks_for_the_list,
    disease_like_phrases,
)

logger = logging.getLogger(__name__)


def named_diseases(kb: KnowledgeBase, message: Dict[Text, Any]) -> List[str]:
    """Canonical names of the diseases in this message, in the order they were said."""
    entities = sorted(
        (entity for entity in message.get("entities") or [] if entity.get("entity") == "disease"),
        key=lambda entity: entity.get("start") or 0,
    )
    names = []
    for entity in entities:
        value = str(entity.get("value") or "")
        canonical = value if value in kb.by_name else kb.canonical(value)
        if canonical and canonical not in names:
            names.append(canonical)
    return names


def remembered_diseases(kb: KnowledgeBase, tracker: Tracker) -> List[str]:
    value = tracker.get_slot("disease") or []
    values = value if isinstance(value, list) else [value]
    names = []
    for item in values:
        canonical = str(item) if str(item) in kb.by_name else kb.canonical(str(item))
        if canonical and canonical not in names:
            names.append(canonical)
    return names


class ActionAnswerTopic(Action):
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
        topic = kb.topic_for_intent(intent)
        if topic is None:
            logger.warning("no knowledge topic for intent %s", intent)
            send(dispatcher, tracker, kb.handoff())
            return []
        previous = tracker.get_slot("knowledge_topic")
        if intent == "inform_disease" and previous in DISEASE_TOPICS:
            topic = previous  # "那糖尿病呢" continues the question asked before

        events: List[Dict[Text, Any]] = [SlotSet("knowledge_topic", topic)]
        diseases: List[str] = []
        unknown: List[str] = []
        if topic in DISEASE_TOPICS:
            diseases = named_diseases(kb, message)
            if not diseases:
                text = message.get("text") or ""
                unknown = [p for p in disease_like_phrases(text) if not kb.recognise_diseases(p)]
                if unknown:
                    events.append(SlotSet("disease", None))  # don't answer for an older disease
                elif topic == "disease_coverage" and asks_for_the_list(text):
                    pass  # "哪些病能办": the catalogue, even after an earlier disease
                else:
                    diseases = remembered_diseases(kb, tracker)
        answer = kb.answer_topic(topic, diseases, unknown)
        logger.info("intent=%s topic=%s diseases=%s unknown=%d", intent, topic, answer.diseases, len(unknown))
        send(dispatcher, tracker, answer)
        return events

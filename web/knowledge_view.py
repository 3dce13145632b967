"""Knowledge entries in agent form: terse text, the entry's source and its verified flag.

The text is what the bot would answer for the predicted intent (assistant.knowledge, the
same files the action server reads), minus the caveat line the bot appends for unverified
entries: the console shows the verified flag next to the text instead.
"""
import logging
from typing import Any, Dict, List, Optional

from assistant.content import get_knowledge
from assistant.knowledge import KnowledgeError

logger = logging.getLogger("web.knowledge_view")


def entry_for(intent: Optional[str], entities: List[Dict[str, Any]], text: str = "") -> Optional[Dict[str, Any]]:
    """{"title", "text", "source", "source_ids", "verified", "topic"} or None (no entry)."""
    if not intent:
        return None
    try:
        kb = get_knowledge()
    except Exception:  # missing or broken knowledge files: show the bot's reply instead
        logger.exception("knowledge base unavailable")
        return None
    topic_id = kb.topic_for_intent(intent)
    topic = kb.topics.get(topic_id) if topic_id else None
    if not topic:
        return None
    diseases = []
    for entity in entities or []:
        if isinstance(entity, dict) and entity.get("entity") == "disease":
            name = kb.canonical(str(entity.get("value") or ""))
            if name and name not in diseases:
                diseases.append(name)
    if not diseases and text:
        diseases = kb.recognise_diseases(text)
    try:
        answer = kb.answer_topic(topic_id, diseases)
    except (KnowledgeError, KeyError, ValueError):
        logger.exception("cannot render topic %s", topic_id)
        return None
    lines = "\n".join(answer.messages).split("\n")
    caveat = kb.caveat()
    text_out = "\n".join(line for line in lines if line.strip() != caveat).strip()

    known = [kb.by_name[name] for name in answer.diseases if name in kb.by_name]
    source_ids = list(dict.fromkeys([topic.get("source"), *(d.source for d in known)]))
    titles = []
    for source_id in source_ids:
        source = kb.sources.get(source_id) or {}
        titles.append(str(source.get("title") or source_id))
    verified = bool(topic.get("verified")) and all(bool(d.verified) for d in known)
    return {
        "topic": topic_id,
        "title": kb.title_for_intent(intent) or topic_id,
        "text": text_out,
        "source": "；".join(titles),
        "source_ids": source_ids,
        "verified": verified,
        "diseases": answer.diseases,
    }

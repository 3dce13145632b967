"""Knowledge entries in agent form: terse text, the entry's source and its verified flag.

The text is what the bot would answer for the predicted intent (assistant.knowledge, the
same files the action server reads), minus the caveat line the bot appends for unverified
entries: the console shows the verified flag next to the text instead. Which diseases a
question is about is decided by the bot's own matcher (assistant/disease_match.py), so
the agent and the bot answer the same words alike; the console has no conversation, so
nothing is remembered from an earlier question.
"""
import logging
from typing import Any, Dict, List, Optional

from assistant.content import get_knowledge
from assistant.disease_match import match_question
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
    match = match_question(kb, intent, text, entities or [])
    topic_id = match.topic
    topic = kb.topics.get(topic_id) if topic_id else None
    if not topic:
        return None
    try:
        answer = kb.answer_topic(topic_id, match.diseases, match.unknown, match.said)
    except (KnowledgeError, KeyError, ValueError):
        logger.exception("cannot render topic %s", topic_id)
        return None
    lines = "\n".join(answer.messages).split("\n")
    # either caveat (the agent sees the 已核实/未核实 badge instead)
    caveats = {kb.caveat(), kb.caveat(outside_nanchong=True)}
    text_out = "\n".join(line for line in lines if line.strip() not in caveats).strip()

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
        "unknown": answer.unknown,
    }

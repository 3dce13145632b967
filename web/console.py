"""What the agent console's search box does, without HTTP.

One box, two kinds of query:
- an application number (after the same normalisation the bot uses) -> the progress
  service's agent mode: full status and history, no ID check, audit-logged there;
- anything else is a question -> Rasa's NLU parse gives the intent, and the knowledge
  entry for that intent is shown in agent form (terse text + source + verified flag).
  If no entry matches (or the parse API is off), the bot's own reply is shown, marked
  as not verified.
Every call has a timeout; when a service does not answer the agent sees a short
message and the hotline fallback instead of an error.
"""
import logging
from typing import Any, Dict, Optional

from assistant.content import texts
from core.agent_tokens import issue_agent_token
from core.formats import is_plausible_application_no, normalize_application_no
from core.progress_client import ProgressClient  # the one client for the progress service
from web import knowledge_view
from web.agents import mask
from web.clients import RasaClient, describe

logger = logging.getLogger("web.console")

MAX_QUERY_CHARS = 500


def say(name: str) -> str:
    """A console message from knowledge/channel_texts.yml (console_<name>)."""
    return texts("channel_texts").render(f"console_{name}")


class Console:
    def __init__(self, rasa: RasaClient, progress: ProgressClient, agent_secret: str,
                 token_ttl_seconds: int = 600):
        self.rasa = rasa
        self.progress = progress
        self.agent_secret = agent_secret
        self.token_ttl_seconds = token_ttl_seconds

    def looks_like_application_no(self, query: str) -> Optional[str]:
        number = normalize_application_no(query)
        return number if is_plausible_application_no(number) else None

    async def search(self, agent: str, query: str, audit) -> Dict[str, Any]:
        """`audit(kind, subject, outcome)` records the lookup in the console's trail."""
        query = (query or "").strip()[:MAX_QUERY_CHARS]
        if not query:
            return {"kind": "empty", "query": query, "message": say("empty_query")}
        number = self.looks_like_application_no(query)
        if number:
            answer = await self.application(agent, number)
            audit("application", mask(number), answer.get("outcome", answer["kind"]))
        else:
            answer = await self.question(query)
            audit("question", "", answer.get("outcome", answer["kind"]))
        answer["query"] = query
        return answer

    async def application(self, agent: str, number: str) -> Dict[str, Any]:
        if not self.agent_secret:
            return {"kind": "unavailable", "outcome": "no_agent_secret",
                    "message": say("no_agent_secret") + say("unavailable")}
        token = issue_agent_token(agent, self.agent_secret, ttl_seconds=self.token_ttl_seconds)
        result = await self.progress.agent_lookup_async(number, token)
        logger.info("agent %s application lookup %s: %s", agent, mask(number), result.outcome)
        if result.outcome == "not_found":
            return {"kind": "application", "found": False, "number": number, "outcome": "not_found",
                    "message": say("not_found")}
        if result.outcome != "found":
            return {"kind": "unavailable", "outcome": "unavailable", "message": say("lookup_prefix") + say("unavailable")}
        application = {key: value for key, value in result.application.items() if key != "mode"}
        return {"kind": "application", "found": True, "number": number, "outcome": "found",
                "application": application}

    async def question(self, text: str) -> Dict[str, Any]:
        parsed = await self.rasa.parse(text)
        intent, confidence, entities = None, None, []
        if parsed.ok:
            intent_data = parsed.data.get("intent") or {}
            intent, confidence = intent_data.get("name"), intent_data.get("confidence")
            entities = parsed.data.get("entities") or []
            entry = knowledge_view.entry_for(intent, entities, text)
            if entry:
                return {"kind": "answer", "outcome": "knowledge", "intent": intent,
                        "confidence": confidence, **entry}
        reply = await self.rasa.reply(text)
        logger.info("agent question: parse=%s intent=%s reply=%s", describe(parsed), intent, describe(reply))
        if reply.ok:
            texts = [m.get("text") for m in reply.data if isinstance(m, dict) and m.get("text")]
            if texts:
                return {"kind": "answer", "outcome": "bot_reply", "intent": intent,
                        "confidence": confidence, "title": say("bot_reply_title"),
                        "text": "\n".join(texts), "source": say("bot_reply_source"),
                        "verified": False}
        return {"kind": "unavailable", "outcome": "unavailable", "message": say("question_prefix") + say("unavailable")}

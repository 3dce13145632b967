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
import datetime as dt
import logging
import re
from typing import Any, Dict, List, Optional

from assistant.content import texts
from core.agent_tokens import issue_agent_token
from core.formats import CHINA_TZ, is_plausible_application_no, normalize_application_no
from core.privacy import mask_application_no, mask_id_card_numbers
from core.progress_client import ProgressClient  # the one client for the progress service
from web import knowledge_view
from web.agents import mask
from web.clients import RasaClient, describe

logger = logging.getLogger("web.console")

MAX_QUERY_CHARS = 500
# the conversation view (issue 19): the last turns an agent sees for a conversation code
MAX_TURNS = 30
MAX_TURN_CHARS = 2000
# the lookup action's name in the tracker (actions/progress.py); its replies are redacted
LOOKUP_ACTION = "action_check_progress"
# 6+ characters with a digit: an application, mobile or other personal number (the widget
# masks the same); the hotline (5 digits) and short numbers stay readable
_LONG_NUMBER = re.compile(r"[A-Za-z]{0,4}\d[\dA-Za-z\-]{5,}")


def mask_turn_text(text: str) -> str:
    """What the console shows of a stored message: ID numbers (already masked at rest,
    again here) and any other long number keep only their ends."""
    text = mask_id_card_numbers(text[:MAX_TURN_CHARS])
    return _LONG_NUMBER.sub(lambda match: mask_application_no(match.group(0)), text)


def _moment(timestamp: Any) -> str:
    try:
        return dt.datetime.fromtimestamp(float(timestamp), CHINA_TZ).strftime("%m-%d %H:%M")
    except (TypeError, ValueError, OverflowError, OSError):
        return ""


def conversation_turns(events: List[Any], max_turns: int = MAX_TURNS) -> Dict[str, Any]:
    """From a Rasa tracker's events: the texts of the last `max_turns` turns (a user message
    and the bot's replies to it), masked; the channel; whether a progress lookup ran."""
    events = [event for event in events if isinstance(event, dict)]
    users = [index for index, event in enumerate(events) if event.get("event") == "user"]
    start = users[-max_turns] if len(users) > max_turns else 0
    turns = []
    for event in events[start:]:
        kind = event.get("event")
        text = event.get("text")
        if kind in ("user", "bot") and isinstance(text, str) and text.strip():
            turns.append({"who": kind, "text": mask_turn_text(text), "at": _moment(event.get("timestamp"))})
    channel = next((event.get("input_channel") for event in reversed(events)
                    if event.get("event") == "user" and isinstance(event.get("input_channel"), str)), "")
    lookup = any(event.get("event") == "action" and event.get("name") == LOOKUP_ACTION for event in events)
    return {"turns": turns, "channel": channel, "lookup": lookup}


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

    async def conversation(self, sender_id: str) -> Dict[str, Any]:
        """The conversation behind a valid code, for the agent on the phone with its person."""
        result = await self.rasa.tracker(sender_id)
        if not result.ok:
            logger.info("conversation view: tracker %s", describe(result))
            return {"kind": "unavailable", "outcome": "unavailable",
                    "message": say("code_prefix") + say("unavailable")}
        view = conversation_turns(result.data.get("events") or [])
        answer: Dict[str, Any] = {"kind": "conversation", "outcome": "shown", **view}
        if view["lookup"]:
            answer["lookup_note"] = say("code_lookup")
        if not view["turns"]:
            answer["message"] = say("code_no_turns")
        return answer

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

"""Recording a 👍/👎 (issue 19): one user event appended to the conversation in the
tracker store, through Rasa's agent, without a bot run (core/feedback.py says why and
what may be rated). Used by the widget's channel (channels/web.py: POST
/webhooks/web/feedback) and by WeChat's numbered "有帮助吗？" lines (channels/wechat.py).

The event is written under the conversation's lock (Rasa's lock store, as
`Agent.handle_message` takes it), so it never interleaves with a turn being processed.
"""
import logging
import time
from typing import Any, Dict, Optional

from rasa.shared.core.events import UserUttered

from core.feedback import ALLOWED, rating_allowed, rating_metadata

logger = logging.getLogger(__name__)

RECORDED = "recorded"


def _session_minutes(agent: Any) -> Optional[float]:
    domain = getattr(agent, "domain", None)
    config = getattr(domain, "session_config", None)
    if config is None or not config.are_sessions_enabled():
        return None
    return float(config.session_expiration_time)


async def record_rating(agent: Any, sender_id: str, input_channel: str, rating: str,
                        reason: str = "", metadata: Optional[Dict[str, Any]] = None,
                        now: Optional[float] = None) -> str:
    """Appends the rating of the conversation's latest answer; returns RECORDED or why not
    (core.feedback: NOTHING_TO_RATE, ALREADY_RATED, SESSION_EXPIRED). `metadata` is the
    channel's own (`client`), never the client's. Raises when the store fails."""
    now = time.time() if now is None else now
    store = agent.tracker_store
    async with agent.lock_store.lock(sender_id):
        tracker = await store.retrieve(sender_id)
        if tracker is None:
            return rating_allowed([], rating, bool(reason), now, None)
        events = [event.as_dict() for event in tracker.events]
        verdict = rating_allowed(events, rating, bool(reason), now, _session_minutes(agent))
        if verdict != ALLOWED:
            logger.info("feedback not recorded: %s", verdict)
            return verdict
        tracker.update(UserUttered(
            text="", intent={}, entities=[], timestamp=now, input_channel=input_channel,
            metadata={**(metadata or {}), **rating_metadata(rating, reason)},
        ))
        await store.save(tracker)
    logger.info("feedback recorded: %s%s", rating, " with a reason" if reason else "")
    return RECORDED

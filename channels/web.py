"""Rasa input channel for the website help widget: POST /webhooks/web/webhook.

Same request and reply as Rasa's REST channel ({"sender", "message"} in, a list of
{"text", "buttons", ...} out), but:
- the conversation's input channel is always `web` (actions can render for the widget);
- bad requests get a 400 with a short reason instead of an exception in Rasa's log;
- the sender id must have the widget's own form (`web-` + a random hex UUID) or the
  agent console's (`agent-console-` + 16 hex digits); anything else (a WeChat OpenID,
  say) is refused, so nobody can post into another channel's conversation;
- what every channel does on the way in (channels/inbound.py, core/inbound.py): a full
  ID-card number is masked to its last 4 characters before the message reaches Rasa (so
  it never lands in the tracker store), the text is cut to 500 characters after masking,
  typed text is never a "/intent" command (only a button the bot offered sends one), and
  a body over 64 KB is refused (413);
- the client's `metadata` is dropped: the message carries only the server's (who is
  asking, as a hash of the client address).

Feedback (issue 19, core/feedback.py, docs/web.md "Feedback"): a knowledge answer's last
message carries `"feedback": {...}` with the rating's wording (knowledge/channel_texts.yml
feedback_*), and POST /webhooks/web/feedback {"sender", "rating": "positive"|"negative",
"reason"?} records the visitor's 👍/👎 on the conversation's latest answer as one event in
the tracker store (channels/feedback.py), without running the bot: 200 {"status":
"recorded"}, 409 {"error": why not} (nothing to rate, already rated, session expired).

Enabled in credentials.yml with `channels.web.WebInput:`. No sanic app of the web
console is imported here: Rasa loads this module in its own process.
"""
import logging
import re
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from assistant.content import texts
from channels.feedback import RECORDED, record_rating
from channels.inbound import (
    OFFERED, TooLarge, client_address, handle, offered_to, read_json, server_metadata,
)
from core.feedback import MAX_REASON_CHARS, OFFER, OFFER_KEY, RATINGS, reason_text
from core.inbound import MAX_TEXT_CHARS, incoming_text

logger = logging.getLogger(__name__)

# web-<uuid4> (or web-<32 hex>) from widget.js; agent-console-<16 hex> from web/clients.py
SENDER_PATTERN = re.compile(r"^(?:web-[0-9a-f-]{8,64}|agent-console-[0-9a-f]{16})$")
MAX_MESSAGE_CHARS = MAX_TEXT_CHARS


# The widget's wording of a rating, knowledge/channel_texts.yml feedback_<key>.
RATING_TEXTS = ("ask", "up", "down", "thanks", "reason_ask", "reason_other", "reason_send",
                "reason_done")
RATING_REASONS = ("reason_unanswered", "reason_unclear", "reason_wrong")


def rating_wording() -> Dict[str, Any]:
    """What the widget shows for a rating: every text from knowledge/, none in widget.js."""
    wording = texts("channel_texts")
    shown: Dict[str, Any] = {key: wording.render(f"feedback_{key}") for key in RATING_TEXTS}
    shown["reasons"] = [wording.render(f"feedback_{key}") for key in RATING_REASONS]
    shown["max_reason_chars"] = MAX_REASON_CHARS
    return shown


class WebOutputChannel(CollectingOutputChannel):
    """Collects replies; its name lets responses carry `channel: web` variations. A message
    the action marked as rateable ({"feedback": "offer"}, core/feedback.py) gets the
    rating's wording under `feedback`; the widget draws 👍/👎 under it."""

    @classmethod
    def name(cls) -> Text:
        return "web"

    def _mark(self, before: int, kwargs: Dict[str, Any]) -> None:
        if kwargs.get(OFFER_KEY) == OFFER and len(self.messages) > before:
            self.messages[-1]["feedback"] = rating_wording()

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        before = len(self.messages)
        await super().send_text_message(recipient_id, text, **kwargs)
        self._mark(before, kwargs)

    async def send_text_with_buttons(self, recipient_id: Text, text: Text, buttons: List[Dict[Text, Any]],
                                     **kwargs: Any) -> None:
        before = len(self.messages)
        await super().send_text_with_buttons(recipient_id, text, buttons, **kwargs)
        self._mark(before, kwargs)


def parse_request(body: Any, offered: Optional[frozenset] = None) -> (Optional[Dict[str, Any]], Optional[str]):
    """Returns ({"sender", "message", "metadata"}, None) or (None, reason). The message is
    as it may reach Rasa (core.inbound.incoming_text: a button this conversation was
    offered, or typed text masked before the cut, so a cut never leaves 17 unmasked digits
    behind); the client's metadata is dropped (None)."""
    if not isinstance(body, dict):
        return None, "body must be a JSON object"
    sender, message = body.get("sender"), body.get("message")
    if not isinstance(sender, str) or not SENDER_PATTERN.match(sender):
        return None, "sender must be a widget session id (web-<hex uuid>)"
    if not isinstance(message, str) or not message.strip():
        return None, "message must be a non-empty string"
    if offered is None:
        offered = OFFERED.offered(f"{WebInput.name()}:{sender}")
    return {"sender": sender, "message": incoming_text(message, offered), "metadata": None}, None


def parse_feedback(body: Any) -> (Optional[Dict[str, Any]], Optional[str]):
    """Returns ({"sender", "rating", "reason"}, None) or (None, reason). The reason is
    typed text (core.feedback.reason_text: masked, at most MAX_REASON_CHARS), only for a 👎."""
    if not isinstance(body, dict):
        return None, "body must be a JSON object"
    sender, rating, reason = body.get("sender"), body.get("rating"), body.get("reason", "")
    if not isinstance(sender, str) or not SENDER_PATTERN.match(sender) or sender.startswith("agent-console-"):
        return None, "sender must be a widget session id (web-<hex uuid>)"
    if rating not in RATINGS:
        return None, "rating must be positive or negative"
    if reason is None:
        reason = ""
    if not isinstance(reason, str):
        return None, "reason must be a string"
    reason = reason_text(reason) if rating == "negative" else ""
    return {"sender": sender, "rating": rating, "reason": reason}, None


class WebInput(RestInput):
    @classmethod
    def name(cls) -> Text:
        return "web"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[None]]) -> Blueprint:
        web_webhook = Blueprint("web_widget_webhook", __name__)

        @web_webhook.route("/", methods=["GET"])
        async def health(_request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @web_webhook.route("/webhook", methods=["POST"], stream=True)
        async def receive(request: Request) -> HTTPResponse:
            try:
                body = await read_json(request)
            except TooLarge:
                return response.json({"error": "body too large"}, status=413)
            offered = None
            if isinstance(body, dict) and isinstance(body.get("sender"), str) \
                    and SENDER_PATTERN.match(body["sender"]):
                # a tapped button the other replica offered: known from the tracker store
                offered = await offered_to(f"{self.name()}:{body['sender']}", body["sender"],
                                           body.get("message"), request)
            parsed, reason = parse_request(body, offered)
            if parsed is None:
                return response.json({"error": reason}, status=400)
            collector = WebOutputChannel()
            metadata = server_metadata("ip", client_address(request))
            try:
                # typed text or a button the bot offered (channels.inbound.handle)
                await handle(on_new_message, UserMessage(
                    parsed["message"], collector, parsed["sender"],
                    input_channel=self.name(), metadata=metadata,
                ), metadata, request, offered)
            except Exception:  # the widget shows its own fallback with 12393
                logger.exception("web channel: message handling failed")
                return response.json({"error": "message handling failed"}, status=503)
            return response.json(collector.messages)

        @web_webhook.route("/feedback", methods=["POST"], stream=True)
        async def feedback(request: Request) -> HTTPResponse:
            try:
                body = await read_json(request)
            except TooLarge:
                return response.json({"error": "body too large"}, status=413)
            parsed, reason = parse_feedback(body)
            if parsed is None:
                return response.json({"error": reason}, status=400)
            agent = getattr(request.app.ctx, "agent", None)
            if agent is None or getattr(agent, "tracker_store", None) is None:
                return response.json({"error": "not ready"}, status=503)
            try:
                outcome = await record_rating(
                    agent, parsed["sender"], self.name(), parsed["rating"], parsed["reason"],
                    server_metadata("ip", client_address(request)))
            except Exception:  # the widget has said thanks already; nothing else to do
                logger.exception("web channel: feedback could not be stored")
                return response.json({"error": "feedback not stored"}, status=503)
            if outcome != RECORDED:
                return response.json({"error": outcome}, status=409)
            return response.json({"status": outcome})

        return web_webhook

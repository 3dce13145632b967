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

Enabled in credentials.yml with `channels.web.WebInput:`. No sanic app of the web
console is imported here: Rasa loads this module in its own process.
"""
import json
import logging
import re
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from channels.inbound import OFFERED, client_address, handle, read_body, server_metadata
from core.inbound import MAX_TEXT_CHARS, incoming_text

logger = logging.getLogger(__name__)

# web-<uuid4> (or web-<32 hex>) from widget.js; agent-console-<16 hex> from web/clients.py
SENDER_PATTERN = re.compile(r"^(?:web-[0-9a-f-]{8,64}|agent-console-[0-9a-f]{16})$")
MAX_MESSAGE_CHARS = MAX_TEXT_CHARS


class WebOutputChannel(CollectingOutputChannel):
    """Collects replies; its name lets responses carry `channel: web` variations."""

    @classmethod
    def name(cls) -> Text:
        return "web"


def parse_request(body: Any) -> (Optional[Dict[str, Any]], Optional[str]):
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
    offered = OFFERED.offered(f"{WebInput.name()}:{sender}")
    return {"sender": sender, "message": incoming_text(message, offered), "metadata": None}, None


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
            data = await read_body(request)
            if data is None:
                return response.json({"error": "body too large"}, status=413)
            try:
                body = json.loads(data)
            except (ValueError, RecursionError):  # invalid JSON, undecodable bytes, absurd nesting
                body = None
            parsed, reason = parse_request(body)
            if parsed is None:
                return response.json({"error": reason}, status=400)
            collector = WebOutputChannel()
            metadata = server_metadata("ip", client_address(request))
            try:
                # typed text or a button the bot offered (channels.inbound.handle)
                await handle(on_new_message, UserMessage(
                    parsed["message"], collector, parsed["sender"],
                    input_channel=self.name(), metadata=metadata,
                ), metadata)
            except Exception:  # the widget shows its own fallback with 12393
                logger.exception("web channel: message handling failed")
                return response.json({"error": "message handling failed"}, status=503)
            return response.json(collector.messages)

        return web_webhook

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

Status changes (issue 19, docs/web.md "Status changes"): after a found lookup the action
sends the marker {"status_watch": "offer"}; on its way out (WebOutputChannel) it becomes
{"status_watch": {"token": <random>}} for the widget, so the token never reaches the
tracker store. POST /webhooks/web/status-changes {"tokens": [...≤3], "cancel"?: true}
answers {"messages": [{"text"}], "forget": [tokens]} (core/status_subscriptions.py); a
typed "取消通知" is answered here, without a bot run, with {"status_watch": {"clear": true}}.
POST /webhooks/web/status-events takes the progress system's signed event
(channels/status_events.py; internal: nginx does not expose it).

Enabled in credentials.yml with `channels.web.WebInput:`. No sanic app of the web
console is imported here: Rasa loads this module in its own process.
"""
import json
import logging
import re
import unicodedata
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from assistant.content import texts
from channels.config import StatusEventSettings
from channels.feedback import RECORDED, record_rating
from channels.health import readiness, start_metrics
from channels.inbound import (
    OFFERED, TooLarge, client_address, handle, offered_to, read_json, server_metadata,
)
from channels.inbound import read_body
from channels.status_events import StoreGetter, in_thread, lazy_store, receive_status_event
from core.feedback import MAX_REASON_CHARS, OFFER, OFFER_KEY, RATINGS, reason_text
from core.formats import STATUS_LABELS
from core.inbound import MAX_TEXT_CHARS, incoming_text
from core.privacy import mask_application_no
from core.status_subscriptions import (
    CANCEL_COMMANDS, MAX_WATCHES_PER_BROWSER, WATCH_KEY, WATCH_OFFER, SubscriptionStore,
    sane_watch_token,
)

logger = logging.getLogger(__name__)

# web-<uuid4> (or web-<32 hex>) from widget.js; agent-console-<16 hex> from web/clients.py
SENDER_PATTERN = re.compile(r"^(?:web-[0-9a-f-]{8,64}|agent-console-[0-9a-f]{16})$")
MAX_MESSAGE_CHARS = MAX_TEXT_CHARS
MAX_STATUS_CHANGES_BODY_BYTES = 1024  # three tokens and a flag, with room to spare


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
    rating's wording under `feedback`; the widget draws 👍/👎 under it. The marker
    {"status_watch": "offer"} becomes a watch token here (`watches`: the store)."""

    def __init__(self, watches: Optional[StoreGetter] = None) -> None:
        super().__init__()
        self.watches = watches

    async def send_custom_json(self, recipient_id: Text, json_message: Dict[Text, Any],
                               **kwargs: Any) -> None:
        if isinstance(json_message, dict) and json_message.get(WATCH_KEY) == WATCH_OFFER:
            # a new dict: the one passed in is the tracker's event data, which keeps the marker
            token = await self._start_watch(recipient_id)
            if token:
                self.messages.append({"recipient_id": recipient_id,
                                      "custom": {WATCH_KEY: {"token": token}}})
            return
        await super().send_custom_json(recipient_id, json_message, **kwargs)

    async def _start_watch(self, recipient_id: Text) -> Optional[str]:
        if self.watches is None or not str(recipient_id).startswith("web-"):
            return None
        try:
            return await in_thread((await self.watches()).start_watch, recipient_id)
        except Exception:  # noqa: BLE001 - the lookup's answer stands without a watch
            logger.exception("web channel: status watch not started")
            return None

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


def _typed_command(text: Text) -> Text:
    return unicodedata.normalize("NFKC", text or "").strip().rstrip("。.!！").strip()


def parse_status_changes(body: Any) -> (Optional[Dict[str, Any]], Optional[str]):
    """Returns ({"tokens", "cancel"}, None) or (None, reason): at most
    MAX_WATCHES_PER_BROWSER tokens, each a sane one (core.status_subscriptions)."""
    if not isinstance(body, dict):
        return None, "body must be a JSON object"
    tokens, cancel = body.get("tokens"), body.get("cancel", False)
    if not isinstance(tokens, list) or len(tokens) > MAX_WATCHES_PER_BROWSER:
        return None, f"tokens must be a list of at most {MAX_WATCHES_PER_BROWSER}"
    if not all(sane_watch_token(token) for token in tokens):
        return None, "tokens must be the widget's watch tokens"
    if not isinstance(cancel, bool):
        return None, "cancel must be true or false"
    return {"tokens": list(dict.fromkeys(tokens)), "cancel": cancel}, None


def status_change_line(application_no: str, status: str) -> str:
    """What the widget shows for one change: masked number, status label, how to see more."""
    return texts("channel_texts").render(
        "status_changed_web", number=mask_application_no(application_no),
        status_label=STATUS_LABELS.get(status, status))


class WebInput(RestInput):
    @classmethod
    def name(cls) -> Text:
        return "web"

    def __init__(self, events: Optional[StatusEventSettings] = None,
                 store_factory: Callable[[], SubscriptionStore] = SubscriptionStore.from_env) -> None:
        # PROGRESS_EVENTS_SECRET (channels/config.py); STATUS_SUBSCRIPTIONS_DATABASE_URL,
        # shared with the action server (offers) and the WeChat channel
        self.events = events or StatusEventSettings.from_env()
        self.watches = lazy_store(store_factory)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[None]]) -> Blueprint:
        web_webhook = Blueprint("web_widget_webhook", __name__)
        start_metrics()  # the Rasa process's metrics (RASA_METRICS_PORT; channels/health.py)

        @web_webhook.route("/", methods=["GET"])
        async def health(_request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @web_webhook.route("/ready", methods=["GET"])
        async def ready(request: Request) -> HTTPResponse:
            """Readiness of this Rasa process: model, tracker store, lock store."""
            status, body = await readiness(request.app)
            return response.json(body, status=status)

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
            if _typed_command(parsed["message"]) in CANCEL_COMMANDS \
                    and parsed["sender"].startswith("web-"):
                # answered here, like WeChat: the widget then drops its tokens (and asks
                # the server to delete them, POST /status-changes with cancel)
                return response.json([
                    {"recipient_id": parsed["sender"],
                     "text": texts("channel_texts").render("status_watch_cancelled")},
                    {"recipient_id": parsed["sender"], "custom": {WATCH_KEY: {"clear": True}}}])
            collector = WebOutputChannel(self.watches)
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

        @web_webhook.route("/status-changes", methods=["POST"], stream=True)
        async def status_changes(request: Request) -> HTTPResponse:
            """A returning visitor's watch tokens: the changes not yet seen (each once), the
            tokens to forget. With "cancel": the watches end and every token is forgotten."""
            data = await read_body(request, MAX_STATUS_CHANGES_BODY_BYTES)
            if data is None:
                return response.json({"error": "body too large"}, status=400)
            try:
                body = json.loads(data)
            except (ValueError, RecursionError):
                body = None
            parsed, reason = parse_status_changes(body)
            if parsed is None:
                return response.json({"error": reason}, status=400)
            tokens = parsed["tokens"]
            if not tokens:
                return response.json({"messages": [], "forget": []})
            try:
                store = await self.watches()
                if parsed["cancel"]:
                    removed = await in_thread(store.forget_watches, tokens)
                    logger.info("web channel: %d status watch(es) cancelled", removed)
                    return response.json({"messages": [], "forget": tokens})
                changes, forget = await in_thread(store.watch_changes, tokens)
            except Exception:  # the widget tries again on the next visit
                logger.exception("web channel: status watches unavailable")
                return response.json({"error": "unavailable"}, status=503)
            if changes:
                logger.info("web channel: %d status change(s) shown to a returning visitor",
                            len(changes))
            return response.json({
                "messages": [{"text": status_change_line(change.application_no, change.status)}
                             for change in changes],
                "forget": forget})

        @web_webhook.route("/status-events", methods=["POST"], stream=True)
        async def status_event(request: Request) -> HTTPResponse:
            """The progress system's signed status change when the WeChat channel is off
            (else PROGRESS_EVENTS_URL is WeChat's route, which records it too): internal,
            never behind nginx."""
            answer, _event = await receive_status_event(
                request, self.events.events_secret, self.watches, self.name())
            return answer

        return web_webhook

"""Rasa's own REST and socket.io channels, with what every one of our channels does on
the way in (channels/inbound.py, docs/security.md).

People paste their whole 身份证号 when the bot asks for the last 4 characters. The
built-in channels would pass it to Rasa unchanged, and the tracker store (SQLite or
PostgreSQL) and Rasa's own error logs (the REST channel logs the text when a turn fails
or times out) would keep it. These subclasses keep the channels' names, URLs and wire
format (`/webhooks/rest/webhook`, socket.io at `/socket.io`), and before Rasa sees a
message they
- mask ID numbers, cut the text to core.inbound.MAX_TEXT_CHARS and never let typed text
  be a "/intent" command (only buttons the bot offered may send one);
- drop the client's `metadata` and `input_channel` and set the server's own (who is
  asking: a hash of the client address);
- refuse (400) a REST body that is not {"sender": "<id>", "message": "<text>"} and (413)
  one over channels.inbound.MAX_BODY_BYTES, instead of an exception (500);
- keep each client-chosen sender id in a namespace of its channel: the conversation of
  REST sender "abc" is "rest:abc", of socket.io session "xyz" "sio:xyz", so no client can
  name (continue, or use up the lookups of) a WeChat OpenID's or a widget visitor's
  conversation, nor one of the other channel. Replies still go to, and name, the id the
  client sent (`recipient_id`, the socket.io room).

Enabled in credentials.yml under their module paths instead of `rest:`/`socketio:`.
"""
import asyncio
import logging
import re
from typing import Any, Awaitable, Callable, Dict, Mapping, Optional, Text

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from rasa.core.channels.socketio import SocketIOInput, SocketIOOutput
from sanic import Blueprint, response
from sanic.request import Request

from channels.inbound import TooLarge, client_address, handle, read_json, server_metadata

logger = logging.getLogger(__name__)

MAX_SENDER_CHARS = 128
# Conversation ids of the channels whose clients choose the sender: never the form of a
# WeChat OpenID ([A-Za-z0-9_-]) or a widget id (web-…, agent-console-…), which have no ":".
REST_NAMESPACE = "rest:"
SOCKETIO_NAMESPACE = "sio:"


def _storable(text: str) -> bool:
    try:
        text.encode("utf-8")  # a lone surrogate from JSON ("\ud800") is not
        return True
    except UnicodeEncodeError:
        return False


def parse_rest_body(body: Any) -> (Optional[Dict[str, str]], Optional[str]):
    """({"sender", "message"}, None) or (None, reason) for a REST request body."""
    if not isinstance(body, dict) or not isinstance(body.get("message"), str):
        return None, 'body must be a JSON object: {"sender": "...", "message": "<text>"}'
    sender = body.get("sender")
    if sender is None:
        sender = "default"  # what Rasa's REST channel does
    if (not isinstance(sender, str) or not sender.strip() or len(sender) > MAX_SENDER_CHARS
            or not _storable(sender)):
        return None, f"sender must be a string of 1 to {MAX_SENDER_CHARS} characters"
    return {"sender": sender, "message": body["message"]}, None


class MaskedRestInput(RestInput):
    def _extract_input_channel(self, req: Request) -> Text:
        return self.name()  # never the client's choice (it could claim "wechat")

    def get_metadata(self, request: Request) -> Optional[Dict[Text, Any]]:
        return server_metadata("ip", client_address(request))  # never the client's

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint(f"custom_webhook_{type(self).__name__}", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(_request: Request):
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"], stream=True)
        async def receive(request: Request):
            try:
                body = await read_json(request)
            except TooLarge:
                return response.json({"error": "body too large"}, status=413)
            parsed, reason = parse_rest_body(body)
            if parsed is None:
                return response.json({"error": reason}, status=400)
            sender, text = parsed["sender"], parsed["message"]
            metadata = self.get_metadata(request)

            conversation = REST_NAMESPACE + sender

            async def on_message(message: UserMessage) -> Any:
                return await handle(on_new_message, message, metadata, request, reply_to=sender)

            if request.args.get("stream", "").lower() == "true":  # Rasa's streaming option
                return response.stream(
                    self.stream_response(on_message, text, conversation, self.name(), metadata),
                    content_type="text/event-stream")
            collector = CollectingOutputChannel()
            try:
                await on_message(UserMessage(text, collector, conversation, input_channel=self.name(),
                                             metadata=metadata))
            except asyncio.CancelledError:
                logger.error("rest: message handling timed out")
            except Exception:  # noqa: BLE001 - Rasa's REST channel answers what it has, too
                logger.exception("rest: message handling failed")
            return response.json(collector.messages)

        return webhook


# RFC 6455: the key is 16 random bytes in base64
_WEBSOCKET_KEY = re.compile(r"^[A-Za-z0-9+/]{22}==$")


def broken_engineio_request(method: str, args: Mapping[str, Any], headers: Mapping[str, str]) -> Optional[str]:
    """Why a request to the socket.io path is refused before Engine.IO sees it, or None.
    sanic 21.12 with websockets 10.4 answers an upgrade with a bad key with 500, and
    python-engineio 4.7 a polling POST without a session id (found by the hostile-input
    suite); both are client errors."""
    if (headers.get("upgrade") or "").lower() == "websocket" and \
            not _WEBSOCKET_KEY.match(headers.get("sec-websocket-key") or ""):
        return "bad websocket key"
    if method == "POST" and not args.get("sid"):
        return "no session id"
    return None


class MaskedSocketIOInput(SocketIOInput):
    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = super().blueprint(on_new_message)
        sio = self.sio
        # Engine.IO's route is added when Rasa registers the blueprint (sio.attach), with the
        # Engine.IO server's handle_request: guarded here, before that happens
        engineio_handler = sio.eio.handle_request

        async def guarded_handler(request: Request, *args: Any, **kwargs: Any):
            reason = broken_engineio_request(request.method, request.args, request.headers)
            if reason:
                return response.text(reason, status=400)
            return await engineio_handler(request, *args, **kwargs)

        sio.eio.handle_request = guarded_handler

        async def handle_message(sid: Text, data: Any) -> None:
            # Rasa's handler, with the message checked, its metadata the server's own
            if not isinstance(data, dict) or not isinstance(data.get("message", ""), str):
                return
            if self.session_persistence:
                session_id = data.get("session_id")
                if not isinstance(session_id, str) or not session_id or not _storable(session_id):
                    return
                room = data["session_id"][:MAX_SENDER_CHARS]
            else:
                room = sid
            environ = sio.get_environ(sid, namespace=self.namespace) or {}
            request = environ.get("sanic.request")
            metadata = server_metadata("ip", client_address(request))
            message = UserMessage(data.get("message", ""), SocketIOOutput(sio, self.bot_message_evt),
                                  SOCKETIO_NAMESPACE + room, input_channel=self.name(), metadata=metadata)
            await handle(on_new_message, message, metadata, request, reply_to=room)

        sio.on(self.user_message_evt, handle_message, namespace=self.namespace)
        return webhook

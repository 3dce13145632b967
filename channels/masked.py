"""Rasa's own REST and socket.io channels, with full ID-card numbers masked on the way in.

People paste their whole 身份证号 when the bot asks for the last 4 characters. The
built-in channels would pass it to Rasa unchanged, and the tracker store (SQLite or
PostgreSQL) and Rasa's own error logs (the REST channel logs the text when a turn fails
or times out) would keep it. These subclasses keep the channels' names, URLs and wire
format (`/webhooks/rest/webhook`, socket.io at `/socket.io`) and mask the text first –
the same masking the WeChat and web channels apply. The REST channel also answers a
body that is not {"message": "<text>", ...} with 400 instead of an exception (500).

Enabled in credentials.yml under their module paths instead of `rest:`/`socketio:`.
"""
from typing import Any, Awaitable, Callable, Optional, Text

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from rasa.core.channels.socketio import SocketIOInput
from sanic import Blueprint, response
from sanic.request import Request

from core.privacy import mask_id_card_numbers


def masking(on_new_message: Callable[[UserMessage], Awaitable[Any]]):
    """Wraps Rasa's message handler so it only ever sees masked text."""

    async def handle(message: UserMessage) -> Any:
        if isinstance(message.text, str):
            message.text = mask_id_card_numbers(message.text)
        return await on_new_message(message)

    return handle


class MaskedRestInput(RestInput):
    def _extract_message(self, req: Request) -> Optional[Text]:
        # masked here, before RestInput.receive keeps the text for its error logs
        text = super()._extract_message(req)
        return mask_id_card_numbers(text) if isinstance(text, str) else text

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = super().blueprint(on_new_message)

        @webhook.middleware("request")
        async def reject_malformed_body(request: Request):
            if request.method != "POST" or not request.path.endswith("/webhook"):
                return None
            try:
                body = request.json
            except Exception:  # noqa: BLE001 - invalid JSON
                body = None
            if not isinstance(body, dict) or not isinstance(body.get("message"), str):
                return response.json(
                    {"error": 'body must be a JSON object: {"sender": "...", "message": "<text>"}'},
                    status=400)
            return None

        return webhook


class MaskedSocketIOInput(SocketIOInput):
    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        return super().blueprint(masking(on_new_message))

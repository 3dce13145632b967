"""Rasa's own REST and socket.io channels, with full ID-card numbers masked on the way in.

People paste their whole 身份证号 when the bot asks for the last 4 characters. The
built-in channels would pass it to Rasa unchanged, and the tracker store (SQLite or
PostgreSQL) would keep it for good. These subclasses keep the channels' names, URLs
and wire format (`/webhooks/rest/webhook`, socket.io at `/socket.io`) and only mask
the text first – the same masking the WeChat and web channels apply.

Enabled in credentials.yml under their module paths instead of `rest:`/`socketio:`.
"""
from typing import Any, Awaitable, Callable

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from rasa.core.channels.socketio import SocketIOInput
from sanic import Blueprint

from progress_service.privacy import mask_id_card_numbers


def masking(on_new_message: Callable[[UserMessage], Awaitable[Any]]):
    """Wraps Rasa's message handler so it only ever sees masked text."""

    async def handle(message: UserMessage) -> Any:
        if isinstance(message.text, str):
            message.text = mask_id_card_numbers(message.text)
        return await on_new_message(message)

    return handle


class MaskedRestInput(RestInput):
    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        return super().blueprint(masking(on_new_message))


class MaskedSocketIOInput(SocketIOInput):
    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        return super().blueprint(masking(on_new_message))

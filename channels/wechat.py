"""Rasa input channel `wechat`: a thin sanic adapter over wechat_channel.endpoint.WeChatEndpoint.

The protocol package (wechat_channel/) has no Rasa imports and no wording; this adapter
gives it the channel's texts (knowledge/channel_texts.yml, wechat_*) and the menu
(knowledge/wechat_menu.yml) with {hotline} filled from knowledge/contacts.yml and
{privacy_notice} (channel_texts.yml) naming the configured retention period.

credentials.yml (written by tools/stack.py when WECHAT_TOKEN is set):

    channels.wechat.WeChatInput:
      token: ${WECHAT_TOKEN}
      appid: ${WECHAT_APPID}
      ...

Webhook: GET/POST /webhooks/wechat/webhook.

Feedback (issue 19, docs/wechat.md "Feedback"): after a knowledge answer the bot adds
"这个回答有帮助吗？" with two numbered lines (actions/reply.py, at most once per session).
A tapped (or typed) number that picks one of them never reaches the bot: the rating is
appended to the conversation in the tracker store (channels/feedback.py) and the reply is
knowledge/channel_texts.yml feedback_thanks. The answer's own numbered lines stay valid.
"""
import logging
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request

from assistant.contacts import contact_context
from assistant.content import privacy_notice, texts
from channels.feedback import record_rating
from channels.inbound import read_body
from core.feedback import PAYLOADS
from wechat_channel.config import WeChatSettings
from wechat_channel.endpoint import REPLY_KEYS, WeChatEndpoint
from wechat_channel.menu import Menu, load_menu

logger = logging.getLogger(__name__)


def wechat_replies() -> Dict[str, str]:
    """The channel's fixed texts: knowledge/channel_texts.yml wechat_<key>."""
    channel_texts = texts("channel_texts")
    return {key: channel_texts.render(f"wechat_{key}") for key in REPLY_KEYS}


def wechat_menu(settings: WeChatSettings) -> Menu:
    """The menu; its welcome tells a new follower what is stored and for how long."""
    placeholders = {**contact_context(), "privacy_notice": privacy_notice(settings.retention_days)}
    return load_menu(settings.menu_path, placeholders=placeholders)


class WeChatInput(InputChannel):
    """WeChat official account (公众号) server messages."""

    @classmethod
    def name(cls) -> Text:
        return "wechat"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        if not credentials:
            cls.raise_missing_credentials_exception()
        return cls(WeChatSettings.from_mapping(credentials))

    def __init__(self, settings: WeChatSettings, menu: Optional[Menu] = None,
                 endpoint_factory: Callable[..., WeChatEndpoint] = WeChatEndpoint):
        self.settings = settings
        self.menu = menu or wechat_menu(settings)  # fail at start-up, not on a message
        self.replies = wechat_replies()
        self.endpoint_factory = endpoint_factory
        self.endpoint: Optional[WeChatEndpoint] = None

    def blueprint(
        self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> Blueprint:
        channel_name = self.name()
        rasa_app: Dict[str, Any] = {}  # the sanic app this blueprint serves (its ctx.agent)

        async def run_bot(text: Text, sender_id: Text, metadata: Dict[Text, Any]):
            if text in PAYLOADS and (metadata.get("wechat") or {}).get("button"):
                return await rate(text, sender_id, metadata)
            collector = CollectingOutputChannel()
            await on_new_message(UserMessage(
                text, collector, sender_id, input_channel=channel_name, metadata=metadata,
            ))
            return collector.messages

        async def rate(payload: Text, sender_id: Text, metadata: Dict[Text, Any]):
            """A numbered "有帮助/没帮助" line: stored as a rating, no bot run; thanks."""
            app = rasa_app.get("app")
            agent = getattr(getattr(app, "ctx", None), "agent", None)
            try:
                if agent is None or getattr(agent, "tracker_store", None) is None:
                    raise RuntimeError("no agent")
                await record_rating(agent, sender_id, channel_name, PAYLOADS[payload],
                                    metadata={"wechat": dict(metadata.get("wechat") or {})})
            except Exception:  # noqa: BLE001 - the person is thanked either way
                logger.exception("wechat: feedback could not be stored")
            # the answer's own numbered lines stay valid, the rating's two do not
            offered = await endpoint.state.buttons(sender_id)
            kept = [button for button in offered if button[1] not in PAYLOADS]
            if kept and len(kept) < len(offered):
                await endpoint.state.remember_buttons(sender_id, kept)
            return [{"text": texts("channel_texts").render("feedback_thanks")}]

        endpoint = self.endpoint_factory(self.settings, run_bot, self.replies, menu=self.menu)
        self.endpoint = endpoint
        webhook = Blueprint(f"{channel_name}_webhook", __name__)

        def query(request: Request) -> Dict[str, str]:
            return {key: request.args.get(key) for key in request.args}

        @webhook.route("/", methods=["GET"])
        async def health(_: Request):
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["GET"])
        async def verify(request: Request):
            result = await endpoint.verify(query(request))
            return response.text(result.body, status=result.status,
                                 content_type=result.content_type)

        @webhook.route("/webhook", methods=["POST"], stream=True)
        async def receive(request: Request):
            rasa_app["app"] = request.app
            body = await read_body(request, endpoint.settings.max_body_bytes)
            if body is None:
                logger.warning("wechat: rejected an oversized body")
                return response.text("body too large", status=400)  # the contract: 403 or 400 only
            result = await endpoint.receive(query(request), body)
            return response.text(result.body, status=result.status,
                                 content_type=result.content_type)

        @webhook.listener("after_server_stop")
        async def close(*_: Any) -> None:
            await endpoint.close()

        return webhook

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

Status-change notifications (issue 19, docs/operations.md): after a lookup the bot offers
"状态有变化时通知我？" (actions/progress.py); the picked line (SUBSCRIPTION_PAYLOADS) and a
typed "取消通知" are answered here without a bot run (core/status_subscriptions.py).
POST /webhooks/wechat/status-events takes the progress system's signed event
(core/status_events.py), records it for the widget's watches (channels/status_events.py,
shared with the web channel's own route) and tells the subscribers
(wechat_channel/notify.py); internal: nginx does not expose it.
"""
import asyncio
import functools
import logging
import unicodedata
from typing import Any, Awaitable, Callable, Dict, Optional, Set, Text, Tuple

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request

from assistant.contacts import contact_context
from assistant.content import privacy_notice, texts
from channels.feedback import record_rating
from channels.inbound import read_body, run_turn
from channels.status_events import receive_status_event
from core import request_id, status_events
from core.feedback import PAYLOADS
from core.status_subscriptions import (
    CANCEL_COMMANDS, DECLINE_PAYLOAD, PAYLOADS as SUBSCRIPTION_PAYLOADS,
    SubscriptionStore,
)
from wechat_channel.api_client import mask_openid
from wechat_channel.config import WeChatSettings
from wechat_channel.endpoint import REPLY_KEYS, WeChatEndpoint
from wechat_channel.menu import Menu, load_menu
from wechat_channel.notify import StatusNotifier

logger = logging.getLogger(__name__)

# typed to stop every status-change notification (answered before NLU, never by the bot)
CANCEL_NOTIFICATIONS = CANCEL_COMMANDS  # core/status_subscriptions.py, shared with the widget


def status_wording(masked_number: str, status_label: str) -> Tuple[str, str]:
    """A status change as WeChat says it: the text and the template's details hint."""
    channel_texts = texts("channel_texts")
    return (channel_texts.render("status_changed", number=masked_number,
                                 status_label=status_label),
            channel_texts.render("status_changed_hint"))


def _typed_command(text: Text) -> Text:
    return unicodedata.normalize("NFKC", text or "").strip().rstrip("。.!！").strip()


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
                 endpoint_factory: Callable[..., WeChatEndpoint] = WeChatEndpoint,
                 subscription_store_factory: Callable[[], SubscriptionStore] = SubscriptionStore.from_env):
        self.settings = settings
        # STATUS_SUBSCRIPTIONS_DATABASE_URL (core/status_subscriptions.py), shared with the
        # action server, which writes the offers
        self.subscription_store_factory = subscription_store_factory
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
            button = (metadata.get("wechat") or {}).get("button")
            if text in PAYLOADS and button:
                return await rate(text, sender_id, metadata)
            if text in SUBSCRIPTION_PAYLOADS and button:
                return await subscription_choice(text, sender_id)
            if _typed_command(text) in CANCEL_NOTIFICATIONS:
                return await cancel_notifications(sender_id)
            collector = CollectingOutputChannel()
            # one observed turn: the receiving request's id (set in `receive`, inherited by
            # the task that runs the message), counted and timed (channels/inbound.py)
            await run_turn(on_new_message, UserMessage(
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

        stores: Dict[str, SubscriptionStore] = {}

        async def in_thread(function, *args):
            return await asyncio.get_running_loop().run_in_executor(
                None, functools.partial(function, *args))

        async def subscriptions() -> SubscriptionStore:
            """Opened on first use: a database down at start-up does not stop the channel."""
            if "store" not in stores:
                stores["store"] = await in_thread(self.subscription_store_factory)
            return stores["store"]

        def say(name: str) -> list:
            return [{"text": texts("channel_texts").render(name)}]

        async def subscription_choice(payload: Text, sender_id: Text):
            """"通知我" / "不用了" under a lookup's result."""
            try:
                store = await subscriptions()
                if payload == DECLINE_PAYLOAD:
                    await in_thread(store.decline, sender_id)
                    return say("status_declined")
                number = await in_thread(store.accept, sender_id)
            except Exception:  # noqa: BLE001 - the person gets an answer either way
                logger.exception("wechat: status subscription store unavailable")
                return say("status_unavailable")
            if number is None:
                return say("status_offer_expired")
            logger.info("wechat: %s subscribed to status changes", mask_openid(sender_id))
            return say("status_subscribed")

        async def cancel_notifications(sender_id: Text):
            try:
                removed = await in_thread((await subscriptions()).cancel, sender_id)
            except Exception:  # noqa: BLE001
                logger.exception("wechat: status subscription store unavailable")
                return say("status_unavailable")
            if removed:
                logger.info("wechat: %s cancelled status notifications", mask_openid(sender_id))
            return say("status_cancelled" if removed else "status_nothing_to_cancel")

        endpoint = self.endpoint_factory(self.settings, run_bot, self.replies, menu=self.menu)
        self.endpoint = endpoint
        notifiers: Dict[str, StatusNotifier] = {}
        background: Set["asyncio.Future[Any]"] = set()

        async def notifier() -> StatusNotifier:
            if "notifier" not in notifiers:
                notifiers["notifier"] = StatusNotifier(
                    await subscriptions(), endpoint.api, endpoint.state, status_wording,
                    template_id=self.settings.status_template_id,
                    template_keys=self.settings.status_template_keys,
                    passive_only=endpoint.passive_only)
            return notifiers["notifier"]

        async def tell_subscribers(event: status_events.StatusEvent) -> None:
            try:
                await (await notifier()).notify(event)
            except Exception:  # noqa: BLE001 - logged; the agency's push is long done
                logger.exception("wechat: status notifications failed")
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
            request_id.set_current(request_id.from_headers(request.headers))  # nginx's $request_id
            try:
                result = await endpoint.receive(query(request), body)
            finally:
                request_id.set_current("")  # the message's task keeps its own copy
            return response.text(result.body, status=result.status,
                                 content_type=result.content_type)

        @webhook.route("/status-events", methods=["POST"], stream=True)
        async def status_event(request: Request):
            """The progress system's signed status change (internal: never behind nginx):
            checked and recorded for the widget's watches (channels/status_events.py), then
            told to the WeChat subscribers."""
            answer, event = await receive_status_event(
                request, self.settings.events_secret, subscriptions, channel_name)
            if event is None:
                return answer
            task = asyncio.ensure_future(tell_subscribers(event))
            background.add(task)
            task.add_done_callback(background.discard)
            return answer

        @webhook.listener("after_server_stop")
        async def close(*_: Any) -> None:
            await endpoint.close()
            if "store" in stores:
                stores.pop("store").close()

        return webhook

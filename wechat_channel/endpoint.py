"""One WeChat request in, one response out — the whole protocol, without a web framework.

`WeChatEndpoint.verify(query)` answers the GET URL check, `receive(query, body)` a push.
Both check the signature, the timestamp and replays (a signed URL seen before is accepted
again only for the same request; the state store remembers it until it is stale).
The bot is any coroutine `bot(text, sender_id, metadata) -> [message dicts]` (Rasa's
collector format); rasa_channel.py plugs Rasa in, tests plug in stand-ins.
"""
import asyncio
import dataclasses
import hashlib
import logging
import os
import time
import unicodedata
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional, Set

from core.inbound import typed_text

from . import signature
from .api_client import WeChatApiClient, mask_openid
from .config import WeChatSettings
from .crypto import AppIdMismatch, CryptoError, MessageCrypto
from .delivery import HeldReply, InFlight, pick_button
from .menu import Menu
from .messages import (
    MESSAGE_SEPARATOR, IncomingMessage, MalformedMessage, asks_for_handover, parse_message,
    parse_xml, render_bot_messages, render_button_line, render_encrypted_envelope,
    render_text_reply, render_transfer_reply, split_utf8,
)
from .state import StateStore, state_store

logger = logging.getLogger(__name__)

Bot = Callable[[str, str, Dict[str, Any]], Awaitable[List[Dict[str, Any]]]]

# The channel's own fixed texts, passed in by whoever builds the endpoint (the Rasa adapter
# reads them from knowledge/channel_texts.yml as wechat_<key>): one text per key.
REPLY_KEYS = ("voice", "media", "empty", "fallback", "late_label", "continued_label", "more_hint")
CONTINUE_WORDS = {"继续", "下一段", "接着说", "更多"}
MEDIA_TYPES = {"image", "video", "shortvideo", "location", "link", "file", "music"}
# A reply that starts with this hands the user's message to 客服 when it goes out passively
# (transfer_customer_service); the text after it is what a late or retried delivery sends.
TRANSFER_PREFIX = "\x00transfer_customer_service\x00"


@dataclasses.dataclass
class Response:
    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"


def _forbidden(reason: str) -> Response:
    logger.warning("wechat: rejected request (%s)", reason)
    return Response(403, "forbidden")


def _bad_request(reason: str) -> Response:
    logger.warning("wechat: malformed request (%s)", reason)
    return Response(400, "bad request")


def request_digest(method: str, query: Mapping[str, str], body: bytes) -> str:
    """SHA-256 of what the signature does not cover: the method, the other query
    parameters (echostr, openid, msg_signature…) and the body."""
    digest = hashlib.sha256(method.encode("ascii"))
    for name in sorted(set(query) - {"signature", "timestamp", "nonce"}):
        for part in (name, query[name] or ""):
            data = part.encode("utf-8", "surrogatepass")
            digest.update(len(data).to_bytes(4, "big") + data)
    digest.update(b"body" + body)
    return digest.hexdigest()


class WeChatEndpoint:
    def __init__(self, settings: WeChatSettings, bot: Bot, replies: Mapping[str, str],
                 menu: Menu,
                 api: Optional[WeChatApiClient] = None,
                 clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic,
                 state: Optional[StateStore] = None):
        self.settings = settings
        self.bot = bot
        missing = [key for key in REPLY_KEYS if not replies.get(key)]
        if missing:
            raise ValueError(f"WeChat replies missing: {', '.join(missing)}")
        self.replies = dict(replies)
        self.menu = menu
        self.clock = clock
        self.crypto = (
            MessageCrypto(settings.aes_key, settings.appid or "")
            if settings.aes_key and settings.appid else None
        )
        if api is None and settings.can_send_customer_messages:
            api = WeChatApiClient(settings.api_base, settings.appid, settings.appsecret,
                                  timeout=settings.api_timeout, clock=monotonic)
        self.api = api
        self.passive_only = settings.passive_only or api is None
        # retry claims, remembered buttons, held replies: this process or Redis (state.py)
        self.state = state or state_store(settings, clock=monotonic)
        self.inflight = InFlight(ttl=settings.dedupe_ttl, clock=monotonic, claims=self.state)
        self._background: Set["asyncio.Future[Any]"] = set()
        self.bot_runs = 0
        self.customer_messages_sent = 0
        if settings.mode == "plain":
            # the body is neither encrypted nor covered by any signature in plain mode
            logger.warning("wechat: WECHAT_MODE=plain is for the 测试号 sandbox only; "
                           "use safe mode (or compatible) with a real official account")

    # --- HTTP ----------------------------------------------------------------------
    def _check_request(self, query: Mapping[str, str]) -> Optional[Response]:
        timestamp, nonce = query.get("timestamp"), query.get("nonce")
        if not signature.is_fresh(timestamp, self.clock(), self.settings.timestamp_tolerance):
            return _forbidden("missing or stale timestamp")
        if not signature.check_signature(self.settings.token, timestamp, nonce,
                                         query.get("signature")):
            return _forbidden("bad signature")
        return None

    async def _check_replay(self, method: str, query: Mapping[str, str],
                            body: bytes = b"") -> Optional[Response]:
        """For a request whose signature and timestamp were checked."""
        timestamp = query["timestamp"]
        # Replay: the signature covers only token, timestamp and nonce, so within the
        # tolerance a captured URL could carry any body. The same signature is accepted
        # again only for the same request (WeChat repeating itself; MsgId dedupe answers
        # it), until its timestamp is stale.
        ttl = int(timestamp) + self.settings.timestamp_tolerance - self.clock() + 1
        if not await self.state.remember_request(query["signature"].lower(),
                                                 request_digest(method, query, body), ttl):
            return _forbidden("signed URL replayed with another request")
        return None

    async def verify(self, query: Mapping[str, str]) -> Response:
        """GET URL check: echo `echostr` when the signature is ours."""
        rejected = self._check_request(query) or await self._check_replay("GET", query)
        if rejected:
            return rejected
        echostr = query.get("echostr")
        if not echostr:
            return _bad_request("no echostr")
        return Response(200, echostr)

    async def receive(self, query: Mapping[str, str], body: bytes) -> Response:
        """POST push: check, decrypt, dispatch, render the passive reply (or `success`)."""
        rejected = self._check_request(query)
        if rejected:
            return rejected
        if len(body) > self.settings.max_body_bytes:
            logger.warning("wechat: rejected body of %d bytes", len(body))
            return Response(400, "body too large")
        rejected = await self._check_replay("POST", query, body)
        if rejected:
            return rejected
        encrypted = (query.get("encrypt_type") or "").lower() == "aes"
        if self.settings.mode != "plain" and not encrypted:
            # compatible mode too: only the ciphertext is covered by msg_signature
            return _forbidden(f"{self.settings.mode} mode requires encrypt_type=aes")
        try:
            fields = parse_xml(body)
        except MalformedMessage as exc:
            return _bad_request(str(exc))
        decrypt = encrypted and self.crypto is not None
        if decrypt:
            encrypt = fields.get("Encrypt") or ""
            if not encrypt:
                return _bad_request("no Encrypt field")
            if not signature.check_msg_signature(self.settings.token, query.get("timestamp"),
                                                 query.get("nonce"), encrypt,
                                                 query.get("msg_signature")):
                return _forbidden("bad msg_signature")
            try:
                fields = parse_xml(self.crypto.decrypt(encrypt))
            except AppIdMismatch:
                return _forbidden("appid mismatch")
            except (CryptoError, MalformedMessage) as exc:
                return _bad_request(f"undecryptable message: {exc}")
        try:
            message = parse_message(fields)
        except MalformedMessage as exc:
            return _bad_request(str(exc))
        openid = query.get("openid")
        if openid and openid != message.from_user:
            return _forbidden("openid does not match FromUserName")

        reply = await self.inflight.attempt(
            message.dedupe_key,
            lambda: self._work(message),
            self.settings.reply_deadline,
            passive=lambda text: self._compose_passive(message.from_user, text),
            late=lambda text: self._deliver_late(message.from_user, text),
        )
        if not reply:
            return Response(200, "success")
        if reply.startswith(TRANSFER_PREFIX):
            logger.info("wechat: %s handed to customer service", mask_openid(message.from_user))
            xml = render_transfer_reply(message.from_user, message.to_user, int(self.clock()))
        else:
            xml = render_text_reply(message.from_user, message.to_user, reply, int(self.clock()))
        if decrypt:
            timestamp, nonce = str(int(self.clock())), os.urandom(5).hex()
            encrypt = self.crypto.encrypt(xml)
            xml = render_encrypted_envelope(
                encrypt, signature.sign(self.settings.token, timestamp, nonce, encrypt),
                timestamp, nonce,
            )
        return Response(200, xml, "application/xml; charset=utf-8")

    # --- what a message means -------------------------------------------------------
    async def _work(self, message: IncomingMessage) -> Optional[str]:
        """The reply text for one message (None: no reply). Runs once per message."""
        user = message.from_user
        kind = message.msg_type
        logger.info("wechat: %s%s from %s", kind,
                    f"/{message.event}" if message.event else "", mask_openid(user))
        if kind != "event" or message.event in ("subscribe", "click"):
            # what opens WeChat's 48 h customer-service window (status notifications)
            await self.state.note_inbound(user)
        if kind == "text":
            text = unicodedata.normalize("NFKC", message.content).strip()
            if not text:
                return self.replies["empty"]
            if text in CONTINUE_WORDS and any(h.continued for h in await self.state.held(user)):
                return ""  # the held continuation is the whole reply
            payload = pick_button(await self.state.buttons(user), message.content,
                                  message.menu_id)
            # only buttons and menus send "/intent" payloads; typed text (any slash width)
            # never does, has its ID numbers masked and is capped (core.inbound)
            return await self._bot_turn(user, payload or typed_text(message.content),
                                        {"msg_type": kind, "button": payload is not None},
                                        may_transfer=True)
        if kind == "voice":
            if message.recognition:
                return await self._bot_turn(user, typed_text(message.recognition),
                                            {"msg_type": kind, "button": False},
                                            may_transfer=True)
            return self.replies["voice"]
        if kind in MEDIA_TYPES:
            return self.replies["media"]
        if kind == "event":
            return await self._event(message)
        return self.replies["media"]

    async def _event(self, message: IncomingMessage) -> Optional[str]:
        user, event = message.from_user, message.event
        if event == "subscribe":
            buttons = self.menu.welcome_button_pairs
            await self.state.remember_buttons(user, buttons)
            lines = [render_button_line(i, title) for i, (title, _) in enumerate(buttons, 1)]
            return "\n".join([self.menu.welcome_text] + lines)
        if event == "unsubscribe":
            await self.state.forget_user(user)
            return None
        if event == "click":
            entry = self.menu.click(message.event_key)
            if entry is None:
                return self.menu.unknown_click_reply
            return await self._bot_turn(user, entry.payload, {"msg_type": "event", "button": True})
        return None  # VIEW, SCAN, LOCATION, template results…: nothing to say

    async def _bot_turn(self, user: str, text: str, metadata: Dict[str, Any],
                        may_transfer: bool = False) -> str:
        """The turn's reply text. `may_transfer`: a user's own message (WeChat forwards
        only those to 客服, never events such as menu clicks)."""
        self.bot_runs += 1
        task = asyncio.ensure_future(self.bot(text, user, {"wechat": metadata}))
        done, _ = await asyncio.wait({task}, timeout=self.settings.turn_timeout)
        if not done:
            # Not cancelled: Rasa may be halfway through updating the tracker.
            logger.warning("wechat: bot did not answer %s within %.0fs",
                           mask_openid(user), self.settings.turn_timeout)
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            return self.replies["fallback"]
        if task.exception() is not None:
            logger.error("wechat: bot failed for %s: %s", mask_openid(user),
                         type(task.exception()).__name__)
            return self.replies["fallback"]
        messages = task.result() or []
        text_out, buttons = render_bot_messages(messages)
        await self.state.remember_buttons(user, buttons)
        text_out = text_out or self.replies["fallback"]
        if may_transfer and self.settings.transfer_to_kf and asks_for_handover(messages):
            return TRANSFER_PREFIX + text_out
        return text_out

    # --- delivery -------------------------------------------------------------------
    async def _compose_passive(self, user: str, text: Optional[str]) -> Optional[str]:
        """Held replies first, then this answer; the first ≤2048 bytes go passively."""
        if text is None:
            return None
        if text.startswith(TRANSFER_PREFIX):
            return text  # held replies wait for the next text reply
        parts = []
        for held in await self.state.take_held(user):
            label = self.replies["continued_label"] if held.continued else self.replies["late_label"]
            parts.append(f"{label}\n{held.text}")
        if text:
            parts.append(text)
        full = MESSAGE_SEPARATOR.join(parts)
        limit = self.settings.max_reply_bytes
        chunks = split_utf8(full, limit)
        if not chunks:
            return None
        if len(chunks) > 1 and self.passive_only:
            hint = self.replies["more_hint"]
            chunks = split_utf8(full, limit - len(hint.encode("utf-8")) - 1)
            await self.state.hold(user, HeldReply("\n".join(chunks[1:]), continued=True),
                                  front=True)
            return chunks[0] + "\n" + hint
        if len(chunks) > 1:
            self._spawn(self._send_chunks(user, chunks[1:], continued=True))
        return chunks[0]

    async def _deliver_late(self, user: str, text: Optional[str]) -> None:
        if text and text.startswith(TRANSFER_PREFIX):
            text = text[len(TRANSFER_PREFIX):]  # too late to hand over: the hotline text
        if not text:
            return
        chunks = split_utf8(text, self.settings.max_reply_bytes)
        await self._send_chunks(user, chunks, continued=False)

    async def _send_chunks(self, user: str, chunks: List[str], continued: bool) -> None:
        """Customer-service messages in order; whatever cannot be sent is held."""
        for index, chunk in enumerate(chunks):
            if self.passive_only or self.api is None:
                await self._hold(user, chunks[index:], continued or index > 0)
                return
            result = await self.api.send_text(user, chunk)
            if result.ok:
                self.customer_messages_sent += 1
                continue
            if result.kind == "no_permission":
                logger.warning("wechat: customer-service API not permitted (48001); "
                               "switching to passive-only replies")
                self.passive_only = True
            await self._hold(user, chunks[index:], continued or index > 0)
            return

    async def _hold(self, user: str, chunks: List[str], continued: bool) -> None:
        text = "\n".join(chunks)
        await self.state.hold(user, HeldReply(text, continued))
        logger.info("wechat: holding a reply for %s until their next message", mask_openid(user))

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        if self.api is not None:
            await self.api.close()
        await self.state.close()

"""What our Rasa input channels share on the way in (docs/security.md):

- `read_body`: a request body read against a size limit, so nobody makes Rasa hold
  megabytes (Rasa's own limit is sanic's 100 MB);
- `server_metadata`: the only metadata a message carries, set here and never taken from
  the client: who is asking, as a hash of what the client cannot choose (its address as
  the trusted proxy reports it, or the signed WeChat OpenID);
- `handle`: typed text through core.inbound (ID numbers masked, no "/" commands unless a
  button the bot offered sends them, length capped), and the buttons of the bot's answer
  remembered for the next message;
- `run_turn`: one observed turn (docs/deploy.md): its request id (the request's sane
  X-Request-Id, which nginx sets, else a new one; core/request_id.py) in the message's
  metadata and on every log line of the turn, so the action server and the progress
  service log it too; the turn counted and timed per channel (core/metrics.py).
"""
import json
import logging
import time
from typing import Any, Awaitable, Callable, Dict, List, Optional

from rasa.core.channels.channel import UserMessage
from sanic.exceptions import PayloadTooLarge
from sanic.request import Request

from core import metrics, request_id
from core.inbound import OfferedPayloads, incoming_text, offered_in_events
from core.privacy import client_reference

logger = logging.getLogger(__name__)

# A message of MAX_TEXT_CHARS characters is at most ~3 KB of JSON; WeChat's XML 64 KB.
MAX_BODY_BYTES = 64 * 1024

# The buttons each conversation was last offered, for every channel of this process.
OFFERED = OfferedPayloads()


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> Optional[bytes]:
    """The request body, or None as soon as it is longer than `limit` bytes. The route
    must be a streaming one (stream=True), else sanic has read it all already."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        return None
    stream = getattr(request, "stream", None)
    if stream is None or request.body:
        return request.body if len(request.body) <= limit else None
    stream.request_max_size = limit  # sanic stops reading (and closes) beyond this
    chunks: List[bytes] = []
    size = 0
    try:
        while True:
            chunk = await stream.read()
            if chunk is None:
                break
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
    except PayloadTooLarge:
        return None
    return b"".join(chunks)


class TooLarge(Exception):
    """The request body is over the limit (answer 413)."""


async def read_json(request: Request, limit: int = MAX_BODY_BYTES) -> Any:
    """The JSON body, or None when it is not JSON (invalid, undecodable, absurdly nested:
    the caller answers 400 with its reason); raises TooLarge over `limit` bytes."""
    data = await read_body(request, limit)
    if data is None:
        raise TooLarge()
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


_warned_about_proxy = False


def client_address(request: Optional[Request]) -> str:
    """The client's address: from the trusted proxy's header when Rasa is told which one
    (SANIC_REAL_IP_HEADER / SANIC_PROXIES_COUNT, docs/security.md), else the peer."""
    global _warned_about_proxy
    if request is None:
        return ""
    try:
        address = request.remote_addr
    except Exception:  # noqa: BLE001 - a malformed forwarding header is just no address
        address = ""
    if not address and not _warned_about_proxy and (
            "x-forwarded-for" in request.headers or "x-real-ip" in request.headers):
        _warned_about_proxy = True
        logger.warning("requests come through a proxy, but Rasa is not told which header names "
                       "the client (SANIC_REAL_IP_HEADER): every client then shares one lockout "
                       "identity (docs/security.md)")
    return address or request.ip or ""


def server_metadata(kind: str, value: str) -> Dict[str, Any]:
    return {"client": client_reference(kind, value)}


async def offered_to(conversation: str, sender_id: str, text: Any, request: Optional[Request]) -> frozenset:
    """The payloads this conversation may send now: remembered by this process, or, for a
    "/…" text it does not know, the buttons the shared tracker store says the bot sent
    last (another replica answered the turn before: nginx spreads a conversation's turns)."""
    local = OFFERED.offered(conversation)
    if not isinstance(text, str) or not text.strip().startswith("/") or text.strip() in local:
        return local
    agent = getattr(getattr(getattr(request, "app", None), "ctx", None), "agent", None)
    store = getattr(agent, "tracker_store", None)
    if store is None:
        return local
    try:
        tracker = await store.retrieve(sender_id)
    except Exception:  # noqa: BLE001 - without the store the text is typed text, as before
        logger.exception("offered buttons: the tracker store could not be read")
        return local
    if tracker is None:
        return local
    return local | offered_in_events(event.as_dict() for event in tracker.events)


async def handle(on_new_message: Callable[[UserMessage], Awaitable[Any]],
                 message: UserMessage, metadata: Dict[str, Any], request: Optional[Request] = None,
                 offered: Optional[frozenset] = None, reply_to: Optional[str] = None) -> Any:
    """Runs one message through the bot: the text as typed_text (or an offered payload),
    the server's metadata only; remembers the buttons the bot answers with. `offered`:
    what the channel already found on offer (offered_to), so it is not looked up twice.
    `reply_to`: the client's own id when the conversation's id is namespaced (channels/
    masked.py: "rest:abc"), so replies go to (and name) the id the client sent."""
    conversation = f"{message.input_channel}:{message.sender_id}"
    if offered is None:
        offered = await offered_to(conversation, message.sender_id, message.text, request)
    message.text = incoming_text(message.text, offered)
    message.metadata = metadata
    offered: List[str] = []
    output = message.output_channel
    if output is not None:
        send_response = output.send_response

        async def remembering(recipient_id: str, reply: Dict[str, Any]) -> None:
            for key in ("buttons", "quick_replies"):
                for button in reply.get(key) or []:
                    if isinstance(button, dict):
                        offered.append(button.get("payload"))
            if reply_to is not None and recipient_id == message.sender_id:
                recipient_id = reply_to
            await send_response(recipient_id, reply)

        output.send_response = remembering  # this message's channel object only
    try:
        return await run_turn(on_new_message, message, request)
    finally:
        OFFERED.remember(conversation, offered)


async def run_turn(on_new_message: Callable[[UserMessage], Awaitable[Any]], message: UserMessage,
                   request: Optional[Request] = None) -> Any:
    """Runs `message` through the bot as one observed turn. Its request id: the request's
    sane X-Request-Id or a new one; without a request (WeChat runs messages in a task of
    their own), the one the task inherited from the route that received it. It goes into
    the message's metadata (`request_id`, for the action server) unless there is none (a
    message made without a request, in tests)."""
    turn_id = request_id.from_headers(request.headers) if request is not None else request_id.current()
    if turn_id:
        message.metadata = {**(message.metadata or {}), request_id.METADATA_KEY: turn_id}
    token = request_id.set_current(turn_id)
    channel = message.input_channel or "unknown"
    started = time.monotonic()
    logger.info("turn on %s", channel)
    try:
        return await on_new_message(message)
    except Exception:
        metrics.TURN_ERRORS.labels(channel=channel).inc()
        raise
    finally:
        metrics.TURNS.labels(channel=channel).inc()
        metrics.TURN_SECONDS.labels(channel=channel).observe(time.monotonic() - started)
        request_id.reset(token)

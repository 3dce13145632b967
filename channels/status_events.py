"""The channel-agnostic part of a status event (issue 19, docs/operations.md
"Status-change notifications"): read the progress system's signed POST, check it
(core/status_events.py), and record the new status for the widget's watches
(core/status_subscriptions.py). The web channel's route (POST
/webhooks/web/status-events) does only this; the WeChat channel's route does this and then
tells its subscribers. Both are internal: nginx exposes neither.
"""
import asyncio
import functools
import logging
import time
from typing import Awaitable, Callable, Optional, Tuple

from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse

from channels.inbound import read_body
from core import status_events
from core.privacy import mask_application_no
from core.status_subscriptions import SubscriptionStore

logger = logging.getLogger(__name__)

StoreGetter = Callable[[], Awaitable[SubscriptionStore]]


async def in_thread(function, *args):
    return await asyncio.get_running_loop().run_in_executor(
        None, functools.partial(function, *args))


def lazy_store(factory: Callable[[], SubscriptionStore]) -> StoreGetter:
    """Opened on first use: a database down at start-up does not stop the channel."""
    opened = {}

    async def store() -> SubscriptionStore:
        if "store" not in opened:
            opened["store"] = await in_thread(factory)
        return opened["store"]
    return store


async def receive_status_event(request: Request, secret: Optional[str], store: StoreGetter,
                               channel: str) -> Tuple[HTTPResponse, Optional[status_events.StatusEvent]]:
    """(the answer, the event when it is one): 400 for an oversized body or one that is not
    an event, 403 for a wrong signature or timestamp (or no secret configured), else 202
    after the widget's watches of the number have the new status. Never 5xx: a store that
    cannot be reached is logged (the WeChat part still runs)."""
    body = await read_body(request, status_events.MAX_BODY_BYTES)
    if body is None:
        return response.json({"error": "too_large"}, status=400), None
    if not status_events.verify(
            secret, request.headers.get(status_events.TIMESTAMP_HEADER),
            request.headers.get(status_events.SIGNATURE_HEADER), body, time.time()):
        logger.warning("%s: rejected a status event (signature, timestamp or no "
                       "PROGRESS_EVENTS_SECRET)", channel)
        return response.json({"error": "forbidden"}, status=403), None
    event = status_events.parse_event(body)
    if event is None:
        return response.json({"error": "bad_event"}, status=400), None
    try:
        watches = await in_thread((await store()).record_status, event.application_no,
                                  event.status)
        if watches:
            logger.info("status change of %s to %s: %d widget watch(es) updated",
                        mask_application_no(event.application_no), event.status, watches)
    except Exception:  # noqa: BLE001 - logged; the agency's push is long done
        logger.exception("%s: widget watches not updated", channel)
    return response.json({"accepted": True}, status=202), event

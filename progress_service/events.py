"""Status-change events to the bot (issue 19): after a status push that changed an
application's status, one signed POST to PROGRESS_EVENTS_URL (core/status_events.py has
the body and the signature). The agency's push never waits for it: it goes out in the
background, with a short timeout, once; a failure is logged with the number masked.
"""
import asyncio
import logging
import time
from typing import Optional, Set

import requests

from core.privacy import mask_application_no
from core.status_events import event_body, signed_headers

logger = logging.getLogger("progress_service.events")


class EventSender:
    def __init__(self, url: Optional[str], secret: Optional[str], timeout: float = 3.0):
        self.url = url or None
        self.secret = secret or None
        self.timeout = timeout
        self._pending: Set["asyncio.Future[None]"] = set()
        self.sent = 0
        self.failed = 0
        if self.url and not self.secret:
            logger.warning("PROGRESS_EVENTS_URL is set without PROGRESS_EVENTS_SECRET: "
                           "no status events are sent")

    @property
    def enabled(self) -> bool:
        return bool(self.url and self.secret)

    def send_later(self, application_no: str, status: str, updated_at: str) -> None:
        """Schedule the event on the running loop and return at once."""
        if not self.enabled:
            return
        body = event_body(application_no, status, updated_at)
        task = asyncio.ensure_future(asyncio.get_running_loop().run_in_executor(
            None, self._post, body, mask_application_no(application_no)))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _post(self, body: bytes, masked: str) -> None:
        try:
            answer = requests.post(self.url, data=body, timeout=self.timeout,
                                   headers=signed_headers(self.secret, body, time.time()))
            if answer.status_code >= 300:
                raise RuntimeError(f"HTTP {answer.status_code}")
            self.sent += 1
        except Exception as error:  # noqa: BLE001 - logged; the push itself succeeded
            self.failed += 1
            logger.warning("status event for %s not delivered: %s", masked,
                           type(error).__name__ if not isinstance(error, RuntimeError) else error)

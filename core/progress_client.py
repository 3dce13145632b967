"""ProgressClient: the one client for the application-progress service.

Every HTTP detail and every failure mode is mapped here to a small LookupResult
(found / no_match / not_found / locked / invalid / unavailable); callers never see an
exception. The caller passes base URL, key and timeout (each process reads them from
its own settings; tests use a loopback server). The async methods run the blocking request in a worker
thread with an overall deadline, so the action server's event loop never waits on it.
Each request carries the current request id (core/request_id.py) as `X-Request-Id`, so the
service's log line of a lookup names the turn it belongs to.
"""
import asyncio
import concurrent.futures
import contextvars
import dataclasses
import functools
import json
import logging
import time
from typing import Any, Dict, Optional
from urllib.parse import quote

import requests

from core import defaults, request_id
from core.privacy import mask_application_no, sender_reference

logger = logging.getLogger(__name__)

# The service's answers are a few KB; anything much larger is not its answer.
MAX_BODY_BYTES = 256 * 1024



class _DeadlinePassed(Exception):
    pass


def _read_body(response, deadline: float) -> bytes:
    """The body, read as it arrives, giving up once the total deadline has passed:
    requests' own read timeout is per socket read, so a trickling server would
    otherwise hold the thread indefinitely."""
    raw = response.raw
    body = bytearray()
    while True:
        if time.monotonic() > deadline:
            raise _DeadlinePassed()
        if hasattr(raw, "read1"):
            chunk = raw.read1(65536, decode_content=False)
        else:  # older urllib3: one byte at a time never blocks for more than one read
            chunk = raw.read(1, decode_content=False)
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise _DeadlinePassed()


@dataclasses.dataclass
class LookupResult:
    # found | no_match (public: unknown number or wrong suffix) | not_found (agent)
    # | locked | invalid | unavailable
    outcome: str
    application: Optional[Dict[str, Any]] = None
    retry_after: int = 0


class ProgressClient:
    def __init__(self, base_url: str, api_key: str,
                 timeout: float = defaults.PROGRESS_TIMEOUT_SECONDS, lookup_threads: int = 4):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key or ""
        self.timeout = timeout
        self.lookup_threads = lookup_threads
        # Lookups run here, not in the event loop's default pool: a service that trickles
        # its headers can hold a thread past the deadline, and then only this small pool
        # fills up (further lookups wait, time out and answer "unavailable") instead of
        # every asyncio.to_thread user of the process.
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=lookup_threads, thread_name_prefix="progress-lookup")

    # --- the one place that talks HTTP and maps its failures ------------------------------
    def _get(self, application_no: str, headers: Dict[str, str]) -> LookupResult:
        url = f"{self.base_url}/api/v1/applications/{quote(application_no, safe='')}"
        masked = mask_application_no(application_no)
        deadline = time.monotonic() + self.timeout
        traced = {request_id.HEADER: request_id.current()} if request_id.current() else {}
        try:
            response = requests.get(
                url, headers={"X-API-Key": self.api_key or "", "Accept-Encoding": "identity",
                              **traced, **headers},
                timeout=(self.timeout, self.timeout), stream=True,
            )
            try:
                payload = _read_body(response, deadline)
            finally:
                response.close()
        except _DeadlinePassed:
            logger.warning("progress service answer for %s took longer than %.1fs or was too large",
                           masked, self.timeout)
            return LookupResult("unavailable")
        except (requests.RequestException, OSError, ValueError) as error:
            # urllib3 errors while streaming the body are not all RequestExceptions
            logger.warning("progress service unreachable for %s: %s", masked, type(error).__name__)
            return LookupResult("unavailable")
        except Exception as error:  # noqa: BLE001 - never let a lookup break the conversation
            logger.warning("progress service answer for %s unreadable: %s", masked, type(error).__name__)
            return LookupResult("unavailable")
        try:
            body = json.loads(payload.decode("utf-8")) if payload else {}
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if response.status_code == 200 and body.get("status"):
            return LookupResult("found", application=body)
        if response.status_code == 404:
            return LookupResult("not_found" if body.get("error") == "not_found" else "no_match")
        if response.status_code == 429:
            retry_after = body.get("retry_after") or response.headers.get("Retry-After") or 0
            try:
                retry_after = max(1, int(retry_after))
            except (TypeError, ValueError):
                retry_after = 0
            return LookupResult("locked", retry_after=retry_after)
        if response.status_code == 400:
            return LookupResult("invalid")
        if response.status_code in (401, 403):
            logger.error("progress service refused our credentials (HTTP %s): check PROGRESS_API_KEY",
                         response.status_code)
        else:
            logger.warning("progress service answered HTTP %s for %s", response.status_code, masked)
        return LookupResult("unavailable")

    # --- blocking API -----------------------------------------------------------------------
    def lookup(self, application_no: str, id_last4: str, sender_id: str) -> LookupResult:
        """Public lookup: the applicant proves the number with the ID card's last 4."""
        return self._get(application_no, {
            "X-Id-Last4": id_last4,
            "X-Sender": sender_reference(sender_id),
        })

    def agent_lookup(self, application_no: str, agent_token: str) -> LookupResult:
        """Hotline-agent lookup: no suffix check, full history; audited by the service."""
        return self._get(application_no, {"X-Agent-Token": agent_token})

    def health(self) -> bool:
        try:
            return requests.get(f"{self.base_url}/health", timeout=self.timeout).ok
        except requests.RequestException:
            return False

    # --- non-blocking API (for the action server) -------------------------------------------
    async def _off_loop(self, function, *args) -> LookupResult:
        try:
            # a worker thread, and an overall deadline: a server that trickles its
            # answer byte by byte cannot hold the conversation past the timeout
            # in the caller's context: the request id goes along (X-Request-Id, log lines)
            loop = asyncio.get_running_loop()
            call = functools.partial(contextvars.copy_context().run, function, *args)
            return await asyncio.wait_for(loop.run_in_executor(self._pool, call),
                                          self.timeout + 0.2)
        except asyncio.TimeoutError:
            logger.warning("progress service did not answer within %.1fs", self.timeout)
            return LookupResult("unavailable")
        except Exception as error:  # never let a lookup break the conversation
            logger.error("progress lookup failed: %s", type(error).__name__)
            return LookupResult("unavailable")

    async def lookup_async(self, application_no: str, id_last4: str, sender_id: str) -> LookupResult:
        return await self._off_loop(self.lookup, application_no, id_last4, sender_id)

    async def agent_lookup_async(self, application_no: str, agent_token: str) -> LookupResult:
        return await self._off_loop(self.agent_lookup, application_no, agent_token)

"""Prometheus metrics of every process, served on an internal port (docs/deploy.md, "Metrics").

A thin layer over prometheus_client: the metrics are module-level objects that cost next
to nothing when nobody scrapes them, and `serve(variable)` starts the scrape endpoint only
when the process's port variable is set (RASA_METRICS_PORT, ACTIONS_METRICS_PORT,
PROGRESS_METRICS_PORT, WEB_METRICS_PORT; tools/stack.py sets them), on METRICS_HOST
(default 127.0.0.1: loopback, never routed by nginx). Without the variable nothing listens.

Labels never carry what a person typed, an id or a number: channel names, outcomes,
WeChat error codes and fixed route names only.

`FailureAlarm` is the progress service's global failure-rate alarm (issue 16): failed
suffix checks over the last N minutes, over all numbers and senders; past the threshold
the gauge `progress_failure_alarm` is 1 and one warning is logged per window.
"""
import collections
import logging
import os
import threading
import time
from typing import Callable, Deque, Mapping, Optional

from prometheus_client import Counter, Gauge, Histogram, start_http_server

logger = logging.getLogger(__name__)

HOST_VARIABLE = "METRICS_HOST"
DEFAULT_HOST = "127.0.0.1"

# --- Rasa process (channels/) --------------------------------------------------------------
TURNS = Counter("assistant_turns_total", "User messages run through the bot, by channel",
                ["channel"])
TURN_ERRORS = Counter("assistant_turn_errors_total", "Turns that raised in the bot, by channel",
                      ["channel"])
TURN_SECONDS = Histogram("assistant_turn_seconds", "Time from a message's arrival at the "
                         "channel to the bot's last reply, by channel", ["channel"],
                         buckets=(0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 60))
WECHAT_LATE = Counter("assistant_wechat_late_deliveries_total", "WeChat replies that missed the "
                      "5 s window and went out through the customer-service API, by result",
                      ["result"])
WECHAT_API_ERRORS = Counter("assistant_wechat_api_errors_total", "WeChat API answers with a "
                            "non-zero errcode (-1: network, HTTP or unreadable answer), by call "
                            "and errcode", ["call", "errcode"])
# --- action server (actions/) --------------------------------------------------------------
FALLBACKS = Counter("assistant_fallbacks_total", "Times the bot did not understand, by what it did: "
                    "clarification (asked between two guesses), rephrase (asked for other words, no "
                    "guess to offer), handoff (the human route), no_content (nothing to guess from)",
                    ["kind"])
LOOKUPS = Counter("assistant_progress_lookups_total", "Progress lookups by the bot, by outcome "
                  "(found, no_match, locked, unavailable, invalid, not_found)", ["outcome"])
ACTIONS = Counter("assistant_actions_total", "Custom action calls, by action", ["action"])
# --- progress service ----------------------------------------------------------------------
PROGRESS_REQUESTS = Histogram("progress_request_seconds", "Progress service request time, by route "
                              "and status", ["route", "status"],
                              buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5))
SUFFIX_FAILURES = Counter("progress_suffix_failures_total", "Failed ID-suffix checks (wrong suffix "
                          "or unknown number), over all numbers and senders")
SUFFIX_FAILURE_RATE = Gauge("progress_suffix_failures_per_minute", "Failed suffix checks per minute "
                            "over the alarm window")
FAILURE_ALARM = Gauge("progress_failure_alarm", "1 while failed suffix checks over the alarm window "
                      "pass PROGRESS_ALARM_FAILURES_PER_MINUTE, else 0")
LOCKED = Counter("progress_locked_total", "Lookups refused because of the lockout (429)")
# --- web app -------------------------------------------------------------------------------
WEB_REQUESTS = Histogram("web_request_seconds", "Web app request time, by route group and status",
                         ["route", "status"], buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10))

_served = {}
_lock = threading.Lock()


def port_of(variable: str, environ: Mapping[str, str] = os.environ) -> Optional[int]:
    value = (environ.get(variable) or "").strip()
    if not value:
        return None
    try:
        port = int(value)
    except ValueError:
        logger.warning("%s=%r is not a port number: no metrics endpoint", variable, value)
        return None
    return port if 0 < port < 65536 else None


def serve(variable: str, environ: Mapping[str, str] = os.environ) -> Optional[int]:
    """Start the scrape endpoint (GET /metrics, any path in fact) on the port the variable
    names, once per process; returns the port, or None when the variable is unset."""
    port = port_of(variable, environ)
    if port is None:
        return None
    host = (environ.get(HOST_VARIABLE) or "").strip() or DEFAULT_HOST
    with _lock:
        if (host, port) in _served:
            return port
        try:
            _served[(host, port)] = start_http_server(port, addr=host)
        except OSError as error:  # the port is taken: the process still serves its users
            logger.error("metrics endpoint %s:%s could not start: %s", host, port, error)
            return None
    logger.info("metrics on http://%s:%s/metrics", host, port)
    return port


def status_group(status: int) -> str:
    return f"{int(status) // 100}xx" if status else "none"


class FailureAlarm:
    """Failed suffix checks over a sliding window; `record_failure()` per failure.

    `threshold_per_minute` <= 0 switches the alarm off (the counter still counts). The
    flag is re-evaluated on every failure and every `check()` (the metrics scrape, the
    readiness route), so it falls back to 0 once the window has calmed down. One warning
    per window while it is raised: how many failures, never which numbers or senders."""

    def __init__(self, threshold_per_minute: float, window_seconds: float = 300.0,
                 clock: Callable[[], float] = time.monotonic, log: Optional[logging.Logger] = None):
        self.threshold = float(threshold_per_minute)
        self.window = max(1.0, float(window_seconds))
        self.clock = clock
        self.log = log or logger
        self._failures: Deque[float] = collections.deque()
        self._lock = threading.Lock()
        self._warned_at: Optional[float] = None
        self.raised = False

    def _trim(self, now: float) -> None:
        while self._failures and self._failures[0] <= now - self.window:
            self._failures.popleft()

    def rate(self) -> float:
        """Failures per minute over the window."""
        with self._lock:
            self._trim(self.clock())
            return len(self._failures) * 60.0 / self.window

    def record_failure(self) -> bool:
        SUFFIX_FAILURES.inc()
        now = self.clock()
        with self._lock:
            self._failures.append(now)
            # bounded: beyond this many the rate is far past any sane threshold anyway
            limit = max(1000, int(self.threshold * self.window / 60.0) * 4)
            while len(self._failures) > limit:
                self._failures.popleft()
        return self.check()

    def check(self) -> bool:
        now = self.clock()
        with self._lock:
            self._trim(now)
            count = len(self._failures)
            rate = count * 60.0 / self.window
            raised = self.threshold > 0 and rate >= self.threshold
            warn = raised and (self._warned_at is None or now - self._warned_at >= self.window)
            if warn:
                self._warned_at = now
            self.raised = raised
        SUFFIX_FAILURE_RATE.set(rate)
        FAILURE_ALARM.set(1 if raised else 0)
        if warn:
            self.log.warning(
                "failure-rate alarm: %d failed ID-suffix checks in the last %.0f minutes "
                "(%.1f per minute, threshold %.1f): someone may be guessing suffixes across numbers",
                count, self.window / 60.0, rate, self.threshold)
        return raised

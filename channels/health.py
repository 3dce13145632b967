"""Readiness and metrics of the Rasa process (docs/deploy.md, "Readiness" and "Metrics").

Rasa's `/` says the process is up (liveness, what tools/stack.py waits for first); it says
nothing about the stores a turn needs. `GET /webhooks/web/ready` (served by the web
channel, which every credentials file of the project switches on; nginx does not route
it) answers 200 {"status": "ready"} when the model is loaded and the tracker store and
the lock store answer, else 503 {"status": "not ready", "failed": [...]} naming what
failed, never where it is (no URL, no password).

`start_metrics()` starts the process's Prometheus endpoint on RASA_METRICS_PORT (nothing
when unset; core/metrics.py); the web channel calls it once its blueprint is built, i.e.
in the Rasa server only, not in `rasa train` or the tools that import channels/.
"""
import asyncio
import logging
from typing import Any, Dict, List, Tuple

from core import metrics

logger = logging.getLogger(__name__)

METRICS_PORT_VARIABLE = "RASA_METRICS_PORT"
READY_TIMEOUT_SECONDS = 3.0
PROBE_ID = "readiness-probe"  # never a real sender: not a widget, WeChat or console id


def start_metrics() -> None:
    metrics.serve(METRICS_PORT_VARIABLE)


async def _tracker_store_answers(store: Any) -> None:
    # a read of a conversation that does not exist: one query, nothing written
    await store.retrieve(PROBE_ID)


async def _lock_store_answers(store: Any) -> None:
    # Redis: one GET (the client is synchronous: off the loop); in memory: nothing to reach
    await asyncio.to_thread(store.get_lock, PROBE_ID)


async def readiness(app: Any) -> Tuple[int, Dict[str, Any]]:
    """(status, body) of the readiness answer for Rasa's sanic `app`."""
    agent = getattr(getattr(app, "ctx", None), "agent", None)
    failed: List[str] = []
    if agent is None or not agent.is_ready():
        failed.append("model")
    checks = (
        ("tracker_store", getattr(agent, "tracker_store", None), _tracker_store_answers),
        ("lock_store", getattr(agent, "lock_store", None), _lock_store_answers),
    )
    for name, store, check in checks:
        if store is None:
            failed.append(name)
            continue
        try:
            await asyncio.wait_for(check(store), READY_TIMEOUT_SECONDS)
        except Exception as error:  # noqa: BLE001 - any failure is "not ready"
            logger.warning("readiness: %s unreachable (%s)", name, type(error).__name__)
            failed.append(name)
    if failed:
        return 503, {"status": "not ready", "failed": failed}
    return 200, {"status": "ready"}

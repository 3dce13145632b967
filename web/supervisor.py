"""The console's supervisor page (issue 19): what the bot could not answer, grouped.

Routes (registered by web/app.py: `register(app, ...)`)
  GET  /agent/supervisor                 the page (supervisors only: an agent gets 403; no
                                         session: the page, which asks to sign in at /agent)
  POST /agent/api/supervisor/questions   {"since"?, "until"?} dates (Asia/Shanghai, until
                                         included; default the last 4 weeks): clusters of
                                         similar unanswered questions with counts per ISO
                                         week and per reason, largest first
  POST /agent/api/supervisor/export      {"since"?, "until"?, "keys": [...], "clusters": [...]}
                                         the selected questions (by key, or whole clusters by
                                         id) as NLU training candidates: a YAML download in
                                         the format of `make report-unanswered CANDIDATES=1`
Both POSTs need a live session, the session's CSRF token and the supervisor role (401,
403 otherwise); every view, export and refusal is written to the console's audit.

Data: the conversation store named by TRACKER_ENDPOINTS (web/config.py), read only through
core/tracker_reader.py, rows by core/unanswered.py (the report's code), clusters by
core/unanswered_clusters.py. Texts are masked by the report's code before they leave
here. The reading and clustering run in the executor, one at a time per process, so a
large store never stalls the event loop or the other agents' requests.
"""
import asyncio
import datetime as dt
import logging
import threading
from typing import Any, Awaitable, Callable, Dict, Optional, Tuple

from sanic import Sanic, response
from sanic.request import Request

from core.formats import CHINA_TZ
from core.tracker_reader import TrackerReader, open_reader
from core.unanswered_clusters import (candidates_yaml, cluster_view, group_questions, read_rows, reason_totals,
                                      selected_candidates, weeks_between)
from web.agents import SUPERVISOR, AgentStore
from web.config import STATIC_DIR, WebConfig
from web.console import say

logger = logging.getLogger("web.supervisor")

DEFAULT_DAYS = 28  # the last 4 weeks, today included
MAX_DAYS = 366
MAX_SELECTED = 5000  # keys (or cluster ids) in one export
MAX_KEY_CHARS = 500
# said by the page (the bot's texts are in knowledge/; these are for staff only)
FORBIDDEN_TEXT = "只有主管账号可以查看此页。需要时请管理员用 make agent-add ROLE=supervisor 设置。"
BAD_PERIOD_TEXT = "日期格式不对，请用 2026-11-01 这样的日期；开始不能晚于结束，最长 366 天。"
NOTHING_SELECTED_TEXT = "请先勾选要导出的问题。"
FORBIDDEN_PAGE = ("<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
                  "<title>无权访问</title><link rel=\"stylesheet\" href=\"/static/agent.css\"></head>"
                  "<body><main><p class=\"notice\" role=\"alert\">" + FORBIDDEN_TEXT +
                  " <a href=\"/agent\">返回坐席工作台</a></p></main></body></html>")


class PeriodError(ValueError):
    """A period the page cannot show."""


def parse_period(since: Any, until: Any, today: Optional[dt.date] = None) -> Tuple[dt.date, dt.date]:
    """(first day, last day) in Asia/Shanghai; default the last DEFAULT_DAYS days."""
    today = today or dt.datetime.now(CHINA_TZ).date()

    def day(value: Any, default: dt.date) -> dt.date:
        if value in (None, ""):
            return default
        if not isinstance(value, str) or len(value) > 10:
            raise PeriodError(value)
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise PeriodError(value) from None

    last = day(until, today)
    first = day(since, last - dt.timedelta(days=DEFAULT_DAYS - 1))
    if first > last or (last - first).days >= MAX_DAYS:
        raise PeriodError(f"{first}..{last}")
    return first, last


def period_bounds(first: dt.date, last: dt.date) -> Tuple[float, float]:
    """[since, until) as unix times: from the first day's midnight to the day after the last."""
    start = dt.datetime.combine(first, dt.time(), CHINA_TZ)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), CHINA_TZ)
    return start.timestamp(), end.timestamp()


class Supervisor:
    """The page's data, computed off the event loop. `reader_factory` opens the store
    (tests pass their own); the reader is opened on first use and kept."""

    def __init__(self, tracker_endpoints: str,
                 reader_factory: Optional[Callable[[str], TrackerReader]] = None):
        self.tracker_endpoints = tracker_endpoints
        self.reader_factory = reader_factory or open_reader
        self._reader: Optional[TrackerReader] = None
        self._opening = threading.Lock()
        self._busy = asyncio.Semaphore(1)  # created per app: sanic runs one loop per process

    def reader(self) -> TrackerReader:
        with self._opening:
            if self._reader is None:
                self._reader = self.reader_factory(self.tracker_endpoints)
            return self._reader

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()

    def _grouping(self, first: dt.date, last: dt.date):
        since, until = period_bounds(first, last)
        rows = read_rows(self.reader(), since, until)
        return rows, group_questions(rows), weeks_between(since, until)

    def questions(self, first: dt.date, last: dt.date) -> Dict[str, Any]:
        rows, grouping, weeks = self._grouping(first, last)
        return {
            "kind": "questions", "since": first.isoformat(), "until": last.isoformat(), "weeks": weeks,
            "rows": len(rows), "totals": reason_totals(rows),
            "questions": sum(cluster.count for cluster in grouping.clusters),
            "left_out": grouping.left_out,
            "clusters": [cluster_view(cluster) for cluster in grouping.clusters],
        }

    def export(self, first: dt.date, last: dt.date, keys, cluster_ids) -> Tuple[str, int]:
        """(the YAML, how many questions it holds) for the selected keys and clusters."""
        _rows, grouping, _weeks = self._grouping(first, last)
        wanted = set(keys)
        for cluster in grouping.clusters:
            if cluster.id in cluster_ids:
                wanted.update(question.key for question in cluster.questions)
        groups = selected_candidates(grouping.clusters, wanted)
        return candidates_yaml(groups), sum(group.count for group in groups)

    async def run(self, function, *args):
        """One computation at a time per process, in the executor."""
        async with self._busy:
            return await asyncio.get_running_loop().run_in_executor(None, function, *args)


def _strings(value: Any) -> Optional[list]:
    """A list of at most MAX_SELECTED short strings, else None."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_SELECTED:
        return None
    if not all(isinstance(item, str) and 0 < len(item) <= MAX_KEY_CHARS for item in value):
        return None
    return value


def register(app: Sanic, config: WebConfig, store: AgentStore,
             off_loop: Callable[..., Awaitable[Any]],
             session_of: Callable[[Request], Awaitable[Optional[Tuple[str, str]]]],
             signed_in: Callable[[Request], Awaitable[Tuple[Any, Any]]],
             json_body: Callable[[Request], dict],
             supervisor: Optional[Supervisor] = None) -> Supervisor:
    supervisor = supervisor or Supervisor(config.tracker_endpoints)
    app.ctx.supervisor = supervisor

    @app.after_server_stop
    async def close_reader(_app, _loop):
        supervisor.close()

    async def is_supervisor(user: str) -> bool:
        return await off_loop(store.role, user) == SUPERVISOR

    async def refused(user: str, subject: str):
        await off_loop(store.audit, user, "supervisor", subject, "forbidden")
        logger.info("agent %s refused the supervisor page", user)

    @app.get("/agent/supervisor")
    async def supervisor_page(request: Request):
        session = await session_of(request)
        if session and not await is_supervisor(session[0]):
            await refused(session[0], "page")
            return response.html(FORBIDDEN_PAGE, status=403)
        # no session: the page itself asks to sign in at /agent (its API answers 401)
        return response.html((STATIC_DIR / "supervisor.html").read_text(encoding="utf-8"))

    async def supervisor_request(request: Request, subject: str):
        """(user, first day, last day, body) or (None, refusal)."""
        session, refusal = await signed_in(request)
        if refusal:
            return None, refusal
        user = session[0]
        if not await is_supervisor(user):
            await refused(user, subject)
            return None, response.json({"error": FORBIDDEN_TEXT}, status=403)
        body = json_body(request)
        try:
            first, last = parse_period(body.get("since"), body.get("until"))
        except PeriodError:
            return None, response.json({"error": BAD_PERIOD_TEXT}, status=400)
        return (user, first, last, body), None

    def unavailable(user: str, kind: str, subject: str):
        logger.exception("supervisor page: the conversation store cannot be read")
        return off_loop(store.audit, user, kind, subject, "unavailable")

    @app.post("/agent/api/supervisor/questions")
    async def supervisor_questions(request: Request):
        accepted, refusal = await supervisor_request(request, "questions")
        if refusal:
            return refusal
        user, first, last, _body = accepted
        subject = f"{first}..{last}"
        try:
            answer = await supervisor.run(supervisor.questions, first, last)
        except Exception:  # noqa: BLE001 - never a 500 for a view (the store down, a bad endpoints file)
            await unavailable(user, "supervisor_view", subject)
            return response.json({"kind": "unavailable", "message": say("unavailable")})
        await off_loop(store.audit, user, "supervisor_view", subject, "shown")
        logger.info("supervisor %s viewed the unanswered questions %s", user, subject)
        return response.json(answer)

    @app.post("/agent/api/supervisor/export")
    async def supervisor_export(request: Request):
        accepted, refusal = await supervisor_request(request, "export")
        if refusal:
            return refusal
        user, first, last, body = accepted
        keys, cluster_ids = _strings(body.get("keys")), _strings(body.get("clusters"))
        if keys is None or cluster_ids is None:
            return response.json({"error": NOTHING_SELECTED_TEXT}, status=400)
        if not keys and not cluster_ids:
            return response.json({"error": NOTHING_SELECTED_TEXT}, status=400)
        subject = f"{first}..{last}"
        try:
            text, count = await supervisor.run(supervisor.export, first, last, keys, set(cluster_ids))
        except Exception:  # noqa: BLE001 - never a 500 for an export
            await unavailable(user, "supervisor_export", subject)
            return response.json({"kind": "unavailable", "message": say("unavailable")})
        await off_loop(store.audit, user, "supervisor_export", f"{subject} {count} questions", "exported")
        logger.info("supervisor %s exported %d questions as training candidates", user, count)
        filename = f"nlu-candidates_{first}_{last}.yml"
        return response.raw(text.encode("utf-8"), content_type="application/x-yaml; charset=utf-8",
                            headers={"Content-Disposition": f'attachment; filename="{filename}"'})

    return supervisor

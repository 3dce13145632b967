"""HTTP API of the progress service (sanic). Run: python -m progress_service.app

Endpoints (details in openapi.yaml, served at /openapi.json):
  GET  /health                                         liveness: the process answers
  GET  /ready                                          readiness: the database answers (503 if not)
  GET  /openapi.json
  GET  /api/v1/applications/{application_no}          X-API-Key + (X-Id-Last4 | X-Agent-Token)
  POST /api/v1/applications/{application_no}/status   X-API-Key = the agency's key
Numbers, ID suffixes and names never reach the log: the access log is off and the
service writes its own request line with the number masked, a timestamp and the request
id the caller sent (X-Request-Id, core/request_id.py). Metrics (request time, failed suffix
checks, the global failure-rate alarm) on PROGRESS_METRICS_PORT (core/metrics.py).
"""
import asyncio
import contextvars
import dataclasses
import functools
import json
import logging
import pathlib
import re
import sys
import time
from typing import Optional

import yaml
import sqlalchemy as sa
from sanic import Sanic
from sanic.response import json as json_response

from core import log_privacy, metrics, request_id
from core.agent_tokens import verify_agent_token
from core.formats import (
    SANE_APPLICATION_NO, normalize_application_no, normalize_id_last4, now_china,
)
from core.privacy import mask_application_no, same_secret
from progress_service import settings as config
from progress_service.db import SchemaNotCurrent, make_engine
from progress_service.events import EventSender
from progress_service.importer import check_fields
from progress_service.store import ProgressStore

logger = logging.getLogger("progress_service")
OPENAPI_PATH = pathlib.Path(__file__).with_name("openapi.yaml")
_NUMBER_IN_PATH = re.compile(r"(/applications/)([^/]+)")


@dataclasses.dataclass
class ServiceSettings:
    database_url: str
    api_key: str
    agency_key: str
    id_hash_key: str
    agent_secret: str
    max_failures: int = 5
    window_seconds: int = 900
    identity_max_failures: int = 15
    number_max_failures: int = 20
    trust_seconds: int = 90 * 24 * 3600
    # status-change events to the bot (issue 19; progress_service/events.py)
    events_url: str = ""
    events_secret: str = ""
    events_timeout: float = 3.0
    # the global failure-rate alarm (core/metrics.FailureAlarm); 0 switches it off
    alarm_failures_per_minute: float = 20.0
    alarm_window_seconds: float = 300.0

    @classmethod
    def from_config(cls) -> "ServiceSettings":
        return cls(
            database_url=config.DATABASE_URL,
            api_key=config.API_KEY,
            agency_key=config.AGENCY_KEY,
            id_hash_key=config.ID_HASH_KEY,
            agent_secret=config.AGENT_SECRET,
            max_failures=config.LOCKOUT_MAX_FAILURES,
            window_seconds=config.LOCKOUT_WINDOW_SECONDS,
            identity_max_failures=config.LOCKOUT_IDENTITY_MAX_FAILURES,
            number_max_failures=config.LOCKOUT_NUMBER_MAX_FAILURES,
            trust_seconds=config.LOCKOUT_TRUST_DAYS * 24 * 3600,
            events_url=config.EVENTS_URL,
            events_secret=config.EVENTS_SECRET,
            events_timeout=config.EVENTS_TIMEOUT_SECONDS,
            alarm_failures_per_minute=config.ALARM_FAILURES_PER_MINUTE,
            alarm_window_seconds=config.ALARM_WINDOW_MINUTES * 60,
        )

    def missing(self):
        return [name for name in ("api_key", "agency_key", "id_hash_key", "agent_secret")
                if not getattr(self, name)]


def _key_matches(presented: Optional[str], expected: str) -> bool:
    # as bytes: a non-ASCII or undecodable header is a wrong key (401), not a 500
    return same_secret(presented, expected)


READY_TIMEOUT_SECONDS = 3.0


def _route_name(request) -> str:
    """The route's template (never the number in the path), for the metrics' label."""
    try:
        template = request.uri_template
    except Exception:  # noqa: BLE001 - no route matched
        template = None
    return template or "other"


def _error(status: int, code: str, message: str, **extra):
    return json_response({"error": code, "message": message, **extra}, status=status)


def create_app(settings: ServiceSettings, name: str = "progress_service",
               configure_logging: bool = True) -> Sanic:
    app = Sanic(name, configure_logging=configure_logging)
    app.config.FALLBACK_ERROR_FORMAT = "json"
    store = ProgressStore(
        make_engine(settings.database_url), settings.id_hash_key,
        max_failures=settings.max_failures, window_seconds=settings.window_seconds,
        identity_max_failures=settings.identity_max_failures,
        number_max_failures=settings.number_max_failures, trust_seconds=settings.trust_seconds,
    )
    app.ctx.store = store
    events = EventSender(settings.events_url, settings.events_secret, settings.events_timeout)
    app.ctx.events = events
    alarm = metrics.FailureAlarm(settings.alarm_failures_per_minute, settings.alarm_window_seconds,
                                 log=logger)
    app.ctx.alarm = alarm
    openapi = yaml.safe_load(OPENAPI_PATH.read_text(encoding="utf-8"))

    async def in_thread(function, *args):
        # SQLAlchemy is blocking: keep it off the event loop.
        # (in this request's context: the store's log lines carry its request id)
        return await asyncio.get_running_loop().run_in_executor(
            None, functools.partial(contextvars.copy_context().run, function, *args))

    @app.middleware("request")
    async def start_timer(request):
        request.ctx.started = time.monotonic()
        # every request of a keep-alive connection runs in one task: set, never inherit
        request.ctx.request_id = request_id.from_headers(request.headers)
        request_id.set_current(request.ctx.request_id)

    @app.middleware("response")
    async def log_request(request, response):
        started = getattr(request.ctx, "started", time.monotonic())
        path = _NUMBER_IN_PATH.sub(
            lambda m: m.group(1) + mask_application_no(normalize_application_no(m.group(2))),
            request.path)
        elapsed = time.monotonic() - started
        status = response.status if response else 0
        logger.info("%s %s -> %s (%.0f ms)", request.method, path, status or "-", elapsed * 1000)
        metrics.PROGRESS_REQUESTS.labels(route=_route_name(request),
                                         status=metrics.status_group(status)).observe(elapsed)
        if response is not None:
            response.headers[request_id.HEADER] = request_id.current()
        request_id.set_current("")

    @app.exception(Exception)
    async def unexpected(request, exception):
        status = getattr(exception, "status_code", 500) or 500
        if status >= 500:
            logger.error("internal error: %s", type(exception).__name__)
            return _error(500, "internal", "服务内部错误")
        return _error(status, "http_error", type(exception).__name__)

    @app.get("/health")
    async def health(request):
        return json_response({"status": "ok"})

    def database_answers() -> bool:
        with store.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return True

    @app.get("/ready")
    async def ready(request):
        """Readiness: the database answers within a few seconds. 503 names what failed,
        never where it is (no URL, no password)."""
        failed = []
        try:
            await asyncio.wait_for(in_thread(database_answers), READY_TIMEOUT_SECONDS)
        except Exception as error:  # noqa: BLE001 - any failure is "not ready"
            logger.warning("readiness: database unreachable (%s)", type(error).__name__)
            failed.append("database")
        alarm.check()  # the gauge falls back once the window has calmed down
        if failed:
            return json_response({"status": "not ready", "failed": failed}, status=503)
        return json_response({"status": "ready"})

    @app.get("/openapi.json")
    async def openapi_document(request):
        return json_response(openapi)

    @app.get("/api/v1/applications/<application_no:str>")
    async def get_application(request, application_no: str):
        if not _key_matches(request.headers.get("x-api-key"), settings.api_key):
            return _error(401, "unauthorized", "缺少或错误的 X-API-Key")
        number = normalize_application_no(application_no)
        if not SANE_APPLICATION_NO.match(number):
            return _error(400, "bad_application_no", "申请编号格式不对")
        agent_token = request.headers.get("x-agent-token")
        if agent_token is not None:
            agent = verify_agent_token(agent_token, settings.agent_secret)
            if not agent:
                logger.warning("rejected agent token for number %s", mask_application_no(number))
                return _error(401, "bad_agent_token", "坐席凭证无效或已过期")
            outcome = await in_thread(store.lookup_agent, number, agent)
            if outcome.kind == "found":
                return json_response({"mode": "agent", **outcome.application})
            return _error(404, "not_found", "没有这个申请编号")
        id_last4 = normalize_id_last4(request.headers.get("x-id-last4"))
        if not id_last4:
            return _error(400, "bad_id_last4", "X-Id-Last4 应为身份证号最后4位（数字或X）")
        # the bot's hash of who asks (client address or WeChat OpenID), else the caller itself
        sender = request.headers.get("x-sender") or f"ip:{request.remote_addr or request.ip}"
        outcome = await in_thread(store.lookup_public, number, id_last4, sender)
        if outcome.kind == "no_match":
            alarm.record_failure()  # the global failure-rate alarm (issue 16)
        if outcome.kind == "locked":
            metrics.LOCKED.inc()
            response = _error(429, "locked", "验证失败次数过多，请稍后再试",
                              retry_after=outcome.retry_after)
            response.headers["Retry-After"] = str(outcome.retry_after)
            return response
        if outcome.kind == "no_match":
            # the same answer for an unknown number and a wrong suffix
            return _error(404, "no_match", "未查到与该编号和身份证后四位匹配的申请")
        return json_response({"mode": "public", **outcome.application})

    @app.post("/api/v1/applications/<application_no:str>/status")
    async def push_status(request, application_no: str):
        if not _key_matches(request.headers.get("x-api-key"), settings.agency_key):
            return _error(401, "unauthorized", "缺少或错误的 X-API-Key（机构推送密钥）")
        try:
            body = json.loads(request.body or b"{}")
        except (ValueError, UnicodeDecodeError, RecursionError):  # absurd nesting too: a 400
            return _error(400, "bad_json", "请求体不是 JSON")
        if not isinstance(body, dict):
            return _error(400, "bad_json", "请求体应为 JSON 对象")
        body = {key: value for key, value in body.items() if value is not None}
        body["application_no"] = application_no
        if "status_updated_at" not in body:
            body["status_updated_at"] = now_china().isoformat(sep=" ")
        record, errors, _warnings = check_fields(body, require_identity=False)
        if errors:
            return _error(400, "invalid", "；".join(errors), errors=errors)
        try:
            result = await in_thread(store.upsert, record, "push")
        except KeyError:
            return _error(404, "unknown_application",
                          "没有这个申请编号；新申请需同时提供 id_last4 和 applicant_name")
        if result.get("status_changed") and result.get("result") == "updated":
            # subscribers hear of it (issue 19); the push does not wait for the bot
            events.send_later(record.application_no, record.status, str(record.status_updated_at))
        return json_response(result)

    return app


def main() -> int:
    log_privacy.install()
    request_id.configure_logging(logging.INFO)  # ISO timestamps, request ids (LOG_FORMAT=json)
    settings = ServiceSettings.from_config()
    missing = settings.missing()
    if missing:
        print("progress service: set " + ", ".join("PROGRESS_" + m.upper() for m in missing)
              + " (make run generates development values in .state/secrets.env)", file=sys.stderr)
        return 2
    try:
        app = create_app(settings, configure_logging=False)
    except SchemaNotCurrent as error:  # PROGRESS_SCHEMA_AT_START=check (production)
        print(f"progress service: {error}", file=sys.stderr)
        return 2
    metrics.serve("PROGRESS_METRICS_PORT")
    app.run(host=config.HOST, port=config.PORT, access_log=False,
            workers=1, motd=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The web app: widget assets, the demo page, the hotline-agent console and its JSON API.

Routes
  GET  /                      demo page standing for the bureau's site, widget embedded
  GET  /health                {"status": "ok"} (liveness)
  GET  /ready                 readiness: the console's database, Redis when configured, and
                              Rasa answer; else 503 {"status": "not ready", "failed": [...]}
  GET  /widget/widget.js|css  the help widget (embed with one <script> tag); widget.js
                              carries the privacy notice (knowledge/channel_texts.yml)
  GET  /agent                 agent console (sign-in, then one search box)
  POST /agent/api/login       {"username", "password"}       header X-CSRF-Token (cookie agent_csrf)
  GET  /agent/api/me          who is signed in + the session's CSRF token + role (agent|supervisor)
  GET  /agent/supervisor, POST /agent/api/supervisor/questions|export
                              the supervisor page: unanswered questions grouped (web/supervisor.py)
  POST /agent/api/search      {"q"}                            header X-CSRF-Token (session)
  POST /agent/api/conversation {"code"}                        header X-CSRF-Token (session)
                              the conversation behind a code the caller reads out (issue 19):
                              200 turns, 404 wrong code, 410 expired, 429 too many wrong codes
  POST /agent/api/logout                                       header X-CSRF-Token (session)

Limits (web/limits.py, docs/security.md): sign-ins are throttled per account name (a
growing back-off) and per client address (the trusted proxy's, SANIC_REAL_IP_HEADER)
before any password is hashed, and at most AGENT_HASH_CONCURRENCY hashes run at once;
wrong conversation codes per agent; application lookups per agent (10 minutes, 24 hours).
The throttles live in Redis when WEB_STATE_REDIS_URL is set (shared by every replica),
else in bounded memory; sessions, accounts and the audit in AGENT_DATABASE_URL / AGENT_DB.

Every /agent/api/* answer except login is 401 without a live session. State-changing
requests need the CSRF token in a header (a cross-site form cannot set headers, and the
cookies are SameSite=Strict as well). The console page never inserts server or user text
as HTML, and a Content-Security-Policy forbids inline scripts on top of that.
"""
import asyncio
import hashlib
import html
import json
import logging
import math
import secrets
import time
from typing import Dict, Optional, Tuple

import aiohttp
import sqlalchemy as sa
from sanic import Sanic, response
from sanic.exceptions import MethodNotSupported, NotFound
from sanic.request import Request

from assistant.content import privacy_notice
from core import log_privacy, metrics, request_id
from core.conversation_codes import CodeStore, normalize_typed_code
from core.privacy import same_secret, sender_reference
from core.progress_client import ProgressClient
from web import limits
from web.agents import DEVICE_SECONDS, AgentStore, mask
from web.clients import RasaClient
from web.config import STATIC_DIR, WebConfig
from web.console import MAX_QUERY_CHARS, Console, say
from web.supervisor import register as register_supervisor

logger = logging.getLogger("web")

SESSION_COOKIE = "agent_session"
LOGIN_CSRF_COOKIE = "agent_csrf"
DEVICE_COOKIE = "agent_device"
CSRF_HEADER = "X-CSRF-Token"
# the longest a sign-in waits (the per-account back-off's cap, the per-address window):
# console_too_many_failures in knowledge/channel_texts.yml names it
LOGIN_WINDOW_SECONDS = limits.ACCOUNT_MAX_DELAY
# wrong or expired conversation codes per agent and window before the console refuses (429):
# with ~729 million codes, guessing one that is valid stays hopeless
CODE_MAX_FAILURES = 10
CODE_WINDOW_SECONDS = 900
# said by the console (knowledge/ holds the other console texts; these name the settings)
LOOKUP_LIMIT_TEXT = ("按编号查询次数已达上限（每 10 分钟 {per_10_minutes} 次、每 24 小时 {per_day} 次），"
                     "请稍后再试；确有需要请联系管理员。")
BUSY_TEXT = "登录的人太多，请稍等几秒再试。"

# path -> (file in web/static, content type); nothing else under web/static is served
ASSETS = {
    "/widget/widget.js": ("widget.js", "application/javascript; charset=utf-8"),
    "/widget/widget.css": ("widget.css", "text/css; charset=utf-8"),
    "/static/demo.css": ("demo.css", "text/css; charset=utf-8"),
    "/static/agent.css": ("agent.css", "text/css; charset=utf-8"),
    "/static/console-common.js": ("console-common.js", "application/javascript; charset=utf-8"),
    "/static/agent.js": ("agent.js", "application/javascript; charset=utf-8"),
    "/static/supervisor.css": ("supervisor.css", "text/css; charset=utf-8"),
    "/static/supervisor.js": ("supervisor.js", "application/javascript; charset=utf-8"),
}

# widget.js holds this marker once; the served file has the privacy notice there instead
# (a JSON string literal), so the text stays in knowledge/ and names the configured period
NOTICE_MARKER = b"/*PRIVACY_NOTICE*/null"

READY_TIMEOUT_SECONDS = 3.0

AGENT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def widget_script(retention_days: float) -> bytes:
    """widget.js with the privacy notice naming `retention_days` in place of the marker, as
    a JavaScript string literal (JSON, ASCII only: no character can end the literal or the
    script); `null` (no notice) if the text cannot be rendered."""
    try:
        notice = json.dumps(privacy_notice(retention_days), ensure_ascii=True).encode("ascii")
    except Exception:  # noqa: BLE001 - the widget still works; validate-knowledge catches it
        logger.exception("privacy notice cannot be rendered; the widget shows none")
        notice = b"null"
    return (STATIC_DIR / "widget.js").read_bytes().replace(NOTICE_MARKER, notice, 1)


def _json_body(request: Request) -> dict:
    try:
        body = request.json
    except Exception:  # malformed JSON
        return {}
    return body if isinstance(body, dict) else {}


def device_id(token: str) -> str:
    """What the throttle keys a browser by: part of the token's hash, never the token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def too_many_failures(wait_seconds: float) -> str:
    """console_too_many_failures, naming the minutes actually left (it says the longest)."""
    text = say("too_many_failures")
    minutes = max(1, math.ceil(wait_seconds / 60))
    return text.replace(f"{LOGIN_WINDOW_SECONDS // 60} 分钟", f"{minutes} 分钟", 1)


def create_app(config: Optional[WebConfig] = None, name: Optional[str] = None) -> Sanic:
    config = config or WebConfig.from_env()
    app = Sanic(name or f"web_{secrets.token_hex(4)}")
    app.config.FALLBACK_ERROR_FORMAT = "json"
    store = AgentStore(config.agent_store_location, idle_seconds=config.session_idle_seconds,
                       max_seconds=config.session_max_seconds)
    console = Console(
        RasaClient(config.rasa_url, config.rasa_auth_token, config.outbound_timeout),
        ProgressClient(config.progress_url, config.progress_api_key, config.outbound_timeout),
        agent_secret=config.progress_agent_secret,
    )
    counters = limits.counters(config.state_redis_url, config.state_redis_prefix)
    sign_in = limits.SignInGuard(counters, address_limit=config.signin_address_limit)
    code_throttle = limits.WindowLimit(counters, "code", CODE_MAX_FAILURES, CODE_WINDOW_SECONDS)
    hash_gate = limits.HashGate(config.hash_concurrency, config.hash_wait_seconds)
    lookup_limits = [(config.lookups_per_10_minutes, 600), (config.lookups_per_day, 86400)]
    codes: Dict[str, CodeStore] = {}  # opened on first use: a database down at start is no crash
    app.ctx.store, app.ctx.console, app.ctx.web_config = store, console, config
    app.ctx.counters, app.ctx.hash_gate = counters, hash_gate

    @app.after_server_stop
    async def close_state(_app, _loop):
        if isinstance(counters, limits.RedisCounters):
            await counters.close()
        store.close()

    def set_cookie(resp, name: str, value: str, http_only: bool, max_age: Optional[int] = None):
        resp.cookies[name] = value
        cookie = resp.cookies[name]
        cookie["path"] = "/agent"
        cookie["samesite"] = "Strict"
        if http_only:
            cookie["httponly"] = True
        if config.cookie_secure:
            cookie["secure"] = True
        if max_age is not None:
            cookie["max-age"] = max_age

    async def off_loop(function, *args):
        """SQLite calls (sessions, audit, passwords) run in the executor, not on the loop."""
        return await asyncio.get_running_loop().run_in_executor(None, function, *args)

    def client_address(request: Request) -> str:
        try:
            return request.remote_addr or request.ip or ""
        except Exception:  # noqa: BLE001 - a malformed forwarding header is just the peer
            return request.ip or ""

    async def session_of(request: Request) -> Optional[Tuple[str, str]]:
        return await off_loop(store.touch_session, request.cookies.get(SESSION_COOKIE, ""))

    def unauthorized():
        return response.json({"error": say("login_required")}, status=401)

    def csrf_ok(request: Request, expected: str) -> bool:
        supplied = request.headers.get(CSRF_HEADER, "")
        return same_secret(supplied, expected)  # as bytes: a non-ASCII header is a 403, not a 500

    async def signed_in(request: Request):
        """(session, None) for a signed-in agent whose request carries the session's CSRF
        token; else (None, the 401 or 403 to answer). For every state-changing console API."""
        session = await session_of(request)
        if not session:
            return None, unauthorized()
        if not csrf_ok(request, session[1]):
            return None, response.json({"error": say("bad_csrf")}, status=403)
        return session, None

    # the supervisor page (issue 19): its routes, audited like the console's
    register_supervisor(app, config, store, off_loop, session_of, signed_in, _json_body)

    # --- request ids, metrics, readiness (docs/deploy.md) -----------------------------
    @app.on_request
    async def start_request(request: Request):
        request.ctx.started = time.monotonic()
        request_id.set_current(request_id.from_headers(request.headers))  # nginx's $request_id

    def database_answers() -> bool:
        with store.engine.connect() as db:
            db.execute(sa.text("SELECT 1"))
        return True

    async def redis_answers() -> bool:
        return bool(await counters._redis().ping())

    async def rasa_answers() -> bool:
        timeout = aiohttp.ClientTimeout(total=READY_TIMEOUT_SECONDS)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(config.rasa_url.rstrip("/") + "/") as answer:
                return answer.status == 200

    @app.get("/ready")
    async def ready(_request):
        """What the console needs: its database, Redis (when configured) and Rasa. The 503
        names what failed, never where it is (no URL, no password)."""
        checks = {"database": lambda: off_loop(database_answers), "rasa": rasa_answers}
        if isinstance(counters, limits.RedisCounters):
            checks["redis"] = redis_answers
        failed = []
        for name, check in checks.items():
            try:
                if not await asyncio.wait_for(check(), READY_TIMEOUT_SECONDS + 0.5):
                    failed.append(name)
            except Exception as error:  # noqa: BLE001 - any failure is "not ready"
                logger.warning("readiness: %s unreachable (%s)", name, type(error).__name__)
                failed.append(name)
        if failed:
            return response.json({"status": "not ready", "failed": failed}, status=503)
        return response.json({"status": "ready"})

    # --- pages and assets ------------------------------------------------------------
    @app.get("/health")
    async def health(_request):
        return response.json({"status": "ok"})

    @app.get("/favicon.ico")
    async def favicon(_request):
        return response.empty()

    @app.get("/")
    async def demo_page(request: Request):
        page = (STATIC_DIR / "demo.html").read_text(encoding="utf-8")
        # The page loads the widget from its own origin (a relative URL), so it works at
        # whichever name the visitor typed (localhost or 127.0.0.1) and CSP 'self' allows
        # it. The snippet shown for other sites uses the configured public URL; neither
        # ever comes from the request's Host header.
        def widget_tag(src: str) -> str:
            return (f'<script src="{html.escape(src)}" data-server="{html.escape(config.widget_server_url)}"'
                    f' data-title="{html.escape(config.widget_title)}" defer></script>')

        snippet = widget_tag(f"{config.public_url}/widget/widget.js")
        page = page.replace("{{EMBED_SNIPPET}}", html.escape(snippet)).replace(
            "{{WIDGET_TAG}}", widget_tag("/widget/widget.js"))
        resp = response.html(page)
        resp.headers["Content-Security-Policy"] = (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
            f"connect-src 'self' {config.widget_server_url}; frame-ancestors 'self'; base-uri 'none'"
        )
        return resp

    async def asset(request: Request):
        filename, content_type = ASSETS[request.path]
        body = widget_script(config.retention_days) if filename == "widget.js" else (
            STATIC_DIR / filename).read_bytes()
        return response.raw(body, content_type=content_type, headers={"Cache-Control": "no-cache"})

    for path in ASSETS:
        app.add_route(asset, path, methods=["GET"], name="asset_" + path.strip("/").replace("/", "_").replace(".", "_"))

    @app.get("/agent")
    async def agent_page(request: Request):
        resp = response.html((STATIC_DIR / "agent.html").read_text(encoding="utf-8"))
        if not request.cookies.get(LOGIN_CSRF_COOKIE):
            set_cookie(resp, LOGIN_CSRF_COOKIE, secrets.token_urlsafe(32), http_only=False)
        return resp

    # --- console API -----------------------------------------------------------------
    @app.post("/agent/api/login")
    async def login(request: Request):
        if not csrf_ok(request, request.cookies.get(LOGIN_CSRF_COOKIE, "")):
            return response.json({"error": say("page_expired")}, status=403)
        body = _json_body(request)
        username = str(body.get("username") or "").strip()[:64]
        password = str(body.get("password") or "")[:256]
        # the real client: sanic reads it from the trusted proxy's header when
        # SANIC_REAL_IP_HEADER / SANIC_PROXIES_COUNT says which (docs/security.md)
        address = client_address(request)
        device_token = request.cookies.get(DEVICE_COOKIE, "")
        device_owner = await off_loop(store.device_user, device_token)
        # this browser signed in as this account before: its own back-off (a stranger's
        # failures do not lock the agent out here)
        device = (device_id(device_token)
                  if device_owner and device_owner.lower() == username.lower() else "")
        wait = await sign_in.wait_seconds(username, address, device)
        if wait > 0:
            logger.info("agent sign-in throttled for %s", mask(username))
            return response.json({"error": too_many_failures(wait)}, status=429,
                                 headers={"Retry-After": str(math.ceil(wait))})
        ran, valid = await hash_gate.run(lambda: off_loop(store.check_password, username, password))
        if not ran:
            logger.warning("agent sign-in refused: %d password hashes already running", hash_gate.concurrency)
            return response.json({"error": BUSY_TEXT}, status=429, headers={"Retry-After": "5"})
        if not valid:
            await sign_in.failed(username, address, device)
            logger.info("agent sign-in refused for %s", mask(username))
            return response.json({"error": say("bad_login")}, status=401)
        await sign_in.succeeded(username, device)
        if not device:
            device_token = await off_loop(store.remember_device, username)
        token, csrf = await off_loop(store.open_session, username)
        logger.info("agent %s signed in", username)
        resp = response.json({"user": username, "csrf": csrf,
                              "role": await off_loop(store.role, username),
                              "idle_seconds": config.session_idle_seconds})
        set_cookie(resp, SESSION_COOKIE, token, http_only=True)
        set_cookie(resp, DEVICE_COOKIE, device_token, http_only=True, max_age=DEVICE_SECONDS)
        return resp

    @app.get("/agent/api/me")
    async def me(request: Request):
        session = await session_of(request)
        if not session:
            return unauthorized()
        return response.json({"user": session[0], "csrf": session[1],
                              "role": await off_loop(store.role, session[0]),
                              "idle_seconds": config.session_idle_seconds})

    @app.post("/agent/api/search")
    async def search(request: Request):
        session, refused = await signed_in(request)
        if refused:
            return refused
        user = session[0]
        audit_rows = []
        query = str(_json_body(request).get("q") or "")
        number = console.looks_like_application_no(query.strip()[:MAX_QUERY_CHARS])
        reserved = None
        if number:  # a progress lookup: counted per agent before it runs (shared, audited)
            reserved = await off_loop(store.reserve, user, "application", mask(number), lookup_limits)
            if reserved is None:
                logger.warning("agent %s reached the lookup limit", user)
                return response.json({"error": LOOKUP_LIMIT_TEXT.format(
                    per_10_minutes=config.lookups_per_10_minutes, per_day=config.lookups_per_day)},
                    status=429)
        try:
            answer = await console.search(
                user, query, audit=lambda kind, subject, outcome: audit_rows.append((kind, subject, outcome))
            )
        except Exception:  # never a 500 for what an agent typed
            logger.exception("agent search failed")
            answer = {"kind": "unavailable", "query": query[:500],
                      "message": say("search_failed")}
        for kind, subject, outcome in audit_rows:
            if reserved is not None and kind == "application":
                await off_loop(store.finish, reserved, subject, outcome)
                reserved = None
            else:
                await off_loop(store.audit, user, kind, subject, outcome)
        if reserved is not None:  # the lookup failed before it could be audited
            await off_loop(store.finish, reserved, mask(number), "unavailable")
        answer.pop("outcome", None)
        return response.json(answer)

    def find_code(code: str):
        """(row or None, still valid) for a normalised code; read only (no key here)."""
        if "store" not in codes:
            codes["store"] = CodeStore(config.conversation_codes_url)
        found = codes["store"].find(code)
        return found, found is not None and codes["store"].is_valid(found)

    @app.post("/agent/api/conversation")
    async def conversation(request: Request):
        session, refused = await signed_in(request)
        if refused:
            return refused
        user = session[0]
        key = user
        code = normalize_typed_code(_json_body(request).get("code"))
        # the audit names the code by its first 2 characters only: enough to tell two
        # attempts apart, useless for finding the conversation again
        subject = f"{code[:2]}****" if code else ""
        if await code_throttle.blocked(key):
            await off_loop(store.audit, user, "conversation", subject, "rate_limited")
            return response.json({"error": say("code_too_many")}, status=429)
        found, valid = (None, False)
        if code:
            try:
                found, valid = await off_loop(find_code, code)
            except Exception:  # the store is down: say so, never a 500
                logger.exception("conversation codes cannot be read")
                await off_loop(store.audit, user, "conversation", subject, "unavailable")
                return response.json({"kind": "unavailable",
                                      "message": say("code_prefix") + say("unavailable")})
        if not valid:
            outcome = "expired" if found else "wrong_code"
            await code_throttle.failed(key)
            await off_loop(store.audit, user, "conversation", subject, outcome)
            logger.info("agent %s conversation code refused: %s", user, outcome)
            return response.json({"error": say("code_expired" if found else "code_wrong")},
                                 status=410 if found else 404)
        # which conversation, as the hash the progress service knows it by (X-Sender)
        subject += " conv:" + sender_reference(found.sender_id)[:12]
        try:
            answer = await console.conversation(found.sender_id)
        except Exception:  # never a 500 for a code an agent typed
            logger.exception("conversation view failed")
            answer = {"kind": "unavailable", "outcome": "unavailable",
                      "message": say("code_prefix") + say("unavailable")}
        await off_loop(store.audit, user, "conversation", subject, answer.pop("outcome", answer["kind"]))
        logger.info("agent %s viewed a conversation by code: %s", user, answer["kind"])
        answer["expires_at"] = found.expires_at
        return response.json(answer)

    @app.post("/agent/api/logout")
    async def logout(request: Request):
        session, refused = await signed_in(request)
        if refused:
            return refused
        await off_loop(store.close_session, request.cookies.get(SESSION_COOKIE, ""))
        logger.info("agent %s signed out", session[0])
        resp = response.json({"ok": True})
        set_cookie(resp, SESSION_COOKIE, "", http_only=True, max_age=0)
        return resp

    @app.route("/agent/api/<rest:path>", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    async def unknown_api(request: Request, rest: str):
        if not await session_of(request):
            return unauthorized()
        return response.json({"error": "not found"}, status=404)

    @app.exception(MethodNotSupported)
    async def wrong_method(request: Request, _exception):
        if request.path.startswith("/agent/api/") and not await session_of(request):
            return unauthorized()
        return response.json({"error": "method not allowed"}, status=405)

    @app.exception(NotFound)
    async def not_found(_request: Request, _exception):
        # answered here, not by sanic's error page: its format negotiation fails with 500 on
        # a malformed Accept header ("a/b/c"; found by the hostile-input suite)
        return response.json({"error": "not found"}, status=404)

    @app.on_response
    async def security_headers(request: Request, resp):
        started = getattr(request.ctx, "started", None)
        if started is not None:
            try:
                route = request.uri_template or "other"
            except Exception:  # noqa: BLE001 - no route matched
                route = "other"
            metrics.WEB_REQUESTS.labels(route=route, status=metrics.status_group(resp.status)).observe(
                time.monotonic() - started)
        request_id.set_current("")
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "no-referrer")
        if request.path.startswith("/agent"):
            resp.headers["Content-Security-Policy"] = AGENT_CSP
            resp.headers["X-Frame-Options"] = "DENY"
            resp.headers["Cache-Control"] = "no-store"

    return app


def main() -> None:
    log_privacy.install()
    # ISO timestamps and the request id on every line (LOG_FORMAT=json: one object a line)
    request_id.configure_logging(logging.INFO, logger=logger)
    logger.propagate = False
    config = WebConfig.from_env()
    app = create_app(config, name="web")
    metrics.serve("WEB_METRICS_PORT")
    app.run(host=config.host, port=config.port, workers=1, access_log=False)

"""Start the action server: rasa-sdk's app, on loopback by default, behind a shared secret.

`python -m actions.server [--port 5055]` replaces `rasa run actions --actions actions`
(tools/stack.py starts it this way). rasa-sdk 3.6 has no host option (`rasa run actions`
binds 0.0.0.0, or $SANIC_HOST) and no authentication, so a tracker posted to :5055 by
anyone would make action_check_progress a proxy holding the progress service key.
Here rasa-sdk's own `create_app` is wrapped, not patched:

- host: ACTIONS_HOST, default 127.0.0.1 (set 0.0.0.0 only when Rasa runs on another
  machine, behind a firewall);
- ACTION_SERVER_TOKEN (required, the server refuses to start without it): every request
  but GET /health and GET /ready must carry it as the `token` query parameter, which is what Rasa sends
  for `action_endpoint: {url: ..., token: ...}` (rasa/utils/endpoints.py EndpointConfig);
  anything else gets 401 before rasa-sdk reads the body.

Operations (docs/deploy.md): GET /ready answers 503 when the progress service does not
answer its /health (cheap: no lookup, no key); each action call is logged with the turn's
request id, which the channel put into the user message's metadata (core/request_id.py),
and the progress client passes it on; metrics on ACTIONS_METRICS_PORT (core/metrics.py).
"""
import argparse
import asyncio
import hmac
import json
import logging
import os
import sys
import zlib
from typing import Optional

from rasa_sdk import utils
from rasa_sdk.endpoint import create_app
from rasa_sdk.plugin import plugin_manager
from sanic import response

from actions import config
from core import log_privacy, metrics, request_id
from core.progress_client import ProgressClient

logger = logging.getLogger(__name__)

TOKEN_VARIABLE = "ACTION_SERVER_TOKEN"
HOST_VARIABLE = "ACTIONS_HOST"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5055
TOKEN_PARAMETER = "token"  # EndpointConfig.token_name's default
# the stack's health and readiness checks; they say nothing but ok / not ready
OPEN_PATHS = {"/health", "/ready"}
READY_TIMEOUT_SECONDS = 3.0


def token_matches(given, expected: str) -> bool:
    """Constant-time comparison of bytes (a non-ASCII value must not raise)."""
    if not isinstance(given, str) or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def action_call_of(request) -> dict:
    """The action call Rasa posted (rasa-sdk's reading of it: JSON, deflated or not); {}
    when it is something else (rasa-sdk answers that itself)."""
    try:
        body = request.body or b""
        if request.headers.get("Content-Encoding") == "deflate":
            body = zlib.decompress(body)
        call = json.loads(body)
    except Exception:  # noqa: BLE001 - not ours to judge
        return {}
    return call if isinstance(call, dict) else {}


def build_app(token: str, package: str = "actions",
              progress: Optional[ProgressClient] = None):
    """rasa-sdk's app for `package`, with the shared-secret check in front of it."""
    if not token:
        raise ValueError(f"{TOKEN_VARIABLE} is empty: the action server never runs open")
    app = create_app(package, cors_origins=None)

    @app.middleware("request")
    async def require_token(request):
        request_id.set_current("")  # keep-alive: nothing of the previous call
        if request.path in OPEN_PATHS:
            return None
        if token_matches(request.args.get(TOKEN_PARAMETER), token):
            if request.path == "/webhook" and request.method == "POST":
                call = action_call_of(request)
                # the turn's id from the channel (the user message's metadata), else a new one
                request_id.set_current(request_id.from_tracker(call.get("tracker")) or request_id.new())
                action = call.get("next_action")
                action = action if isinstance(action, str) and action.isidentifier() else "unknown"
                metrics.ACTIONS.labels(action=action).inc()
                logger.info("running %s", action)
            return None
        return response.json({"error": "unauthorized"}, status=401)

    progress = progress or ProgressClient(config.PROGRESS_SERVICE_URL, "", READY_TIMEOUT_SECONDS)

    @app.get("/ready")
    async def ready(_request):
        """Ready when the progress service answers its /health (no lookup, no key)."""
        try:
            answers = await asyncio.wait_for(asyncio.to_thread(progress.health),
                                             READY_TIMEOUT_SECONDS + 1)
        except Exception:  # noqa: BLE001 - any failure is "not ready"
            answers = False
        if not answers:
            logger.warning("readiness: the progress service does not answer")
            return response.json({"status": "not ready", "failed": ["progress_service"]}, status=503)
        return response.json({"status": "ready"})

    return app


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int,
                        default=int(os.environ.get("ACTIONS_PORT") or DEFAULT_PORT))
    parser.add_argument("--host", default=os.environ.get(HOST_VARIABLE) or DEFAULT_HOST)
    parser.add_argument("--actions", default="actions", help="package the actions live in")
    args = parser.parse_args(argv)

    token = os.environ.get(TOKEN_VARIABLE, "")
    if not token:
        print(f"actions.server: {TOKEN_VARIABLE} is not set; refusing to start an "
              "unauthenticated action server", file=sys.stderr)
        return 2
    log_privacy.install()
    logging.getLogger("matplotlib").setLevel(logging.WARN)
    utils.configure_colored_logging(os.environ.get("LOG_LEVEL", "INFO"))
    utils.update_sanic_log_level()
    request_id.install()  # the turn's request id on every log line of an action call
    app = build_app(token, args.actions)
    metrics.serve("ACTIONS_METRICS_PORT")
    plugin_manager().hook.attach_sanic_app_extensions(app=app)
    logger.info("Action endpoint is up and running on http://%s:%s (token required)",
                args.host, args.port)
    app.run(args.host, args.port, workers=utils.number_of_sanic_workers())
    return 0


if __name__ == "__main__":
    sys.exit(main())

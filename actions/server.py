"""Start the action server: rasa-sdk's app, on loopback by default, behind a shared secret.

`python -m actions.server [--port 5055]` replaces `rasa run actions --actions actions`
(tools/stack.py starts it this way). rasa-sdk 3.6 has no host option (`rasa run actions`
binds 0.0.0.0, or $SANIC_HOST) and no authentication, so a tracker posted to :5055 by
anyone would make action_check_progress a proxy holding the progress service key.
Here rasa-sdk's own `create_app` is wrapped, not patched:

- host: ACTIONS_HOST, default 127.0.0.1 (set 0.0.0.0 only when Rasa runs on another
  machine, behind a firewall);
- ACTION_SERVER_TOKEN (required, the server refuses to start without it): every request
  but GET /health must carry it as the `token` query parameter, which is what Rasa sends
  for `action_endpoint: {url: ..., token: ...}` (rasa/utils/endpoints.py EndpointConfig);
  anything else gets 401 before rasa-sdk reads the body.
"""
import argparse
import hmac
import logging
import os
import sys

from rasa_sdk import utils
from rasa_sdk.endpoint import create_app
from rasa_sdk.plugin import plugin_manager
from sanic import response

from core import log_privacy

logger = logging.getLogger(__name__)

TOKEN_VARIABLE = "ACTION_SERVER_TOKEN"
HOST_VARIABLE = "ACTIONS_HOST"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5055
TOKEN_PARAMETER = "token"  # EndpointConfig.token_name's default
OPEN_PATHS = {"/health"}  # the stack's health check; says nothing but {"status": "ok"}


def token_matches(given, expected: str) -> bool:
    """Constant-time comparison of bytes (a non-ASCII value must not raise)."""
    if not isinstance(given, str) or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def build_app(token: str, package: str = "actions"):
    """rasa-sdk's app for `package`, with the shared-secret check in front of it."""
    if not token:
        raise ValueError(f"{TOKEN_VARIABLE} is empty: the action server never runs open")
    app = create_app(package, cors_origins=None)

    @app.middleware("request")
    async def require_token(request):
        if request.path in OPEN_PATHS:
            return None
        if token_matches(request.args.get(TOKEN_PARAMETER), token):
            return None
        return response.json({"error": "unauthorized"}, status=401)

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
    app = build_app(token, args.actions)
    plugin_manager().hook.attach_sanic_app_extensions(app=app)
    logger.info("Action endpoint is up and running on http://%s:%s (token required)",
                args.host, args.port)
    app.run(args.host, args.port, workers=utils.number_of_sanic_workers())
    return 0


if __name__ == "__main__":
    sys.exit(main())

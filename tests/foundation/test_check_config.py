"""`make check-config` (tools/check_config.py): a good production environment passes, and
each problem, introduced alone, fails it by name; development mode only lists them.
Also the settings it checks: CORS_ORIGINS and BIND_HOST reach the commands tools/stack.py
and tools/cluster.py build."""
import http.client
import json
import os
import pathlib
import secrets
import subprocess
import sys

import pytest

import tools.cluster
from core.devsecrets import ensure_dev_secrets
from core.status_subscriptions import DATABASE_URL_ENV as SUBSCRIPTIONS_URL_ENV
from tools import check_config
from tools.cluster import ClusterSettings, build_cluster
from tools.stack import StackSettings, build_services

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _good_environ(state_dir: pathlib.Path) -> dict:
    environ = {name: secrets.token_urlsafe(32) for name in check_config.SECRETS}
    environ.update({
        "ENVIRONMENT": "production",
        "DB_PASSWORD": secrets.token_urlsafe(16), "REDIS_PASSWORD": secrets.token_urlsafe(16),
        "DB_HOST": "db.internal", "REDIS_HOST": "redis.internal",
        "CORS_ORIGINS": "https://www.nanchong.example.gov.cn, https://ybj.nanchong.example.gov.cn",
        "CLUSTER_PUBLIC_URL": "https://help.nanchong.example.gov.cn",
        "PROGRESS_DATABASE_URL": "postgresql://progress:pw@db.internal:5432/progress",
        SUBSCRIPTIONS_URL_ENV: "postgresql://mzmtb:pw@db.internal:5432/mzmtb",
        "CLUSTER_STATE_DIR": str(state_dir),
    })
    return environ


@pytest.fixture()
def good(tmp_path):
    """(environment, the development secrets file of `make run` in that state folder)."""
    dev_file = tmp_path / "secrets.env"
    ensure_dev_secrets(dev_file, {}, names=check_config.SECRETS)
    return _good_environ(tmp_path), [dev_file]


def _codes(environ, dev_files):
    return [problem.code for problem in check_config.check(environ, dev_files)]


def test_a_good_production_environment_passes(good, capsys):
    environ, dev_files = good
    assert _codes(environ, dev_files) == []
    assert check_config.main(["--production"], environ) == 0
    assert "no problem" in capsys.readouterr().out


def _with_channel(tmp_path, extra):
    path = tmp_path / "credentials.yml"
    path.write_text((ROOT / "deploy" / "credentials.production.yml").read_text(encoding="utf-8") + extra,
                    encoding="utf-8")
    return str(path)


def _endpoints(tmp_path, transform):
    path = tmp_path / "endpoints.yml"
    path.write_text(transform((ROOT / "deploy" / "endpoints.production.yml").read_text(encoding="utf-8")),
                    encoding="utf-8")
    return str(path)


PROBLEMS = {
    # name: (change of the good environment, the one problem expected)
    "schema migrated by the starting service": (lambda env, tmp, dev: env.update(PROGRESS_SCHEMA_AT_START="migrate"),
                                                "progress-schema-at-start"),
    "development secret": (lambda env, tmp, dev: env.update(RASA_AUTH_TOKEN=dev["RASA_AUTH_TOKEN"]),
                           "dev-secret:RASA_AUTH_TOKEN"),
    "development key under another name": (lambda env, tmp, dev: env.update(PROGRESS_ID_HASH_KEY=dev["PROGRESS_API_KEY"]),
                                           "dev-secret:PROGRESS_ID_HASH_KEY"),
    "empty secret": (lambda env, tmp, dev: env.update(ACTION_SERVER_TOKEN=""), "missing-secret:ACTION_SERVER_TOKEN"),
    "unset key": (lambda env, tmp, dev: env.pop("CONVERSATION_CODE_KEY"), "missing-secret:CONVERSATION_CODE_KEY"),
    "short secret": (lambda env, tmp, dev: env.update(PROGRESS_AGENT_SECRET="x" * 31),
                     "short-secret:PROGRESS_AGENT_SECRET"),
    "empty database password": (lambda env, tmp, dev: env.update(DB_PASSWORD=""), "missing-secret:DB_PASSWORD"),
    "short redis password": (lambda env, tmp, dev: env.update(REDIS_PASSWORD="redis"), "short-secret:REDIS_PASSWORD"),
    "CORS *": (lambda env, tmp, dev: env.update(CORS_ORIGINS="*"), "cors-wildcard"),
    "CORS * among origins": (lambda env, tmp, dev: env.update(CORS_ORIGINS="https://a.example.gov.cn,*"),
                             "cors-wildcard"),
    "CORS unset": (lambda env, tmp, dev: env.pop("CORS_ORIGINS"), "cors-unset"),
    "CORS plain http": (lambda env, tmp, dev: env.update(CORS_ORIGINS="http://www.example.gov.cn"), "cors-not-https"),
    "SQLite tracker store": (lambda env, tmp, dev: env.update(RASA_ENDPOINTS=_endpoints(
        tmp, lambda text: text.replace('dialect: "postgresql"', 'dialect: "sqlite"'))), "sqlite:tracker"),
    "no tracker store": (lambda env, tmp, dev: env.update(RASA_ENDPOINTS=_endpoints(
        tmp, lambda text: text.replace("tracker_store:", "unused_tracker_store:"))), "tracker-in-memory"),
    "the development endpoints.yml": (lambda env, tmp, dev: env.update(RASA_ENDPOINTS=str(ROOT / "endpoints.yml")),
                                      ["sqlite:tracker", "lock-store-not-redis"]),
    "in-memory lock store": (lambda env, tmp, dev: env.update(RASA_ENDPOINTS=_endpoints(
        tmp, lambda text: text.replace("type: redis", "type: in_memory"))), "lock-store-not-redis"),
    "SQLite progress database": (lambda env, tmp, dev: env.update(PROGRESS_DATABASE_URL="sqlite:////srv/progress.db"),
                                 "sqlite:progress"),
    "progress database unset": (lambda env, tmp, dev: env.pop("PROGRESS_DATABASE_URL"), "sqlite:progress"),
    "SQLite console database": (lambda env, tmp, dev: env.update(AGENT_DATABASE_URL="sqlite:////srv/agents.db"),
                                "sqlite:console"),
    "SQLite codes database": (lambda env, tmp, dev: env.update(CONVERSATION_CODES_DATABASE_URL="sqlite:///c.db"),
                              "sqlite:codes"),
    "another shared database on SQLite": (lambda env, tmp, dev: env.update({SUBSCRIPTIONS_URL_ENV: "sqlite:///s.db"}),
                                          f"sqlite:{SUBSCRIPTIONS_URL_ENV}"),
    "a malformed CORS origin": (lambda env, tmp, dev: env.update(CORS_ORIGINS="https://www.example.gov.cn/help"),
                                "cluster-invalid"),
    "insecure cookies": (lambda env, tmp, dev: env.update(AGENT_COOKIE_SECURE="0"), "cookies-insecure"),
    "plain-http public URL": (lambda env, tmp, dev: env.update(CLUSTER_PUBLIC_URL="http://help.example.gov.cn"),
                              "public-url-not-https:CLUSTER_PUBLIC_URL"),
    "REST channel": (lambda env, tmp, dev: env.update(RASA_CREDENTIALS=_with_channel(
        tmp, "\nchannels.masked.MaskedRestInput:\n")), "open-channel:channels.masked.MaskedRestInput"),
    "Rasa's own REST channel": (lambda env, tmp, dev: env.update(RASA_CREDENTIALS=_with_channel(tmp, "\nrest:\n")),
                                "open-channel:rest"),
    "socket.io channel": (lambda env, tmp, dev: env.update(RASA_CREDENTIALS=_with_channel(
        tmp, "\nchannels.masked.MaskedSocketIOInput:\n  session_persistence: true\n")),
        "open-channel:channels.masked.MaskedSocketIOInput"),
    "processes bound to every address": (lambda env, tmp, dev: env.update(BIND_HOST="0.0.0.0"),
                                         "api-exposed:bind-host"),
}


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_each_problem_alone_fails_production_by_name(name, good, tmp_path, capsys):
    environ, dev_files = good
    change, expected = PROBLEMS[name]
    dev = dict(line.split("=", 1) for line in dev_files[0].read_text(encoding="utf-8").splitlines()
               if "=" in line and not line.startswith("#"))
    change(environ, tmp_path, dev)
    expected = expected if isinstance(expected, list) else [expected]
    assert _codes(environ, dev_files) == expected
    # the command: production fails and names it; development lists it and passes
    assert check_config.main(["--production"], environ) == 1
    out = capsys.readouterr().out
    assert all(code in out for code in expected)
    environ.pop("ENVIRONMENT")
    assert check_config.main([], environ) == 0
    assert "development mode" in capsys.readouterr().out
    environ["ENVIRONMENT"] = "production"
    assert check_config.main([], environ) == 1


def test_no_secret_value_is_printed(good, capsys):
    environ, dev_files = good
    environ["PROGRESS_AGENT_SECRET"] = "s" * 20
    environ["DB_PASSWORD"] = "hunter2"
    check_config.main(["--production"], environ)
    out = capsys.readouterr().out
    assert "short-secret:PROGRESS_AGENT_SECRET" in out and "short-secret:DB_PASSWORD" in out
    assert "s" * 20 not in out and "hunter2" not in out
    assert environ["RASA_AUTH_TOKEN"] not in out


def test_the_rasa_api_published_by_nginx_is_found(good, tmp_path, monkeypatch):
    """An nginx template that forwards Rasa's HTTP API (/model/…) publicly fails."""
    environ, dev_files = good
    text = tools.cluster.TEMPLATE.read_text(encoding="utf-8")
    marker = "        location / { return 404; }"
    assert marker in text
    edited = tmp_path / "nginx.template"
    edited.write_text(text.replace(marker, "        location /model/ { proxy_pass http://rasa; }\n" + marker, 1),
                      encoding="utf-8")
    monkeypatch.setattr(tools.cluster, "TEMPLATE", edited)
    assert _codes(environ, dev_files) == ["api-exposed:nginx:/model/"]


def test_make_check_config_runs_the_check(good):
    environ, _ = good
    done = subprocess.run([sys.executable, "-m", "tools.check_config"], cwd=ROOT, capture_output=True, text=True,
                          env={**environ, "PYTHONPATH": str(ROOT), "CORS_ORIGINS": "*"}, timeout=120)
    assert done.returncode == 1 and "cors-wildcard" in done.stdout, done.stdout + done.stderr
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "check-config: install\n\t@$(PY) -m tools.check_config" in makefile


# --- the settings checked: CORS_ORIGINS and BIND_HOST through tools/stack.py and tools/cluster.py ---

def _cors(command):
    start = command.index("--cors") + 1
    end = next(i for i in range(start, len(command)) if command[i].startswith("--"))
    return command[start:end]


def test_rasa_allows_the_demo_page_at_both_loopback_names_by_default(tmp_path):
    settings = StackSettings(state_dir=tmp_path, web_port=18080)
    rasa = next(s for s in build_services(settings, {}, with_stand_in=False) if s.name == "rasa")
    assert _cors(rasa.command) == ["http://localhost:18080", "http://127.0.0.1:18080"]


def test_rasa_allows_exactly_the_configured_origins(tmp_path):
    settings = StackSettings(state_dir=tmp_path)
    environ = {"CORS_ORIGINS": "https://www.example.gov.cn/, https://ybj.example.gov.cn:8443"}
    rasa = next(s for s in build_services(settings, environ, with_stand_in=False) if s.name == "rasa")
    assert _cors(rasa.command) == ["https://www.example.gov.cn", "https://ybj.example.gov.cn:8443"]
    assert "*" not in rasa.command
    with pytest.raises(ValueError, match="not an origin"):
        build_services(settings, {"CORS_ORIGINS": "https://www.example.gov.cn/help"}, with_stand_in=False)


def test_every_process_binds_bind_host_and_is_reached_on_loopback(tmp_path):
    settings = StackSettings.from_env({"BIND_HOST": "0.0.0.0", "STACK_STATE_DIR": str(tmp_path)})
    services = {s.name: s for s in build_services(settings, {})}
    assert services["rasa"].command[services["rasa"].command.index("--interface") + 1] == "0.0.0.0"
    assert services["actions"].env["ACTIONS_HOST"] == "0.0.0.0"
    assert services["progress"].env["PROGRESS_HOST"] == "0.0.0.0"
    assert services["web"].env["WEB_HOST"] == "0.0.0.0"
    for service in services.values():
        assert service.health_url.startswith("http://127.0.0.1:"), service.health_url
    assert StackSettings.from_env({}).host == "127.0.0.1"


def test_the_cluster_takes_bind_host_and_cors_from_the_environment(tmp_path):
    settings = ClusterSettings.from_env({"BIND_HOST": "10.0.0.5", "CLUSTER_STATE_DIR": str(tmp_path)})
    services, env = build_cluster(settings, {"CORS_ORIGINS": "https://www.example.gov.cn"})
    by_name = {s.name: s for s in services}
    rasa = by_name["rasa-1"].command
    assert rasa[rasa.index("--interface") + 1] == "10.0.0.5"
    assert _cors(rasa) == ["https://www.example.gov.cn"]
    assert by_name["web-2"].health_url.startswith("http://10.0.0.5:")
    conf = (tmp_path / "nginx" / "nginx.conf").read_text(encoding="utf-8")
    assert "server 10.0.0.5:5005 " in conf and "listen 10.0.0.5:5004;" in conf
    # default: the public address, as visitors type it on this machine
    services, _ = build_cluster(ClusterSettings(state_dir=tmp_path / "b"), {})
    rasa = next(s for s in services if s.name == "rasa-2").command
    assert _cors(rasa) == ["http://localhost:8000", "http://127.0.0.1:8000"]


def test_a_running_rasa_answers_cors_only_for_the_configured_origins(stack_factory):
    """Through the started stack: the browser's preflight and the POST of the widget on an
    allowed site get Access-Control-Allow-Origin for that site; any other origin (another
    site, `null`) gets none, so a browser there cannot read the replies; never a 5xx."""
    allowed = "https://www.nanchong.example.gov.cn"
    handle = stack_factory(environ={**os.environ, "CORS_ORIGINS": f"{allowed}, https://ybj.example.gov.cn"})
    port = handle.settings.rasa_port

    def request(method, origin, body=None):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Origin": origin, "Content-Type": "application/json"}
        if method == "OPTIONS":
            headers.update({"Access-Control-Request-Method": "POST",
                            "Access-Control-Request-Headers": "content-type"})
        connection.request(method, "/webhooks/web/webhook", body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        connection.close()
        return response.status, response.getheader("Access-Control-Allow-Origin")

    status, allow = request("OPTIONS", allowed)
    assert status < 300 and allow == allowed
    message = json.dumps({"sender": "web-" + "a" * 32, "message": "你好"})
    status, allow = request("POST", allowed, message)
    assert status == 200 and allow == allowed
    for origin in ("https://evil.example.com", "null", "http://127.0.0.1:8080", "https://www.nanchong.example.gov.cn.evil.com"):
        for method, body in (("OPTIONS", None), ("POST", message)):
            status, allow = request(method, origin, body)
            assert status < 500 and allow in (None, ""), (origin, method, status, allow)

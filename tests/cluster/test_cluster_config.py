"""What `make run-cluster` builds (tools/cluster.py), without starting anything: the
processes, who talks to whom, and what nginx exposes."""
import pathlib
import re

import pytest

from tools.cluster import ClusterSettings, build_cluster, cluster_environ, render_nginx

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _cluster(tmp_path, environ=None, **overrides):
    settings = ClusterSettings(state_dir=tmp_path, **overrides)
    services, env = build_cluster(settings, environ if environ is not None else {})
    return settings, {service.name: service for service in services}, env


def test_two_replicas_of_rasa_and_of_the_action_server_behind_nginx(tmp_path):
    settings, services, env = _cluster(tmp_path)
    assert list(services) == ["progress", "actions-1", "actions-2", "rasa-1", "rasa-2", "web-1", "web-2", "nginx"]
    for index, port in enumerate(settings.rasa_ports, 1):
        command = services[f"rasa-{index}"].command
        assert command[command.index("--port") + 1] == str(port)
        # every replica calls the action servers through nginx's loopback upstream
        assert services[f"rasa-{index}"].env["ACTION_ENDPOINT_URL"] == "http://127.0.0.1:5050/webhook"
        assert command[command.index("--interface") + 1] == "127.0.0.1"
    endpoints = (tmp_path / "endpoints.runtime.yml").read_text(encoding="utf-8")
    assert "PrivateSQLTrackerStore" in endpoints and "type: redis" in endpoints
    assert "token: ${ACTION_SERVER_TOKEN}" in endpoints
    credentials = (tmp_path / "credentials.runtime.yml").read_text(encoding="utf-8")
    assert "channels.web.WebInput" in credentials and "Masked" not in credentials.split("No secrets here.")[1]
    for index, port in enumerate(settings.all_web_ports, 1):
        web = services[f"web-{index}"]
        assert web.env["RASA_URL"] == "http://127.0.0.1:5004"
        assert web.env["WIDGET_SERVER_URL"] == "http://127.0.0.1:8000"
        assert web.env["WEB_PORT"] == str(port) and web.health_url.endswith(f":{port}/health")
    # the store settings default to this machine's PostgreSQL and Redis; what replicas share
    # besides the tracker store (WeChat, console, hotline codes) goes to the same two
    assert env["DB_HOST"] == "127.0.0.1" and env["REDIS_PORT"] == "6379"
    assert env["WECHAT_STATE_REDIS_URL"] == env["WEB_STATE_REDIS_URL"] == "redis://127.0.0.1:6379/0"
    assert env["AGENT_DATABASE_URL"] == env["CONVERSATION_CODES_DATABASE_URL"] == \
        "postgresql://postgres@127.0.0.1:5432/mzmtb"
    nginx = (tmp_path / "nginx" / "nginx.conf").read_text(encoding="utf-8")
    for port in settings.all_web_ports:
        assert f"server 127.0.0.1:{port} " in nginx


def test_settings_come_from_the_environment(tmp_path):
    settings = ClusterSettings.from_env({
        "CLUSTER_PORT": "9000", "RASA_PORTS": "6001, 6002,6003", "ACTIONS_PORTS": "6101",
        "CLUSTER_STATE_DIR": str(tmp_path), "LOCK_STORE_PREFIX": "blue"})
    assert settings.public_port == 9000 and settings.rasa_ports == (6001, 6002, 6003)
    services, _ = build_cluster(settings, {})
    names = [service.name for service in services]
    assert names.count("actions-1") == 1 and "rasa-3" in names and "actions-2" not in names
    assert 'key_prefix: "blue"' in (tmp_path / "endpoints.runtime.yml").read_text(encoding="utf-8")
    with pytest.raises(ValueError):
        ClusterSettings(state_dir=tmp_path, lock_prefix="not:alnum").runtime_endpoints()


def test_the_redis_password_is_percent_encoded_in_the_wechat_state_url():
    env = cluster_environ({"REDIS_PASSWORD": "p@ss/word", "REDIS_HOST": "redis"})
    assert env["WECHAT_STATE_REDIS_URL"] == "redis://:p%40ss%2Fword@redis:6379/0"
    assert cluster_environ({"WECHAT_STATE_REDIS_URL": "redis://x:1/2"})["WECHAT_STATE_REDIS_URL"] == "redis://x:1/2"


def test_nginx_exposes_only_channels_widget_demo_and_console(tmp_path):
    settings, services, _ = _cluster(tmp_path)
    conf = (tmp_path / "nginx" / "nginx.conf").read_text(encoding="utf-8")
    public = conf.split("listen 127.0.0.1:8000;")[1].split("    server {")[0]
    locations = sorted(line.strip().split("{")[0].strip() for line in public.splitlines()
                       if line.strip().startswith("location"))
    assert locations == sorted([
        "location = /webhooks/web/webhook", "location = /webhooks/web/feedback",
        "location = /webhooks/web/status-changes", "location = /webhooks/wechat/webhook",
        "location = /", "location = /favicon.ico", "location /widget/", "location /static/",
        "location = /agent", "location /agent/", "location /"])
    assert "location / { return 404; }" in public
    assert "location /socket.io/" not in conf and "rasa_socketio" not in conf  # none in production
    assert not re.search(r"\{\{\w+\}\}", conf)
    assert not [line for line in conf.splitlines() if line.strip().startswith(("#@socketio", "#@root"))]


def test_socketio_is_routed_when_the_credentials_switch_it_on(tmp_path):
    _, _, _ = _cluster(tmp_path, credentials=ROOT / "credentials.yml")
    conf = (tmp_path / "nginx" / "nginx.conf").read_text(encoding="utf-8")
    assert "location /socket.io/" in conf and "upstream rasa_socketio" in conf
    assert "hash $remote_addr consistent;" in conf


def test_workers_drop_to_nobody_only_when_started_by_root(tmp_path):
    settings = ClusterSettings(state_dir=tmp_path)
    assert "user nobody nogroup;" in render_nginx(settings, False, as_root=True).read_text()
    assert "user " not in render_nginx(settings, False, as_root=False).read_text().split("events")[0]

"""Each process of the stack gets only the environment it needs (tools/process_env.py,
docs/security.md "Each process gets only its own secrets")."""
import ast
import pathlib
import re

import pytest

from tools.cluster import ClusterSettings, build_cluster
from tools.process_env import KNOWN_SECRETS, child_environment
from tools.stack import StackSettings, build_services

ROOT = pathlib.Path(__file__).resolve().parents[2]
VARIABLE = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")

SECRETS = ("PROGRESS_API_KEY", "PROGRESS_AGENCY_KEY", "PROGRESS_ID_HASH_KEY", "PROGRESS_AGENT_SECRET",
           "RASA_AUTH_TOKEN", "ACTION_SERVER_TOKEN", "CONVERSATION_CODE_KEY")
# process -> the secrets it holds; every other one of SECRETS it must not hold
HOLDS = {
    "rasa": {"RASA_AUTH_TOKEN", "ACTION_SERVER_TOKEN"},
    "actions": {"PROGRESS_API_KEY", "ACTION_SERVER_TOKEN", "CONVERSATION_CODE_KEY"},
    "web": {"PROGRESS_API_KEY", "PROGRESS_AGENT_SECRET", "RASA_AUTH_TOKEN"},
    "progress": {"PROGRESS_API_KEY", "PROGRESS_AGENCY_KEY", "PROGRESS_ID_HASH_KEY", "PROGRESS_AGENT_SECRET"},
}
# the settings modules each process reads its environment in (docs/architecture.md)
SETTINGS_MODULES = {
    "rasa": ["channels/config.py", "wechat_channel/config.py", "core/retention.py"],
    "actions": ["actions/config.py", "actions/server.py", "core/conversation_codes.py"],
    "web": ["web/config.py", "core/retention.py"],
    "progress": ["progress_service/settings.py"],
}
PARENT = {
    **{name: f"value-of-{name}" for name in SECRETS},
    "PATH": "/usr/bin:/bin", "HOME": "/home/someone", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
    "PYTHONHASHSEED": "0", "SANIC_REAL_IP_HEADER": "x-real-ip",
    "UNRELATED_SETTING": "x", "AWS_SECRET_ACCESS_KEY": "not-ours", "SSH_AUTH_SOCK": "/tmp/agent",
    "WECHAT_TOKEN": "wechat-token", "WECHAT_APPSECRET": "wechat-secret", "PROGRESS_EVENTS_SECRET": "events",
    "PROGRESS_LOCKOUT_MAX_FAILURES": "7", "AGENT_LOOKUPS_PER_DAY": "9",
    "CONVERSATION_PURGE_INTERVAL_MINUTES": "0", "CONVERSATION_RETENTION_DAYS": "12",
    "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2",
}


def environments(tmp_path, parent=PARENT):
    services = build_services(StackSettings(state_dir=tmp_path), parent)
    return {service.name: child_environment(service.environment, parent, service.env)
            for service in services}


def test_each_process_holds_its_own_secrets_and_no_other(tmp_path):
    envs = environments(tmp_path)
    assert set(envs) == set(HOLDS)
    for process, env in envs.items():
        held = {name for name in SECRETS if env.get(name)}
        assert held == HOLDS[process], process
        assert not any(name in env for name in set(SECRETS) - HOLDS[process]), process
    # the values are the deployment's, not replaced by development ones
    assert envs["progress"]["PROGRESS_ID_HASH_KEY"] == "value-of-PROGRESS_ID_HASH_KEY"
    assert envs["web"]["PROGRESS_AGENT_SECRET"] == "value-of-PROGRESS_AGENT_SECRET"
    # WeChat's credentials only in the process that runs the WeChat channel
    assert envs["rasa"]["WECHAT_APPSECRET"] == "wechat-secret"
    assert not any("WECHAT_APPSECRET" in envs[name] for name in ("actions", "web", "progress"))
    # the status events' secret (WeChat is on here) only in their sender and receiver
    assert {name for name, env in envs.items() if env.get("PROGRESS_EVENTS_SECRET")} == {"rasa", "progress"}


def test_development_secrets_are_split_the_same_way(tmp_path):
    """No secret in the environment: the stack generates them into secrets.env and hands
    each process its own."""
    envs = environments(tmp_path, {"PATH": "/usr/bin"})
    for process, env in envs.items():
        assert {name for name in SECRETS if env.get(name)} == HOLDS[process], process


def test_what_every_process_needs_and_what_its_settings_read_pass_and_nothing_else(tmp_path):
    envs = environments(tmp_path)
    for process, env in envs.items():
        for name in ("PATH", "HOME", "LANG", "LC_ALL", "PYTHONHASHSEED", "SANIC_REAL_IP_HEADER"):
            assert env[name] == PARENT[name], (process, name)
        for name in ("UNRELATED_SETTING", "AWS_SECRET_ACCESS_KEY", "SSH_AUTH_SOCK"):
            assert name not in env, (process, name)
    assert envs["progress"]["PROGRESS_LOCKOUT_MAX_FAILURES"] == "7"
    assert "PROGRESS_LOCKOUT_MAX_FAILURES" not in envs["rasa"]
    assert envs["web"]["AGENT_LOOKUPS_PER_DAY"] == "9"
    assert "AGENT_LOOKUPS_PER_DAY" not in envs["actions"]
    assert envs["rasa"]["CONVERSATION_PURGE_INTERVAL_MINUTES"] == "0"
    assert envs["rasa"]["TF_CPP_MIN_LOG_LEVEL"] == "2"
    assert "TF_CPP_MIN_LOG_LEVEL" not in envs["progress"]
    for process in ("rasa", "actions", "web"):  # each names the retention in its notices
        assert envs[process]["CONVERSATION_RETENTION_DAYS"] == "12"


@pytest.mark.parametrize("process", sorted(SETTINGS_MODULES))
def test_every_variable_a_settings_module_reads_reaches_its_process(tmp_path, process):
    """Derived from the source: a setting added to a settings module reaches its process
    without touching the stack (unless it is another process's secret)."""
    service = next(s for s in build_services(StackSettings(state_dir=tmp_path), {}) if s.name == process)
    for module in SETTINGS_MODULES[process]:
        tree = ast.parse((ROOT / module).read_text(encoding="utf-8"))
        names = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
                 and isinstance(node.value, str) and VARIABLE.match(node.value)}
        assert names, module
        for name in names - (KNOWN_SECRETS - service.environment.secrets):
            assert service.environment.allows(name), (module, name)


def test_the_rasa_process_gets_the_variables_its_endpoints_file_names(tmp_path):
    settings = StackSettings(state_dir=tmp_path, endpoints=ROOT / "deploy" / "endpoints.production.yml")
    parent = {**PARENT, "DB_HOST": "db", "DB_PASSWORD": "db-password", "REDIS_PASSWORD": "redis-password"}
    services = {s.name: s for s in build_services(settings, parent)}
    rasa = child_environment(services["rasa"].environment, parent, services["rasa"].env)
    assert rasa["DB_PASSWORD"] == "db-password" and rasa["REDIS_PASSWORD"] == "redis-password"
    progress = child_environment(services["progress"].environment, parent, services["progress"].env)
    assert "DB_PASSWORD" not in progress and "REDIS_PASSWORD" not in progress


def test_the_cluster_splits_secrets_the_same_way_and_nginx_gets_none(tmp_path):
    settings = ClusterSettings(state_dir=tmp_path, nginx="/bin/true")
    services, env = build_cluster(settings, PARENT)
    by_name = {service.name: service for service in services}
    assert {"rasa-1", "rasa-2", "actions-1", "actions-2", "web-1", "web-2", "progress", "nginx"} <= set(by_name)
    for name, service in by_name.items():
        child = child_environment(service.environment, env, service.env)
        process = name.split("-")[0]
        expected = HOLDS.get(process, set())
        assert {secret for secret in SECRETS if child.get(secret)} == expected, name
        if process in ("rasa", "web"):  # both read the tracker store's endpoints file
            assert child["DB_HOST"] == "127.0.0.1" and "DB_PASSWORD" in child, name
        elif process in HOLDS:
            assert "DB_HOST" not in child and "DB_PASSWORD" not in child, name
    nginx = child_environment(by_name["nginx"].environment, env, by_name["nginx"].env)
    assert set(nginx) <= {"PATH", "HOME", "LANG", "LC_ALL", "PYTHONHASHSEED", "PYTHONPATH"}


def _environ_of(pid: int) -> dict:
    raw = pathlib.Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {key.decode(): value.decode("utf-8", "replace") for key, value in pairs}


def test_the_running_processes_hold_only_their_own_secrets(running_stack):
    parent = running_stack.environ
    processes = running_stack.stack.processes
    assert set(HOLDS) <= set(processes)
    for process in HOLDS:
        env = _environ_of(processes[process].pid)
        present = {name for name in SECRETS if env.get(name)}
        assert present == HOLDS[process], (process, sorted(present))
        for name in HOLDS[process] & {"RASA_AUTH_TOKEN", "PROGRESS_API_KEY", "PROGRESS_AGENCY_KEY",
                                      "PROGRESS_ID_HASH_KEY", "PROGRESS_AGENT_SECRET"}:
            assert env[name] == parent[name], (process, name)  # the stack's own values
        # none of the other processes' secret values under any name either
        foreign = {parent[name] for name in SECRETS if name in parent and name not in HOLDS[process]}
        assert not foreign & set(env.values()), process

"""The paper deployment artefacts (deploy/compose.yml, deploy/docker/*.Dockerfile,
deploy/helm/rasa-values.yml) against the topology `make run-cluster` runs and tests.

No container is built or run (no registry is reachable here): the files are parsed (YAML;
Dockerfiles instruction by instruction) and every expectation is derived from
tools/cluster.py's own data (build_cluster with the compose file's environment, its
settings, the production endpoints and credentials files, the modules each process
imports), so the test fails when the cluster and the artefacts drift apart."""
import inspect
import json
import pathlib
import re
import secrets
import subprocess
import sys
import urllib.parse
from typing import Dict, List, Set

import pytest
import rasa
import rasa_sdk
import yaml

from tools import check_config, run_service
from tools.cluster import NGINX, STORE_DEFAULTS, TEMPLATE, ClusterSettings, build_cluster, prepare_store
from tools.stack import VENV_BIN

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yml"
HELM = DEPLOY / "helm" / "rasa-values.yml"
PRODUCTION_ENDPOINTS = DEPLOY / "endpoints.production.yml"
PRODUCTION_CREDENTIALS = DEPLOY / "credentials.production.yml"
STORES = {"postgres", "redis"}
ONE_TIME = {"migrate"}
ENTRYPOINT = ["python", "-m", "tools.run_service"]
APP_ROOT = "/app"   # WORKDIR of every image
_REF = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def _chosen() -> Dict[str, str]:
    """What a deployer puts in the env file: good values for every required setting."""
    chosen = {name: secrets.token_urlsafe(32) for name in check_config.SECRETS}
    chosen.update({name: secrets.token_hex(12) for name in check_config.PASSWORDS})
    chosen.update({"CLUSTER_PUBLIC_URL": "https://help.nanchong.example.gov.cn",
                   "CORS_ORIGINS": "https://www.nanchong.example.gov.cn",
                   "MODEL_VERSION": "20261203T124609Z"})
    return chosen


def _interpolate(value, chosen: Dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR:?error} with the env file `chosen`."""
    def one(match):
        name, kind, rest = match.group(1), match.group(2) or "", match.group(3) or ""
        if name in chosen and chosen[name] != "":
            return chosen[name]
        if kind.endswith("-"):
            return rest
        if kind.endswith("?"):
            raise AssertionError(f"compose would refuse to start: {name} is required ({rest})")
        return ""
    return _REF.sub(one, str(value))


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose_env(compose, tmp_path_factory) -> Dict[str, str]:
    """The environment every application container gets, the env file filled in; only the
    state folder is moved to a temporary one to build the cluster here."""
    anchor = compose["x-environment"]
    env = {name: _interpolate(value, _chosen()) for name, value in anchor.items()}
    assert env["CLUSTER_STATE_DIR"] == "/state"
    env["CLUSTER_STATE_DIR"] = str(tmp_path_factory.mktemp("compose-state"))
    return env


@pytest.fixture(scope="module")
def cluster(compose_env):
    """(settings, {name: service}) of the cluster tools/cluster.py builds from that environment."""
    settings = ClusterSettings.from_env(compose_env)
    services, _ = build_cluster(settings, compose_env)
    return settings, {service.name: service for service in services}


def yaml_refs(path: pathlib.Path) -> Set[str]:
    """The ${VAR}s a YAML file's values use (comments not included)."""
    found = set()

    def walk(node):
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str):
            found.update(match.group(1) for match in _REF.finditer(node))
    walk(yaml.safe_load(path.read_text(encoding="utf-8")))
    return found


def _app_services(compose) -> Dict[str, dict]:
    return {name: spec for name, spec in compose["services"].items() if name not in STORES | ONE_TIME}


# --- Dockerfiles, instruction by instruction ---------------------------------------------

def parse_dockerfile(path: pathlib.Path) -> List[tuple]:
    """[(INSTRUCTION, arguments)] with continuation lines joined and comments dropped."""
    instructions, pending = [], ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, rest = line.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    assert not pending, f"{path}: a continuation line at the end"
    return instructions


def _image_dockerfiles(compose) -> Dict[str, pathlib.Path]:
    """image name -> the Dockerfile that builds it (from the services' build sections)."""
    images = {}
    for spec in compose["services"].values():
        if "build" in spec:
            assert spec["build"]["context"] == "..", "the repository root is the build context"
            images[spec["image"]] = (COMPOSE.parent / spec["build"]["context"] / spec["build"]["dockerfile"]).resolve()
    return images


def _dockerfile_of(compose, service_name) -> pathlib.Path:
    image = compose["services"][service_name]["image"]
    images = _image_dockerfiles(compose)
    assert image in images, f"{service_name}: no service builds its image {image}"
    return images[image]


def _copied(instructions) -> Dict[str, str]:
    """COPY source -> destination (relative to /app)."""
    copies = {}
    for keyword, rest in instructions:
        if keyword == "COPY":
            *sources, destination = rest.split()
            for source in sources:
                copies[source.rstrip("/")] = destination
    return copies


_PACKAGES_SCRIPT = """
import importlib, json, pathlib, pkgutil, sys
root = pathlib.Path(sys.argv[1]).resolve()
for name in json.loads(sys.argv[2]):
    module = importlib.import_module(name)
    if hasattr(module, "__path__"):  # a package run with -m: all of it (rasa-sdk loads every action module)
        for info in pkgutil.walk_packages(module.__path__, name + "."):
            if not info.name.endswith("__main__"):
                importlib.import_module(info.name)
tops = set()
for module in list(sys.modules.values()):
    path = getattr(module, "__file__", None)
    if path and ".venv" not in path:
        resolved = pathlib.Path(path).resolve()
        if root in resolved.parents:
            tops.add(resolved.relative_to(root).parts[0])
print(json.dumps(sorted(tops)))
"""


def project_packages(modules: List[str]) -> Set[str]:
    """The repository's top-level packages a fresh interpreter loads for `modules`."""
    done = subprocess.run([sys.executable, "-c", _PACKAGES_SCRIPT, str(ROOT), json.dumps(modules)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert done.returncode == 0, done.stderr[-3000:]
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def _modules_of(service) -> List[str]:
    """What the process imports: its `-m` module, and for Rasa the custom components of
    config.yml, the channels of the production credentials (WeChat included) and the
    tracker store class of the production endpoints."""
    command = service.command
    modules = [command[command.index("-m") + 1]] if "-m" in command else []
    if service.name.startswith("rasa-"):
        config = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
        components = [item["name"] for item in config.get("pipeline", []) + config.get("policies", [])]
        channels = list(yaml.safe_load(PRODUCTION_CREDENTIALS.read_text(encoding="utf-8")) or {})
        tracker = yaml.safe_load(PRODUCTION_ENDPOINTS.read_text(encoding="utf-8"))["tracker_store"]["type"]
        classes = [name for name in components + channels + ["channels.wechat.WeChatInput", tracker] if "." in name]
        modules += sorted({name.rsplit(".", 1)[0] for name in classes})
    return modules


def _kind(name: str) -> str:
    return name.split("-")[0]


# --- compose ---------------------------------------------------------------------------------

def test_compose_runs_every_process_of_the_cluster_and_its_stores(compose, cluster):
    _, services = cluster
    assert set(_app_services(compose)) == set(services), "compose services vs tools/cluster.py processes"
    assert STORES <= set(compose["services"]) and "migrate" in compose["services"]
    # the one-time step runs before any replica starts
    for name, spec in _app_services(compose).items():
        if name != "nginx":
            assert spec["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
    assert compose["services"]["migrate"]["restart"] == "no"


def test_each_container_execs_the_process_the_cluster_starts_under_its_name(compose, compose_env, cluster):
    _, services = cluster
    for name, spec in _app_services(compose).items():
        instructions = parse_dockerfile(_dockerfile_of(compose, name))
        entrypoint = [json.loads(rest) for keyword, rest in instructions if keyword == "ENTRYPOINT"]
        assert entrypoint == [ENTRYPOINT], name
        assert spec.get("entrypoint") is None and spec["command"] == [name]
        service, env, _ = run_service.resolve(name, compose_env)
        assert service.command == services[name].command
        # as the Stack gives it: the process's own variables, only the secrets granted to it
        assert all(env[key] == value for key, value in services[name].env.items() if key in env)
        granted = services[name].environment.secrets if services[name].environment else set(env)
        assert {key for key in env if key in check_config.SECRETS} <= set(granted), name
        program = pathlib.Path(service.command[0])
        assert program.parent == VENV_BIN or str(program) == NGINX, service.command
    # what each runs, as in the cluster: Rasa through the launcher, the apps as modules
    assert services["rasa-1"].command[1:3] == ["-m", "channels.launcher"]


def test_only_nginx_is_published_and_every_process_binds_loopback(compose, compose_env, cluster):
    settings, services = cluster
    app = _app_services(compose)
    published = {name: spec.get("ports") for name, spec in compose["services"].items() if spec.get("ports")}
    assert list(published) == ["nginx"]
    (mapping,) = published["nginx"]
    assert mapping.rsplit(":", 1)[1] == str(settings.public_port) and settings.public_host == "0.0.0.0"
    for name, spec in app.items():
        if name != "nginx":
            assert spec["network_mode"] == "service:nginx", name
    assert compose["services"]["migrate"]["network_mode"] == "service:nginx"
    assert settings.internal_host == "127.0.0.1"
    for name, service in services.items():
        if name.startswith("rasa-"):
            assert service.command[service.command.index("--interface") + 1] == "127.0.0.1"
        for key in ("ACTIONS_HOST", "PROGRESS_HOST", "WEB_HOST"):
            assert service.env.get(key, "127.0.0.1") == "127.0.0.1", (name, key)
    # each image documents the ports of its processes
    by_image: Dict[pathlib.Path, Set[int]] = {}
    for name, service in services.items():
        port = urllib.parse.urlsplit(service.health_url).port
        if name == "nginx":
            port = settings.public_port
        by_image.setdefault(_dockerfile_of(compose, name), set()).add(port)
    for dockerfile, ports in by_image.items():
        exposed = {int(p) for keyword, rest in parse_dockerfile(dockerfile) if keyword == "EXPOSE" for p in rest.split()}
        assert exposed == ports, dockerfile.name


def test_the_compose_environment_passes_check_config_and_names_the_stores(compose, compose_env):
    for name, spec in _app_services(compose).items():
        assert spec["environment"] == compose["x-environment"], f"{name}: not the shared environment"
    env = dict(compose_env)
    problems = check_config.check(env, dev_files=[])
    assert problems == [], [str(p) for p in problems]
    # ACTION_ENDPOINT_URL: set per replica by tools/cluster.py (nginx's upstream of the action servers)
    required = set(STORE_DEFAULTS) | set(check_config.SECRETS) | set(check_config.PASSWORDS) | \
        (yaml_refs(PRODUCTION_ENDPOINTS) - {"ACTION_ENDPOINT_URL"}) | {"CORS_ORIGINS", "ENVIRONMENT"}
    assert required <= set(compose["x-environment"]), required - set(compose["x-environment"])
    assert env["ENVIRONMENT"] == "production"
    assert env["DB_HOST"] == "postgres" and env["REDIS_HOST"] == "redis"
    postgres = compose["services"]["postgres"]["environment"]
    assert _interpolate(postgres["POSTGRES_PASSWORD"], _chosen() | {"DB_PASSWORD": "x"}) == "x"



def test_every_database_a_process_gets_is_postgresql_never_a_file_per_container(cluster):
    _, services = cluster
    for service in services.values():
        for name, value in service.env.items():
            if name.endswith("_DATABASE_URL"):
                assert value.startswith("postgresql://"), (service.name, name)


def test_health_checks_are_the_clusters_and_exist_in_the_apps(compose, cluster):
    _, services = cluster
    rasa_server = (pathlib.Path(rasa.__file__).parent / "server.py").read_text(encoding="utf-8")
    sdk_endpoint = (pathlib.Path(rasa_sdk.__file__).parent / "endpoint.py").read_text(encoding="utf-8")
    sources = {
        "rasa": rasa_server + (ROOT / "channels" / "web.py").read_text(encoding="utf-8"),
        "actions": sdk_endpoint + (ROOT / "actions" / "server.py").read_text(encoding="utf-8"),
        "web": (ROOT / "web" / "app.py").read_text(encoding="utf-8"),
        "progress": (ROOT / "progress_service" / "app.py").read_text(encoding="utf-8"),
        "nginx": TEMPLATE.read_text(encoding="utf-8"),
    }
    for name, service in services.items():
        # what the cluster waits for: liveness, and readiness (stores reachable) where it has one
        urls = [service.health_url] + ([service.ready_url] if service.ready_url else [])
        check = compose["services"][name]["healthcheck"]["test"]
        assert check[:3] == ["CMD", "python", "-c"] and check[4:] == urls, name
        for url in urls:
            path = urllib.parse.urlsplit(url).path
            last = "/" + path.rstrip("/").rsplit("/", 1)[-1] if path != "/" else "/"
            route = re.compile(r"\.(get|route)\(\s*['\"](" + re.escape(path) + "|" + re.escape(last)
                               + r")['\"]|location\s+=\s+" + re.escape(path) + r"\s")
            assert route.search(sources[_kind(name)]), f"{name}: no route {path}"


@pytest.fixture(scope="module")
def needed_packages(cluster) -> Dict[str, Set[str]]:
    """image kind -> the repository's packages its processes (and tools/run_service) import."""
    _, services = cluster
    runner = project_packages(["tools.run_service"])
    needed = {}
    for name, service in services.items():
        kind = _kind(name)
        if kind not in needed:
            needed[kind] = runner | (project_packages(_modules_of(service)) if "-m" in service.command else set())
    return needed


def test_each_image_holds_what_its_processes_import(compose, cluster, needed_packages):
    settings, services = cluster
    for name in services:
        dockerfile = _dockerfile_of(compose, name)
        instructions = parse_dockerfile(dockerfile)
        keywords = [keyword for keyword, _ in instructions]
        assert instructions[0][0] == "FROM" and instructions[0][1].startswith("python:3.10"), dockerfile.name
        copies = _copied(instructions)
        assert copies.get("requirements.lock") in ("./", "requirements.lock")
        install = [rest for keyword, rest in instructions if keyword == "RUN" and "pip install" in rest]
        assert install == ["pip install --require-hashes -r requirements.lock"], dockerfile.name
        assert keywords.index("RUN") > list(copies).index("requirements.lock")
        needed = needed_packages[_kind(name)] | {"deploy"}
        if "assistant" in needed:
            needed.add("knowledge")  # assistant/content.py reads knowledge/
        missing = needed - set(copies)
        assert not missing, f"{dockerfile.name} lacks {sorted(missing)} for {name}"
        for package in needed:
            assert copies[package].rstrip("/") == package, (dockerfile.name, package)
        user = [rest for keyword, rest in instructions if keyword == "USER"]
        assert user and user[-1] not in ("root", "0"), dockerfile.name
        cmd = [json.loads(rest) for keyword, rest in instructions if keyword == "CMD"][-1]
        assert len(cmd) == 1 and _kind(cmd[0]) == _kind(name) and cmd[0] in services
        env_line = " ".join(rest for keyword, rest in instructions if keyword == "ENV")
        assert "CLUSTER_STATE_DIR=/state" in env_line and "RASA_TELEMETRY_ENABLED=false" in env_line


def test_the_rasa_image_carries_one_versioned_model_where_the_cluster_loads_it(compose, cluster):
    settings, _ = cluster
    instructions = parse_dockerfile(_dockerfile_of(compose, "rasa-1"))
    assert ("ARG", "MODEL_VERSION") in instructions
    copies = _copied(instructions)
    (source,) = [s for s in copies if s.startswith(".state/models/")]
    assert source == ".state/models/versions/assistant-${MODEL_VERSION}.tar.gz"  # tools/model_versions.py
    target = pathlib.Path(APP_ROOT) / copies[source]
    model = pathlib.Path(APP_ROOT) / settings.model_path.relative_to(ROOT)
    assert target.parent == model or target == model, (target, model)
    assert compose["services"]["rasa-1"]["build"]["args"]["MODEL_VERSION"].startswith("${MODEL_VERSION:?")
    for name in ("rasa-1", "rasa-2", "migrate"):
        assert compose["services"][name]["image"].startswith("mzmtb-rasa:${MODEL_VERSION")


def test_the_nginx_image_has_debians_nginx_where_the_cluster_runs_it(compose):
    instructions = parse_dockerfile(_dockerfile_of(compose, "nginx"))
    assert any(keyword == "RUN" and "apt-get install" in rest and re.search(r"\bnginx\b", rest)
               for keyword, rest in instructions)
    assert NGINX == "/usr/sbin/nginx"  # Debian's package puts it there


def test_the_one_time_step_is_the_clusters_with_make_migrates_migrations(compose, compose_env):
    """compose's `migrate` runs what make run-cluster runs before the replicas: prepare_store,
    which runs tools/migrate.py (make migrate); its image holds what those steps import and
    both migration folders."""
    migrate = compose["services"]["migrate"]
    assert "entrypoint" not in migrate and migrate["command"] == [run_service.PREPARE]
    assert '"tools.migrate"' in inspect.getsource(prepare_store)
    service, _, _ = run_service.resolve(run_service.PREPARE, compose_env)
    assert service is None
    copies = _copied(parse_dockerfile(_dockerfile_of(compose, "migrate")))
    needed = project_packages(["tools.run_service", "tools.migrate", "tools.purge_conversations"])
    needed |= {"migrations", "progress_service", "deploy"}
    assert not needed - set(copies), sorted(needed - set(copies))
    assert (ROOT / "migrations").is_dir() and (ROOT / "progress_service" / "migrations").is_dir()


# --- Helm values for the official Rasa chart ---------------------------------------------

@pytest.fixture(scope="module")
def helm():
    return yaml.safe_load(HELM.read_text(encoding="utf-8"))


def _options(arguments: List[str]) -> Dict[str, List[str]]:
    options, current = {}, None
    for argument in arguments:
        if argument.startswith("--"):
            current = argument
            options[current] = []
        elif current:
            options[current].append(argument)
    return options


def _env_names(entries) -> Set[str]:
    return {entry["name"] for entry in entries}


def test_helm_values_run_the_clusters_rasa_replicas(helm, cluster):
    settings, services = cluster
    rasa = services["rasa-1"]
    assert helm["replicaCount"] == len(settings.rasa_ports)
    assert helm["command"] == ["python", *rasa.command[1:3]]
    ours, theirs = _options(helm["args"]), _options(rasa.command[3:])
    assert set(ours) == set(theirs), "Rasa's options: helm vs tools/cluster.py"
    assert ours["--port"] == [str(helm["applicationSettings"]["port"])] == [str(helm["service"]["port"])]
    assert int(ours["--port"][0]) == settings.rasa_ports[0]
    assert ours["--model"] == [f"{APP_ROOT}/{settings.model_path.relative_to(ROOT)}"]
    assert "*" not in ours["--cors"] and helm["applicationSettings"]["cors"] != "*"
    assert ours["--cors"] == [helm["applicationSettings"]["cors"]]
    # the environment the cluster gives a replica, and what the endpoints file reads
    needed = set(rasa.env) | yaml_refs(PRODUCTION_ENDPOINTS) | {"WECHAT_STATE_REDIS_URL"}
    assert needed <= _env_names(helm["extraEnv"]), needed - _env_names(helm["extraEnv"])
    assert helm["applicationSettings"]["telemetry"]["enabled"] is False
    for entry in helm["extraEnv"]:  # secrets come from a Kubernetes Secret, never the values file
        if entry["name"] in set(check_config.SECRETS) | set(check_config.PASSWORDS):
            assert "secretKeyRef" in entry.get("valueFrom", {}), entry["name"]
    health = urllib.parse.urlsplit(rasa.health_url).path
    assert helm["livenessProbe"]["httpGet"]["path"] == helm["readinessProbe"]["httpGet"]["path"] == health


def test_helm_values_use_the_production_stores_and_channels(helm):
    endpoints = yaml.safe_load(PRODUCTION_ENDPOINTS.read_text(encoding="utf-8"))
    values = helm["applicationSettings"]["endpoints"]
    for ours, theirs in (("trackerStore", "tracker_store"), ("lockStore", "lock_store")):
        assert values[ours]["enabled"] is True
        for key, value in endpoints[theirs].items():
            assert str(values[ours][key]) == str(value), (ours, key)
    credentials = yaml.safe_load(PRODUCTION_CREDENTIALS.read_text(encoding="utf-8"))
    channels = helm["applicationSettings"]["credentials"]["additionalChannelCredentials"]
    assert set(channels) == set(credentials)
    assert not check_config.check_channels(PRODUCTION_CREDENTIALS)
    # Rasa's API only behind its token, and not published: no nginx sidecar, no ingress
    assert helm["applicationSettings"]["enableAPI"] is True and "--enable-api" in helm["args"]
    assert helm["nginx"]["enabled"] is False and helm["ingress"]["enabled"] is False
    assert helm["service"]["type"] == "ClusterIP"
    assert helm["postgresql"]["install"] is False and helm["redis"]["install"] is False
    assert helm["applicationSettings"]["initialModel"] == "" and helm["applicationSettings"]["trainInitialModel"] is False


def test_helm_values_run_the_clusters_action_servers(helm, cluster):
    settings, services = cluster
    actions = services["actions-1"]
    sub = helm["rasa-action-server"]
    assert sub["install"] is True and sub["replicaCount"] == len(settings.actions_ports)
    assert sub["command"] == ["python", *actions.command[1:3]]
    assert sub["args"] == actions.command[3:]
    assert sub["applicationSettings"]["port"] == settings.actions_ports[0]
    assert set(actions.env) <= _env_names(sub["extraEnv"]), set(actions.env) - _env_names(sub["extraEnv"])
    agent_secret = next(e for e in sub["extraEnv"] if e["name"] == "PROGRESS_AGENT_SECRET")
    assert agent_secret["value"] == ""  # never the agent-token secret for the public bot
    health = urllib.parse.urlsplit(actions.health_url).path
    assert sub["livenessProbe"]["httpGet"]["path"] == sub["readinessProbe"]["httpGet"]["path"] == health
    action_path = urllib.parse.urlsplit(services["rasa-1"].env["ACTION_ENDPOINT_URL"]).path
    assert helm["applicationSettings"]["endpoints"]["action"]["endpointURL"].split("?")[0] == action_path


def test_a_container_refuses_to_start_on_a_production_problem_or_an_unknown_name(compose_env, capsys):
    """tools/run_service.py runs check-config first under ENVIRONMENT=production: exit 2,
    the problem named, nothing started; a name the cluster does not have: exit 2."""
    bad = {**compose_env, "CORS_ORIGINS": "*"}
    assert run_service.main(["rasa-1"], bad) == 2
    assert "cors-wildcard" in capsys.readouterr().err
    assert run_service.main(["rasa-9"], compose_env) == 2
    assert "rasa-1" in capsys.readouterr().err  # says which names exist

"""The dependency rule of docs/architecture.md, checked on the source tree.

Layers, lowest first; a module may import its own package and packages of lower layers
only, never a package of its own layer or above:

    core                       pure helpers shared by several processes
    wechat_channel             WeChat protocol (no Rasa)
    assistant                  content: contacts, knowledge, guide, presentation (no Rasa,
                               except the NLU components in assistant/nlu, which Rasa loads)
    actions | channels | web | progress_service     one per process, independent
    tools                      development and operations commands (make run, validate …)
    bench                      benchmarks (use tools/ to build the training data)

plus: progress_service imports core only, and nothing outside it imports it; project
imports sit at module top; no import cycle between modules.
"""
import ast
import pathlib
import subprocess
import sys

import pytest

from tools.stack import StackSettings, build_services

ROOT = pathlib.Path(__file__).resolve().parents[2]

LAYERS = [
    {"core"},
    {"wechat_channel"},
    {"assistant"},
    {"actions", "channels", "web", "progress_service"},
    {"tools"},
    {"bench"},
]
LAYER_OF = {package: index for index, layer in enumerate(LAYERS) for package in layer}
PROJECT = set(LAYER_OF)
# Packages that must not import Rasa, rasa-sdk or sanic (pure, usable anywhere).
PURE = {"core": None, "wechat_channel": None, "assistant": "assistant.nlu"}
FRAMEWORKS = {"rasa", "rasa_sdk", "sanic"}
# The only package progress_service may import.
PROGRESS_ALLOWED = {"core", "progress_service"}


def modules():
    for package in sorted(PROJECT):
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).with_suffix("")
            parts = list(relative.parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield ".".join(parts), path


def imports(path: pathlib.Path, module: str):
    """(imported module, line, at module top) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = set(id(node) for node in tree.body)
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                names = [".".join(base + ([node.module] if node.module else []))]
            else:
                names = [node.module]
        else:
            continue
        for name in names:
            found.append((name, node.lineno, id(node) in top))
    return found


ALL = list(modules())


def test_every_project_package_is_assigned_a_layer():
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()}
    assert packages - {"tests"} <= PROJECT, packages - PROJECT


@pytest.mark.parametrize("module,path", ALL, ids=[m for m, _ in ALL])
def test_imports_point_down_and_sit_at_module_top(module, path):
    package = module.split(".")[0]
    problems = []
    for name, line, at_top in imports(path, module):
        target = name.split(".")[0]
        where = f"{path.relative_to(ROOT)}:{line} imports {name}"
        if target in PROJECT:
            if not at_top:
                problems.append(f"{where} inside a function or block (move it to the top)")
            if target != package and LAYER_OF[target] >= LAYER_OF[package]:
                problems.append(f"{where}: {target} is not below {package}")
            if package == "progress_service" and target not in PROGRESS_ALLOWED:
                problems.append(f"{where}: the stand-in service depends on core/ only")
            if target == "progress_service" and package != "progress_service":
                problems.append(f"{where}: nobody imports the stand-in service's internals")
        if package in PURE and target in FRAMEWORKS:
            exempt = PURE[package]
            if not (exempt and module.startswith(exempt)):
                problems.append(f"{where}: {package} stays free of Rasa and sanic")
    assert not problems, "\n".join(problems)


def test_no_import_cycle_between_modules():
    known = {module for module, _ in ALL}
    graph = {}
    for module, path in ALL:
        edges = set()
        for name, _, _ in imports(path, module):
            # "from package import module" names a module too
            candidates = [name] + [name.rsplit(".", 1)[0]] if "." in name else [name]
            for candidate in candidates:
                if candidate in known and candidate != module:
                    edges.add(candidate)
                    break
        graph[module] = edges
    # a package's __init__ that re-exports its modules is not a cycle with them
    visiting, done, cycles = set(), set(), []

    def visit(node, trail):
        visiting.add(node)
        for nxt in graph[node]:
            if nxt in visiting:
                cycle = trail[trail.index(nxt):] + [nxt]
                if not all(step == cycle[0] or step.startswith(cycle[0] + ".") or cycle[0].startswith(step + ".")
                           for step in cycle):
                    cycles.append(" -> ".join(cycle))
            elif nxt not in done:
                visit(nxt, trail + [nxt])
        visiting.discard(node)
        done.add(node)

    for module in sorted(graph):
        if module not in done:
            visit(module, [module])
    assert not cycles, "\n".join(cycles)


def test_without_the_stand_in_service_everything_else_imports():
    """Delete progress_service/ (here: make it unimportable) and the bot, the channels,
    the console and the tools still import."""
    names = [module for module, _ in ALL
             if module.split(".")[0] != "progress_service" and not module.endswith("__main__")]
    script = (
        "import sys\n"
        "sys.modules['progress_service'] = None  # as if the folder were deleted\n"
        "import importlib\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-3000:]


def test_make_run_starts_without_the_stand_in_service(tmp_path):
    """With progress_service/ removed (the agency's real system replaces it), `make run`
    starts everything else and points the bot and the console at PROGRESS_SERVICE_URL."""
    settings = StackSettings(state_dir=tmp_path)
    environ = {"PROGRESS_SERVICE_URL": "https://progress.example.gov.cn", "PATH": "/usr/bin"}
    services = build_services(settings, environ, with_stand_in=False)
    assert [s.name for s in services] == ["actions", "rasa", "web"]
    assert not any("progress_service" in " ".join(s.command) for s in services)
    for service in services:
        if service.name in ("actions", "web"):
            assert service.env["PROGRESS_SERVICE_URL"] == "https://progress.example.gov.cn"

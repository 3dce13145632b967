"""`python -m tools.train_inputs`: the project's Python files a trained model depends on.

The Makefile's TRAIN_INPUTS uses this list, so a change to any of these files retrains
(`make run`, `make train`). It starts from
- the custom components config.yml names (pipeline and policies: `assistant.nlu.…`), which
  Rasa runs at training and prediction alike, and
- tools/build_nlu.py, which writes training data and the domain's responses before training,
and follows their project imports transitively (every `import`/`from … import` in a file,
also inside functions), so core/textnorm.py, which the normaliser imports, is on the list,
and so is any module a component starts to import later. A package's __init__.py counts:
it runs on import. Only files are read (no project module is imported here).

Prints one path per line, relative to the repository root, sorted.
"""
import argparse
import ast
import pathlib
import sys
from typing import Iterable, List, Optional, Set

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Run before training by the model's Makefile rule; its output feeds the model.
GENERATORS = ("tools.build_nlu",)


def project_packages(root: pathlib.Path) -> Set[str]:
    return {path.parent.name for path in root.glob("*/__init__.py")}


def component_modules(config_path: pathlib.Path, packages: Set[str]) -> List[str]:
    """Modules of the custom components in config.yml (`package.module.Class`)."""
    config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    modules = []
    for entry in (config.get("pipeline") or []) + (config.get("policies") or []):
        name = str((entry or {}).get("name", "")) if isinstance(entry, dict) else ""
        if "." in name and name.split(".")[0] in packages:
            modules.append(name.rsplit(".", 1)[0])
    return modules


def module_file(root: pathlib.Path, module: str) -> Optional[pathlib.Path]:
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _with_parents(module: str) -> List[str]:
    parts = module.split(".")
    return [".".join(parts[:index]) for index in range(1, len(parts) + 1)]


def imported_modules(path: pathlib.Path, module: str) -> Iterable[str]:
    """Every module an import statement in the file may run (parents included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield from _with_parents(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if not base:
                continue
            yield from _with_parents(base)
            for alias in node.names:  # `from core import textnorm` imports a submodule
                yield f"{base}.{alias.name}"


def train_inputs(root: pathlib.Path = ROOT, config_path: Optional[pathlib.Path] = None,
                 generators: Iterable[str] = GENERATORS) -> List[str]:
    """Paths (relative to root) of the components, the generators and every project
    module they import, directly or not."""
    packages = project_packages(root)
    pending = [name for start in [*component_modules(config_path or root / "config.yml", packages),
                                  *generators] for name in _with_parents(start)]
    seen: Set[str] = set()
    files: Set[pathlib.Path] = set()
    while pending:
        module = pending.pop()
        if module in seen or module.split(".")[0] not in packages:
            continue
        seen.add(module)
        path = module_file(root, module)
        if path is None:  # an attribute (`from core import defaults` where defaults is a name)
            continue
        files.add(path)
        pending.extend(imported_modules(path, module))
    return sorted(path.relative_to(root).as_posix() for path in files)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(ROOT))
    args = parser.parse_args(argv)
    print("\n".join(train_inputs(pathlib.Path(args.root))))
    return 0


if __name__ == "__main__":
    sys.exit(main())

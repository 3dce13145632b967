"""A model is retrained when any code it depends on changes: the Makefile's TRAIN_INPUTS
holds every project module the pipeline's custom components (config.yml) and the
training-data generator (tools/build_nlu.py) load, as `python -m tools.train_inputs`
derives them from their imports."""
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import yaml

from tests.conftest import ROOT
from tools.train_inputs import GENERATORS, project_packages, train_inputs

MAKEFILE = ROOT / "Makefile"


def make_variable(name: str, makefile: pathlib.Path = None) -> list:
    """The variable as make expands it (`make -pn` prints its database)."""
    makefile = makefile or MAKEFILE
    result = subprocess.run(["make", "-pn", "--no-print-directory", "-f", str(makefile), "help"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for line in result.stdout.splitlines():
        if line.startswith(f"{name} := "):
            return line.split(" := ", 1)[1].split()
    raise AssertionError(f"{name} not in the make database of {makefile}")


def custom_components() -> list:
    config = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    packages = project_packages(ROOT)
    names = [entry["name"] for entry in config["pipeline"] + config.get("policies", [])]
    return [name.rsplit(".", 1)[0] for name in names if name.split(".")[0] in packages]


def test_every_project_module_a_component_loads_is_a_train_input():
    """The truth, not the tool's reading of it: import the components (and the generator)
    in a fresh interpreter and list the project files that were loaded."""
    modules = custom_components()
    assert "assistant.nlu.normalizer" in modules
    probe = textwrap.dedent(f"""
        import importlib, json, pathlib, sys
        root = pathlib.Path({str(ROOT)!r})
        for name in {[*modules, *GENERATORS]!r}:
            importlib.import_module(name)
        files = set()
        for module in list(sys.modules.values()):
            path = getattr(module, "__file__", None)
            if path and pathlib.Path(path).resolve().is_relative_to(root):
                files.add(pathlib.Path(path).resolve().relative_to(root).as_posix())
        print(json.dumps(sorted(files)))
    """)
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    packages = project_packages(ROOT)
    loaded = {path for path in loaded if path.split("/")[0] in packages}
    assert "core/textnorm.py" in loaded  # the normaliser's code
    missing = loaded - set(make_variable("TRAIN_INPUTS"))
    assert not missing, f"loaded by the pipeline or tools/build_nlu.py, not in TRAIN_INPUTS: {sorted(missing)}"
    assert loaded <= set(train_inputs(ROOT))


def test_the_makefile_uses_the_tools_list():
    listed = subprocess.run([sys.executable, "-m", "tools.train_inputs"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, check=True).stdout.split()
    assert "core/textnorm.py" in listed and "assistant/nlu/normalizer.py" in listed
    assert set(listed) <= set(make_variable("TRAIN_INPUTS"))


def write(root: pathlib.Path, relative: str, text: str = "") -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")


def test_imports_are_followed_transitively_in_every_form(tmp_path):
    """A new import in a component (absolute, relative, `from package import module`,
    inside a function) puts the imported module and what it imports on the list."""
    write(tmp_path, "config.yml", """
        pipeline:
          - name: nlu.parts.normalizer.Normalizer
          - name: WhitespaceTokenizer
        policies:
          - name: nlu.policy.Custom
          - name: RulePolicy
    """)
    write(tmp_path, "nlu/__init__.py")
    write(tmp_path, "nlu/parts/__init__.py")
    write(tmp_path, "nlu/parts/normalizer.py", """
        import re
        from rasa.engine.graph import GraphComponent
        from base.text import clean
        from . import local
        from ..shared import helper

        def late():
            from base import late_module
    """)
    write(tmp_path, "nlu/parts/local.py")
    write(tmp_path, "nlu/shared.py", "from nlu.parts.local import x\n")
    write(tmp_path, "nlu/policy.py", "import base.deep.inner\n")
    write(tmp_path, "nlu/unused.py", "import base.never\n")
    write(tmp_path, "base/__init__.py", "from base import constants\n")
    write(tmp_path, "base/constants.py")
    write(tmp_path, "base/text.py", "from base.units import UNITS\n")
    write(tmp_path, "base/units.py")
    write(tmp_path, "base/late_module.py")
    write(tmp_path, "base/deep/__init__.py")
    write(tmp_path, "base/deep/inner.py")
    write(tmp_path, "base/never.py")
    write(tmp_path, "tools/__init__.py")
    write(tmp_path, "tools/generate.py", "from base import units\n")

    assert train_inputs(tmp_path, generators=["tools.generate"]) == [
        "base/__init__.py", "base/constants.py", "base/deep/__init__.py", "base/deep/inner.py",
        "base/late_module.py", "base/text.py", "base/units.py",
        "nlu/__init__.py", "nlu/parts/__init__.py", "nlu/parts/local.py", "nlu/parts/normalizer.py",
        "nlu/policy.py", "nlu/shared.py",
        "tools/__init__.py", "tools/generate.py",
    ]

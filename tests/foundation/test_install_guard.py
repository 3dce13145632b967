"""Without Python 3.10, `make install` stops and names what to install."""
import os
import shutil
import subprocess

from tests.conftest import ROOT


def test_make_install_without_python310_explains_what_to_install(tmp_path):
    project = tmp_path / "clone"
    project.mkdir()
    for name in ("Makefile", "requirements.txt", "requirements-dev.txt", "requirements.lock",
                 "requirements-dev.lock", ".python-version"):
        shutil.copy(ROOT / name, project / name)
    shutil.copytree(ROOT / "scripts", project / "scripts")

    # A PATH holding only the tools make needs: no python3.10, no pyenv shims.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("make", "bash", "sh", "env", "find"):
        os.symlink(shutil.which(tool), bin_dir / tool)
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path / "home")}

    result = subprocess.run(
        ["make", "install"], cwd=project, env=env, capture_output=True, text=True, timeout=60
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Python 3.10 was not found" in output
    assert "pyenv install 3.10" in output
    assert not (project / ".venv").exists()

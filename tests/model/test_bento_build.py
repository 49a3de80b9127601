"""`bentoml build -f model/bentofile.yaml .` makes a bento that serves from what it holds: its
service imports from the bento's own source alone, and every package that source imports is
in the bento's locked requirements. Built into a scratch BentoML home with a stub model (the
service loads its model when it starts, not when it is imported)."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from model.settings import MODEL_NAME
from tests.model.support import BENTOML, PYTHON, REPO_ROOT, subprocess_env

pytestmark = pytest.mark.slow  # resolves the bento's requirements (uv, PyPI)


@pytest.fixture(scope="module")
def bento(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built bento's directory."""
    home = tmp_path_factory.mktemp("bentoml")
    env = subprocess_env(home)
    env["PATH"] = f"{REPO_ROOT / '.cache' / 'uv' / 'bin'}{os.pathsep}{env['PATH']}"  # its locker
    stub = f"import bentoml\nwith bentoml.models.create({MODEL_NAME!r}) as m: pass"
    subprocess.run([PYTHON, "-c", stub], env=env, check=True, timeout=120)
    built = subprocess.run(
        [BENTOML, "build", "-f", "model/bentofile.yaml", "--output", "tag", "."],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    name, version = re.search(r"__tag__:(\S+):(\S+)", built.stdout).groups()
    return home / "bentos" / name / version


def test_the_service_imports_from_the_bento_alone(bento: Path) -> None:
    src = bento / "src"
    code = (
        "import sys; sys.path.insert(0, '.'); import model.service; print(model.service.__file__)"
    )
    env = {"PATH": os.environ["PATH"], "BENTOML_HOME": str(bento.parents[2])}

    imported = subprocess.run(  # -I: neither the checkout nor $PYTHONPATH on sys.path
        [PYTHON, "-I", "-c", code], cwd=src, env=env, capture_output=True, text=True, timeout=120
    )

    assert imported.returncode == 0, imported.stderr[-3000:]
    assert Path(imported.stdout.strip()) == src / "model" / "service.py"


def test_every_package_the_bento_imports_is_in_its_requirements(bento: Path) -> None:
    src = bento / "src"
    own = {path.name for path in src.iterdir() if path.is_dir()}
    imported = set()
    for path in src.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    third_party = imported - own - set(sys.stdlib_module_names) - {"__future__"}
    providers = importlib.metadata.packages_distributions()
    lines = (bento / "env" / "python" / "requirements.txt").read_text().splitlines()
    required = {_canonical(line.split("==")[0]) for line in lines if "==" in line}

    missing = {
        module: providers.get(module, [])
        for module in third_party
        if not required.intersection(map(_canonical, providers.get(module, [])))
    }

    assert not missing, f"imported by the bento, not in its requirements.txt: {missing}"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()

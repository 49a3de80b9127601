"""`make compose-up` / `make compose-down`, and the services the README's Docker commands name."""

from __future__ import annotations

import re
import subprocess

import pytest
from docker_facts import DOCKER_DIR, REPO, services

COMPOSE_MK = DOCKER_DIR / "compose.mk"
README = REPO / "README.md"


def docker_section() -> str:
    """The README's "With Docker" section, up to the next second-level heading."""
    match = re.search(
        r"^## With Docker\n.*?(?=^## |\Z)", README.read_text(), re.MULTILINE | re.DOTALL
    )
    assert match, "README.md has no '## With Docker' section"
    return match.group(0)


# the Makefile's `help` target lists exactly the lines this matches
HELP_LINE = re.compile(r"^([a-z-]+):.*## (.+)$", re.MULTILINE)


def dry_run(target: str) -> str:
    """What `make <target>` would run, without running it (no Docker engine needed)."""
    argv = ["make", "--no-print-directory", "-s", "-n", "-f", str(COMPOSE_MK), target]
    result = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("target", ["compose-up", "compose-down"])
def test_targets_are_listed_by_make_help(target: str) -> None:
    described = dict(HELP_LINE.findall(COMPOSE_MK.read_text()))
    assert target in described and described[target].strip()


def test_compose_up_builds_and_waits_for_health() -> None:
    commands = dry_run("compose-up")
    assert re.search(r"^docker compose up .*--build", commands, re.MULTILINE)
    assert "--wait" in commands and "--detach" in commands


def test_compose_down_stops_and_keeps_the_data() -> None:
    commands = dry_run("compose-down").strip().splitlines()
    assert commands == ["docker compose down"]


def test_readme_commands_name_real_services() -> None:
    for name in re.findall(r"docker compose (?:logs -f|run --rm|restart) (\S+)", docker_section()):
        assert name in services(), name

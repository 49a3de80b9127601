"""Every image is pinned and agrees with the version the local stack resolves.

One place declares each version: stack/jvm/pom.xml (Kafka, Debezium), uv.lock (Python
packages), requires-python and the local interpreter (Python), stack/bootstrap.sh (uv),
Debian bookworm's packages (PostgreSQL 15, Adminer). These tests fail when compose or
the Dockerfile says something else.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from docker_facts import (
    DOCKERFILE,
    REPO,
    bootstrap_uv_version,
    dockerfile_args,
    dockerfile_instructions,
    image_tag,
    pom_properties,
    project_image,
    project_services,
    service_image,
    services,
)
from packaging.specifiers import SpecifierSet
from packaging.version import Version

# Debian release -> the PostgreSQL major its `postgresql` package installs
DEBIAN_POSTGRES_MAJOR = {"bookworm": 15, "trixie": 17}


def base_image(path: Path = DOCKERFILE) -> tuple[str, str]:
    froms = [args.split()[0] for kw, args in dockerfile_instructions(path) if kw == "FROM"]
    assert len(froms) == 1, f"{path}: expected one FROM (a thin image), got {froms}"
    return image_tag(froms[0])


def debian_codename() -> str:
    """The Debian release the local stack's packages come from."""
    text = Path("/etc/os-release").read_text()
    match = re.search(r"^VERSION_CODENAME=(\w+)$", text, re.MULTILINE)
    assert match, "/etc/os-release names no VERSION_CODENAME: the local stack expects Debian"
    return match.group(1)


def local_postgres_version() -> Version:
    """The PostgreSQL server the local stack runs (stack/postgres.py finds it the same way)."""
    from stack.postgres import PostgresMissing, find_bindir

    try:
        bindir = find_bindir()
    except PostgresMissing as exc:
        pytest.fail(f"the local stack's PostgreSQL is not installed ({exc}); run `make bootstrap`")
    out = subprocess.run(
        [str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    return Version(re.search(r"\(PostgreSQL\) (\d+(?:\.\d+)?)", out).group(1))


def local_debian_package_version(package: str) -> Version:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", package],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not result.stdout:
        pytest.fail(
            f"the local stack's Debian package {package} is not installed; run `make bootstrap`"
        )
    upstream = re.match(r"(?:\d+:)?([\d.]+)", result.stdout).group(1)
    return Version(upstream)


@pytest.mark.parametrize("name", sorted(n for n, svc in services().items() if "build" not in svc))
def test_every_pulled_image_is_pinned(name: str) -> None:
    """Built images are pinned by their Dockerfile (tested below), pulled ones by their tag."""
    _repo, tag = image_tag(services()[name]["image"])
    assert tag and tag != "latest" and re.search(r"\d", tag), f"{name}: unpinned image"


def test_kafka_image_is_the_pom_kafka_version() -> None:
    assert service_image("kafka") == ("apache/kafka", pom_properties()["kafka.version"])


def test_connect_image_is_the_pom_debezium_version() -> None:
    """Debezium's connect image of a release bundles the Kafka that release is built on
    (the pom's kafka.version), plus both plugins the local stack installs."""
    assert service_image("connect") == (
        "quay.io/debezium/connect",
        pom_properties()["debezium.version"],
    )


def test_postgres_image_is_the_local_major_on_the_same_debian() -> None:
    repo, tag = service_image("postgres")
    match = re.fullmatch(r"(\d+)(?:\.\d+)?-(\w+)", tag)
    assert repo == "postgres" and match, f"postgres:{tag} is not <major>[.<minor>]-<debian>"
    major, codename = int(match.group(1)), match.group(2)
    assert codename == debian_codename()
    assert major == DEBIAN_POSTGRES_MAJOR[codename] == local_postgres_version().major


def test_adminer_image_is_the_local_adminer_version() -> None:
    repo, tag = service_image("adminer")
    assert repo == "adminer"
    assert Version(tag.split("-")[0]) == local_debian_package_version("adminer")


@pytest.mark.parametrize(
    ("name", "package"),
    [("prometheus", "prometheus"), ("postgres-exporter", "prometheus-postgres-exporter")],
)
def test_monitoring_images_are_the_local_debian_versions(name: str, package: str) -> None:
    _repo, tag = service_image(name)
    assert Version(tag.removeprefix("v")) == local_debian_package_version(package)


def test_python_base_image_is_the_project_python_on_the_same_debian() -> None:
    repo, tag = base_image()
    match = re.fullmatch(r"(\d+\.\d+)(?:\.\d+)?-slim-(\w+)", tag)
    assert repo == "python" and match, f"python:{tag} is not <version>-slim-<debian>"
    version, codename = Version(match.group(1)), match.group(2)
    assert codename == debian_codename()
    assert (version.major, version.minor) == sys.version_info[:2], "the .venv interpreter"
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert version in SpecifierSet(requires), f"requires-python {requires}"


def test_uv_is_the_bootstrap_version() -> None:
    assert dockerfile_args(DOCKERFILE).get("UV_VERSION") == bootstrap_uv_version()


def test_python_packages_come_only_from_uv_lock_without_dev() -> None:
    runs = [args for kw, args in dockerfile_instructions(DOCKERFILE) if kw == "RUN"]
    copies = [args for kw, args in dockerfile_instructions(DOCKERFILE) if kw == "COPY"]
    assert any("uv.lock" in args.split() for args in copies), "uv.lock is not in the image"
    syncs = [args for args in runs if re.search(r"\buv sync\b", args)]
    assert len(syncs) == 1, runs
    assert re.search(r"--(frozen|locked)\b", syncs[0]) and "--no-dev" in syncs[0].split()
    assert not re.search(r"--(group|all-groups|extra)\b", syncs[0]), syncs[0]
    pip_installs = [args for args in runs if re.search(r"\bpip3? install\b", args)]
    assert pip_installs == ['pip install --no-cache-dir "uv==${UV_VERSION}"'], pip_installs
    assert not any(re.search(r"\buv (pip|add)\b", args) for args in runs), runs


def test_dev_group_exists_so_no_dev_matters() -> None:
    """pytest & co. live in the dev group, which the image must leave out."""
    groups = tomllib.loads((REPO / "pyproject.toml").read_text())["dependency-groups"]
    assert any(req.startswith("pytest") for req in groups["dev"])


def test_every_project_service_runs_the_one_project_image() -> None:
    for name, svc in project_services().items():
        assert svc["build"] == {"context": ".", "dockerfile": "docker/Dockerfile"}, name
    assert set(project_services()) >= {
        "bento",
        "transformer",
        "migrate",
        "deploy-connectors",
        "train",
    }
    assert image_tag(project_image())[1], "the project image needs a tag"
    builds = {svc["build"]["dockerfile"] for svc in services().values() if "build" in svc}
    assert builds == {"docker/Dockerfile"}

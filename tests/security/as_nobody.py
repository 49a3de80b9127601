"""Run a probe as an unprivileged local user (`nobody`), as an attacker on this machine would.

The clone (and the virtualenv's interpreter) may sit where `nobody` cannot enter (CI
clones under /root), so a probe never runs from it: the probe script and the one library
it needs (confluent-kafka with its bundled librdkafka) are copied to a fresh temporary
folder `nobody` may read, and run with the system's Python of the same version. Whatever
the probe is given (a program's credentials) is in that folder, removed afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import confluent_kafka
import pytest

USER = "nobody"
RUNUSER = shutil.which("runuser") or "/usr/sbin/runuser"
SYSTEM_PYTHON = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")


def _readable_copy(source: Path, target: Path) -> None:
    shutil.copytree(source, target)
    for folder, dirs, files in os.walk(target):
        os.chmod(folder, 0o755)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644)


@contextmanager
def probe_folder() -> Iterator[Path]:
    """A temporary folder `nobody` can read, holding confluent_kafka."""
    if os.geteuid() != 0:
        pytest.fail("the probes run as another OS user: run the security tests as root")
    if not SYSTEM_PYTHON.exists():
        pytest.fail(f"{SYSTEM_PYTHON} (the system Python of this version) is missing")
    folder = Path(tempfile.mkdtemp(prefix="probe-"))
    try:
        os.chmod(folder, 0o755)
        package = Path(confluent_kafka.__file__).parent
        _readable_copy(package, folder / "confluent_kafka")
        libs = package.parent / "confluent_kafka.libs"
        if libs.exists():
            _readable_copy(libs, folder / "confluent_kafka.libs")
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_as_nobody(folder: Path, script: str, *args: str, timeout: float = 60) -> dict:
    """Run `script` (Python source printing one JSON document) as `nobody`; its answer."""
    path = folder / f"probe_{abs(hash(script))}.py"
    path.write_text(script)
    path.chmod(0o644)
    result = subprocess.run(
        [RUNUSER, "-u", USER, "--", str(SYSTEM_PYTHON), "-s", str(path), *args],
        cwd=folder,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(folder), "HOME": str(folder)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"probe failed: {result.stderr[-2000:]}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def private_file(folder: Path, name: str, text: str) -> Path:
    """A file in the probe folder only `nobody` reads (e.g. credentials it was given)."""
    path = folder / name
    path.write_text(text)
    shutil.chown(path, user=USER)
    path.chmod(0o600)
    return path

"""Private state: nothing under `.state/` (listings in Kafka's segments and Connect's
offsets, the model store, rendered credentials, program environments, logs) can be read
or listed by another local user. The probe runs as `nobody` and tries every path found."""

from __future__ import annotations

import json
import os
from pathlib import Path

from config.settings import StackSettings
from tests.security.as_nobody import private_file, probe_folder, run_as_nobody

# Try to read every file and list every folder named in argv[1]; print what worked.
READ_ALL = """
import json, os, sys
opened = []
for path in json.load(open(sys.argv[1])):
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            with open(path, "rb") as file:
                file.read(1)
        opened.append(path)
    except OSError:
        pass
print(json.dumps({"opened": opened}))
"""


def _every_path(root: Path) -> list[str]:
    found = [str(root)]
    for folder, dirs, files in os.walk(root):
        found += [os.path.join(folder, name) for name in [*dirs, *files]]
    return found


def test_no_file_under_state_is_readable_by_others(stack_ready: StackSettings) -> None:
    paths = _every_path(stack_ready.state_dir)
    assert any("/kafka/" in p for p in paths) and any(p.endswith(".log") for p in paths)
    with probe_folder() as folder:
        listing = private_file(folder, "paths.json", json.dumps(paths))
        answer = run_as_nobody(folder, READ_ALL, str(listing), timeout=120)
    assert answer["opened"] == [], f"readable by nobody: {answer['opened'][:20]}"


def test_the_state_folder_is_ours_and_only_passable(stack_ready: StackSettings) -> None:
    """0711: Postgres and Adminer (their own users) pass it to reach their own folders."""
    root = stack_ready.state_dir
    assert root.stat().st_mode & 0o777 == 0o711, oct(root.stat().st_mode)
    for entry in root.iterdir():
        mode = entry.lstat().st_mode
        assert not mode & 0o077 or entry.is_symlink(), (entry, oct(mode))

"""Private state: `.state/` holds listings (Kafka's segments, Connect's offsets, the model
store), credentials (rendered configs, program environments) and logs, so nothing in it is
for other users.

`.state` itself is 0711: Postgres and Adminer run as their own OS users and must pass it
to reach their own folders (owned by them, 0700); nobody else can list it, and every entry
below is ours alone (dirs 0700, files 0600, the owner's bits kept) or a service user's own.
The stack runs with umask 077 (`make up` here, supervisord's `umask=077` for the programs),
so what it creates later is private too; `private_state` repairs what was made before.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from config.settings import StackSettings

UMASK = 0o077


def private_state(settings: StackSettings) -> list[Path]:
    """Take every group/other permission off what we own below `.state` (links are not
    followed: Postgres' and Adminer's folders keep their owners' modes); `.state` 0711.
    Returns the paths changed."""
    root = settings.state_dir
    root.mkdir(parents=True, exist_ok=True)
    changed = []
    uid = os.geteuid()
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(folder) / name
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode) or info.st_uid != uid:
                continue  # a service user's own (Postgres' data), or a link
            if info.st_mode & 0o077:
                path.chmod(stat.S_IMODE(info.st_mode) & 0o700)
                changed.append(path)
        dirs[:] = [d for d in dirs if (Path(folder) / d).lstat().st_uid == uid]
    root.chmod(0o711)
    return changed


def write_private(target: Path, text: str) -> None:
    """Write `text` readable by us alone (configs and environments hold secrets), also
    over a file another mode left: open()'s mode applies only to a file it creates."""
    if not target.exists() or target.read_text() != text:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(text)
    target.chmod(0o600)

"""Adminer's folder: its sessions and its router, owned by the unprivileged Adminer user.

Adminer runs as ADMINER_OS_USER (www-data) when the stack runs as root, so everything
it reads or writes must be reachable by that user; like Postgres' folder, it moves
under FALLBACK_ROOT (behind a link) when the clone sits where that user cannot enter.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from config.settings import REPO_ROOT, StackSettings
from stack.postgres import FALLBACK_ROOT

ROUTER = Path(__file__).parent / "adminer" / "router.php"


def _user_can_enter(user: str, folder: Path) -> bool:
    return (
        subprocess.run(
            ["runuser", "-u", user, "--", "test", "-x", str(folder)], check=False
        ).returncode
        == 0
    )


def prepare(settings: StackSettings) -> Path:
    """Create the folder once, copy the router in (every time: it may have changed)."""
    link = settings.state_dir / "adminer"
    if not link.exists():
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0 or _user_can_enter(settings.adminer_run_user, settings.state_dir):
            link.mkdir()
        else:
            digest = hashlib.sha256(str(REPO_ROOT).encode()).hexdigest()[:12]
            target = FALLBACK_ROOT / digest / "adminer"
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            FALLBACK_ROOT.chmod(0o755)
            target.parent.chmod(0o755)
            link.symlink_to(target, target_is_directory=True)
    folder = settings.adminer_dir
    sessions = folder / "sessions"
    sessions.mkdir(exist_ok=True)
    router = folder / "router.php"
    shutil.copyfile(ROUTER, router)
    # Adminer's own: its user alone enters the folder (sessions hold logins)
    folder.chmod(0o700)
    router.chmod(0o600)
    sessions.chmod(0o700)
    if os.geteuid() == 0:
        for path in (folder, router, sessions):
            shutil.chown(path, user=settings.adminer_run_user, group=None)
    return folder

"""Create `.env` from `.env.example` with a fresh random password for every role.

    python3 config/new_env.py [--env .env] [--example .env.example]

Run by `make` (and `make compose-up`) when `.env` is missing: nobody starts with the
example's well-known passwords. The file is created with mode 0600 and never
overwritten. Standard library only: it runs before the virtualenv exists.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PASSWORD_LINE = re.compile(r"^(?P<key>[A-Z][A-Z0-9_]*_PASSWORD)=.*$", re.MULTILINE)


def with_new_passwords(example: str) -> tuple[str, list[str]]:
    """The example's text with each *_PASSWORD value replaced by 32 random URL-safe chars."""
    keys: list[str] = []

    def replace(match: re.Match[str]) -> str:
        keys.append(match["key"])
        return f"{match['key']}={secrets.token_urlsafe(24)}"

    text = PASSWORD_LINE.sub(replace, example)
    return (
        "# Created by config/new_env.py from .env.example; the passwords are random.\n" + text,
        keys,
    )


def create(env: Path, example: Path) -> list[str] | None:
    """Write `env` (0600) unless it exists; the password keys generated, or None."""
    text, keys = with_new_passwords(example.read_text())
    try:
        fd = os.open(env, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return None
    with os.fdopen(fd, "w") as file:
        file.write(text)
    return keys


def add_missing_passwords(env: Path, example: Path) -> list[str]:
    """Append a random value for each *_PASSWORD key the example has and `env` lacks (a
    role added after `env` was created); the keys added."""
    have = {match["key"] for match in PASSWORD_LINE.finditer(env.read_text())}
    missing = [
        m["key"] for m in PASSWORD_LINE.finditer(example.read_text()) if m["key"] not in have
    ]
    if missing:
        with env.open("a") as file:
            file.write("".join(f"\n{key}={secrets.token_urlsafe(24)}" for key in missing) + "\n")
    return missing


def weaknesses(env: Path, example: Path) -> list[str]:
    """What `make up` warns about in an existing `.env`: others may read it, or a
    password is still the example's placeholder."""
    found = []
    if env.stat().st_mode & 0o077:
        found.append(f"{env} is readable by other users: chmod 600 {env}")
    placeholders = {
        match["key"]: match.group(0) for match in PASSWORD_LINE.finditer(example.read_text())
    }
    current = {match["key"]: match.group(0) for match in PASSWORD_LINE.finditer(env.read_text())}
    same = sorted(key for key, line in placeholders.items() if current.get(key) == line)
    if same:
        found.append(
            f"{env} still has the example passwords for {', '.join(same)}: "
            "fine on a private machine, change them before sharing anything"
        )
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", type=Path, default=REPO_ROOT / ".env")
    parser.add_argument("--example", type=Path, default=REPO_ROOT / ".env.example")
    args = parser.parse_args(argv)
    keys = create(args.env, args.example)
    if keys is None:
        print(f"{args.env} exists: left as it is", file=sys.stderr)
        return 0
    print(
        f"created {args.env} (mode 0600) from {args.example.name} with new random "
        f"{', '.join(keys)}; they stay in that file, keep it private",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m config NAME`: print one setting as the programs see it, for the Makefile's
recipes (`make watch-dlq`, `make train`), so make never parses `.env` nor repeats a default."""

from __future__ import annotations

import sys

from config.settings import StackSettings


def lookup(name: str) -> str:
    """`name` of the stack's settings or of one of its parts (postgres, kafka, connect,
    services): the first that has it."""
    settings = StackSettings()
    for holder in (
        settings,
        settings.kafka,
        settings.connect,
        settings.services,
        settings.postgres,
    ):
        if hasattr(holder, name):
            return str(getattr(holder, name))
    raise SystemExit(f"no setting named {name!r}")


if __name__ == "__main__":
    print(*(lookup(name) for name in sys.argv[1:]))

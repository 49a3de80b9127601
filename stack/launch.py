"""Exec a supervised program with only the environment written for it.

    python stack/launch.py <program> <command> [args...]

supervisord holds no secret; this reads `.state/env/<program>.json` (written by
stack/environments.py, mode 0600) and replaces itself with the command, so supervisor
signals the program itself. Standard library only: it runs before anything is imported.
"""

import json
import os
import sys
from pathlib import Path


def main(argv: list[str]) -> None:
    program, command = argv[0], argv[1:]
    env_file = Path(os.environ["STACK_ENV_DIR"]) / f"{program}.json"
    env = json.loads(env_file.read_text())
    os.execvpe(command[0], command, env)


if __name__ == "__main__":
    main(sys.argv[1:])

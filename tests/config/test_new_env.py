"""The first `.env` gets random passwords, is private, and is never overwritten."""

from __future__ import annotations

from pathlib import Path

from dotenv import dotenv_values

from config.new_env import create, weaknesses
from config.settings import REPO_ROOT

EXAMPLE = REPO_ROOT / ".env.example"


def test_new_env_has_random_private_passwords(tmp_path: Path) -> None:
    first, second = tmp_path / "a.env", tmp_path / "b.env"
    keys = create(first, EXAMPLE)
    create(second, EXAMPLE)
    example, a, b = (dotenv_values(path) for path in (EXAMPLE, first, second))
    assert keys and set(keys) == {key for key in example if key.endswith("_PASSWORD")}
    for key in keys:
        assert a[key] != example[key] and a[key] != b[key] and len(a[key]) >= 32
    assert {key: a[key] for key in example if key not in keys} == {
        key: value for key, value in example.items() if key not in keys
    }
    assert first.stat().st_mode & 0o777 == 0o600


def test_an_existing_env_is_left_alone(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("PG_SUPERUSER_PASSWORD=mine\n")
    assert create(env, EXAMPLE) is None
    assert env.read_text() == "PG_SUPERUSER_PASSWORD=mine\n"


def test_weak_env_files_are_named(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(EXAMPLE.read_text())
    env.chmod(0o644)
    found = weaknesses(env, EXAMPLE)
    assert len(found) == 2 and "chmod 600" in found[0] and "PG_SUPERUSER_PASSWORD" in found[1]
    generated = tmp_path / "new.env"
    create(generated, EXAMPLE)
    assert weaknesses(generated, EXAMPLE) == []

"""compose.yaml is a valid Compose-specification file (no Docker engine needed).

The schema is the official one from compose-spec/compose-spec, as vendored in the
check-jsonschema wheel (a dev dependency pinned in uv.lock); it is validated with the
`jsonschema` package, after `${...}` interpolation from .env.example, as compose does.
"""

from __future__ import annotations

import importlib.resources
import json
from typing import Any

import jsonschema
import pytest
from docker_facts import SCHEMA_INSTALL_COMMAND, compose, compose_raw


def compose_spec_schema() -> dict[str, Any]:
    """The official Compose JSON schema, or a failure that says how to install it."""
    try:
        vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
        return json.loads((vendor / "compose-spec.json").read_text())
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        pytest.fail(
            f"the Compose specification schema is missing ({exc}); install it with "
            f"`{SCHEMA_INSTALL_COMMAND}` (stack/bootstrap.sh runs it)"
        )


def schema_errors(document: dict[str, Any]) -> list[str]:
    schema = compose_spec_schema()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema)
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda e: e.json_path)
    ]


def test_the_schema_is_the_compose_specification() -> None:
    schema = compose_spec_schema()
    assert schema["title"] == "Compose Specification"
    # a current schema: knows the top-level `name`, `include` and `models` keys
    assert {"name", "include", "services", "volumes"} <= set(schema["properties"])


def test_compose_yaml_validates_against_the_compose_specification() -> None:
    assert schema_errors(compose()) == []


def test_the_validation_catches_a_broken_file() -> None:
    """Guards the test above: the same check must reject an invalid service."""
    broken = compose()
    broken["services"]["connect"]["depends_on"]["kafka"]["condition"] = "whenever"
    broken["services"]["kafka"]["no_such_key"] = True
    errors = schema_errors(broken)
    assert any("services/connect/depends_on" in error for error in errors), errors
    assert any("no_such_key" in error for error in errors), errors


def test_no_version_key() -> None:
    """The Compose specification dropped `version:`; compose warns when it is there."""
    assert "version" not in compose_raw()

"""What the Docker path says, read statically, and what the local stack says, for comparison.

Our machines have no Docker engine, so `docker compose config` cannot run here: these
helpers parse compose.yaml, docker/ and the local stack's own files (pom.xml, uv.lock,
bootstrap.sh, settings classes) so the tests can hold the two paths together.
"""

from __future__ import annotations

import ast
import importlib
import re
import shlex
import string
import warnings
import xml.etree.ElementTree as ET
from fnmatch import fnmatch
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "compose.yaml"
ENV_EXAMPLE = REPO / ".env.example"
DOCKER_DIR = REPO / "docker"
DOCKERFILE = DOCKER_DIR / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
POM = REPO / "stack" / "jvm" / "pom.xml"
SUPERVISORD_CONF = REPO / "stack" / "supervisord.conf"
TEMPLATES = REPO / "stack" / "templates"

# The packages whose code runs in the project image; `alembic` runs migrations/env.py.
PROJECT_PACKAGES = ("config", "stack", "operations", "transformer", "model", "migrations")
MODULE_ALIASES = {"alembic": "migrations"}

# How a one-shot job is marked in compose.yaml: it must not be restarted after it exits.
ONE_SHOT_RESTART = "no"

# The exact command that installs the Compose specification schema (a vendored copy of
# compose-spec/compose-spec's schema ships in the check-jsonschema wheel, a dev dependency
# pinned in uv.lock); stack/bootstrap.sh already runs it.
SCHEMA_INSTALL_COMMAND = ".cache/uv/bin/uv sync --frozen"


# --- .env and compose interpolation ------------------------------------------------------


def read_env_file(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    """KEY=VALUE lines as compose and pydantic-settings read them (comments skipped)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip().strip("'\"")
    return values


_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR:?error}`, `$$` rules.

    Unlike compose (which warns and substitutes ""), an unset variable without a
    default raises: a compose file that relies on a variable .env lacks is a bug.
    """

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["bare"]
        op, arg = match["op"], match["arg"] or ""
        value = env.get(name)
        is_set = value is not None and (value != "" or not (op or "").startswith(":"))
        if op in ("-", ":-"):
            return value if is_set else arg
        if op in ("+", ":+"):
            return arg if is_set else ""
        if not is_set and op in ("?", ":?"):
            raise KeyError(f"${{{name}}} is required: {arg}")
        if value is None:
            raise KeyError(f"${{{name}}} is used by compose.yaml but not set in {ENV_EXAMPLE.name}")
        return value

    return _INTERPOLATION.sub(replace, text)


def interpolate_tree(node: Any, env: dict[str, str]) -> Any:
    """Interpolate every string value (not keys), as compose does before validating."""
    if isinstance(node, dict):
        return {key: interpolate_tree(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(item, env) for item in node]
    if isinstance(node, str):
        return interpolate(node, env)
    return node


def variables_in(text: str) -> set[str]:
    """Names of the variables a text interpolates (`$$` escapes excluded)."""
    return {m["braced"] or m["bare"] for m in _INTERPOLATION.finditer(text) if not m["escaped"]}


# --- compose.yaml --------------------------------------------------------------------------


@cache
def compose_raw() -> dict[str, Any]:
    """compose.yaml with YAML anchors and merge keys resolved, `${...}` left as written."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


def compose() -> dict[str, Any]:
    """compose.yaml as compose would see it with `.env` copied from .env.example."""
    return interpolate_tree(compose_raw(), read_env_file())


def services(resolved: bool = False) -> dict[str, dict[str, Any]]:
    return (compose() if resolved else compose_raw())["services"]


def one_shot_services() -> set[str]:
    return {
        name for name, svc in services().items() if str(svc.get("restart", "")) == ONE_SHOT_RESTART
    }


def long_running_services() -> set[str]:
    return set(services()) - one_shot_services()


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping, whichever of compose's two forms it uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.partition("=") for item in env)
        return {key: value for key, _, value in pairs}
    return {key: "" if value is None else str(value) for key, value in env.items()}


def command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command") or []
    return shlex.split(cmd) if isinstance(cmd, str) else [str(part) for part in cmd]


def healthcheck_text(service: dict[str, Any]) -> str:
    test = (service.get("healthcheck") or {}).get("test") or []
    return test if isinstance(test, str) else " ".join(str(part) for part in test)


def project_image() -> str:
    """The image name of the one project image (x-project in compose.yaml)."""
    return compose_raw()["x-project"]["image"]


def project_services() -> dict[str, dict[str, Any]]:
    """Services that run the project's own code (the project image)."""
    return {name: svc for name, svc in services().items() if svc.get("image") == project_image()}


def image_tag(image: str) -> tuple[str, str]:
    """('quay.io/debezium/connect', '3.6.0.Final') from an image reference."""
    name, _, tag = image.rpartition(":")
    if "/" in tag or not name:  # a registry port, not a tag
        return image, ""
    return name, tag


def service_image(name: str) -> tuple[str, str]:
    return image_tag(services()[name]["image"])


def published_ports(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(host_ip, published, target) of every `ports` entry, raw (`${...}` kept)."""
    entries = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            entries.append(
                (
                    str(port.get("host_ip", "")),
                    str(port.get("published", "")),
                    str(port.get("target", "")),
                )
            )
            continue
        parts = str(port).split(":")
        if len(parts) == 3:
            entries.append((parts[0], parts[1], parts[2]))
        elif len(parts) == 2:
            entries.append(("", parts[0], parts[1]))
        else:
            entries.append(("", "", parts[0]))
    return entries


def top_level_block(name: str) -> str:
    """The raw text of one top-level key of compose.yaml (up to the next top-level key)."""
    text = COMPOSE_FILE.read_text()
    match = re.search(rf"^{re.escape(name)}:.*?(?=^\S)", text, flags=re.MULTILINE | re.DOTALL)
    if not match:
        raise AssertionError(f"compose.yaml has no top-level `{name}:` block")
    return match.group(0)


# --- the local stack's own declarations ----------------------------------------------------


def pom_properties() -> dict[str, str]:
    """The <properties> of stack/jvm/pom.xml: the one place the JVM versions are declared."""
    root = ET.parse(POM).getroot()
    namespace = {"m": "http://maven.apache.org/POM/4.0.0"}
    properties = root.find("m:properties", namespace)
    assert properties is not None, f"{POM} has no <properties>"
    return {child.tag.split("}", 1)[1]: (child.text or "").strip() for child in properties}


def bootstrap_uv_version() -> str:
    text = (REPO / "stack" / "bootstrap.sh").read_text()
    match = re.search(r"^UV_VERSION=(\S+)$", text, re.MULTILINE)
    assert match, "stack/bootstrap.sh declares no UV_VERSION="
    return match.group(1)


def supervisor_command(program: str) -> list[str]:
    """The command= of one [program:x] in stack/supervisord.conf, continuation lines joined,
    without the stack/launch.py wrapper in front."""
    text = SUPERVISORD_CONF.read_text()
    section = re.search(
        rf"^\[program:{re.escape(program)}\]\n(.*?)(?=^\[|\Z)", text, re.MULTILINE | re.DOTALL
    )
    assert section, f"stack/supervisord.conf has no [program:{program}]"
    match = re.search(
        r"^command=(.*?)(?=^\S)", section.group(1) + "\nend", re.MULTILINE | re.DOTALL
    )
    assert match, f"[program:{program}] has no command="
    argv = shlex.split(match.group(1).replace("\n", " "))
    # `python -I stack/launch.py <program>` only sets the environment, then execs the rest
    if len(argv) > 3 and argv[2].endswith("/stack/launch.py") and argv[3] == program:
        return argv[4:]
    return argv


def makefile_recipe_args(target: str, makefile: Path = REPO / "Makefile") -> list[str]:
    """The arguments after `$(PY)` in a Makefile target's recipe (`$(PY) -m x y` -> [-m, x, y])."""
    text = makefile.read_text()
    match = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", text, re.MULTILINE)
    assert match, f"Makefile has no target {target}"
    for line in match.group(1).splitlines():
        if "$(PY)" in line:
            args = line.split("$(PY)", 1)[1].replace("$(call setting,ford_csv_path)", "FORD_CSV")
            return shlex.split(args)
    raise AssertionError(f"Makefile target {target} does not run $(PY)")


def render_template(path: Path, values: dict[str, str]) -> dict[str, str]:
    """A stack/templates/*.properties file rendered with `values`, as key -> value."""
    text = string.Template(path.read_text()).safe_substitute(values)
    properties = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            properties[key.strip()] = value.strip()
    return properties


# --- who reads which environment variable -------------------------------------------------


def settings_env_names(cls: type) -> set[str]:
    """The env names a pydantic-settings class reads (aliases, else prefix + field name),
    with those of the settings it hands out as cached properties (StackSettings.kafka)."""
    import functools
    import typing

    from pydantic import AliasChoices
    from pydantic_settings import BaseSettings

    prefix = str(cls.model_config.get("env_prefix", ""))
    names = set()
    for field_name, field in cls.model_fields.items():
        alias = field.validation_alias or field.alias
        if isinstance(alias, str):
            names.add(alias.upper())
        elif isinstance(alias, AliasChoices):
            names |= {choice.upper() for choice in alias.choices if isinstance(choice, str)}
        else:
            names.add(f"{prefix}{field_name}".upper())
        if cls.model_config.get("env_nested_delimiter") and field.annotation in (
            dict,
            dict[str, str],
        ):
            names.add(f"{prefix}{field_name}_*".upper())  # its keys: NAME_<KEY> (a pattern)
    for member in vars(cls).values():
        if isinstance(member, functools.cached_property):
            part = typing.get_type_hints(member.func).get("return")
            if isinstance(part, type) and issubclass(part, BaseSettings):
                names |= settings_env_names(part)
    return names


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts)


def _settings_classes(module_name: str, names: set[str] | None = None) -> list[type]:
    """BaseSettings subclasses a project module defines (or, with `names`, those names)."""
    from pydantic_settings import BaseSettings

    module = importlib.import_module(module_name)
    found = []
    for attr, value in vars(module).items():
        if not (
            isinstance(value, type)
            and issubclass(value, BaseSettings)
            and value is not BaseSettings
        ):
            continue
        if (names is None and value.__module__ == module_name) or (names and attr in names):
            found.append(value)
    return found


def _environ_literals(tree: ast.Module) -> set[str]:
    """`os.environ["X"]`, `os.environ.get("X")`, `os.getenv("X")`, the name given as a
    literal or as a module-level string constant (`DATA_ENV_VAR = "FORD_CSV"`)."""
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    names = set()
    for node in ast.walk(tree):
        target = None
        if isinstance(node, ast.Subscript) and ast.unparse(node.value).endswith("environ"):
            target = node.slice
        elif (
            isinstance(node, ast.Call)
            and node.args
            and (ast.unparse(node.func).endswith(("environ.get", "getenv")))
        ):
            target = node.args[0]
        if isinstance(target, ast.Constant) and isinstance(target.value, str):
            names.add(target.value)
        elif isinstance(target, ast.Name) and target.id in constants:
            names.add(constants[target.id])
    return names


@cache
def env_read_by_package(package: str) -> frozenset[str]:
    """Every env name a project package reads: its settings classes, the settings classes
    it imports from other project modules, and literal os.environ look-ups."""
    names: set[str] = set()
    for path in sorted((REPO / package).rglob("*.py")):
        source = path.read_text()
        tree = ast.parse(source)
        names |= _environ_literals(tree)
        imported: set[str] = set()
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.split(".")[0] in PROJECT_PACKAGES
            ):
                wanted = {alias.name for alias in node.names}
                module_file = REPO / Path(*node.module.split(".")).with_suffix(".py")
                if module_file.exists() and "pydantic_settings" in module_file.read_text():
                    classes = _settings_classes(node.module, wanted)
                    imported |= {cls.__name__ for cls in classes}
                    for cls in classes:
                        names |= settings_env_names(cls)
        defines_settings = "pydantic_settings" in source or any(
            isinstance(node, ast.ClassDef)
            and any(ast.unparse(base) in imported for base in node.bases)
            for node in ast.walk(tree)
        )
        if defines_settings:
            for cls in _settings_classes(_module_name(path)):
                names |= settings_env_names(cls)
    return frozenset(names)


def bentoml_cli_env(subcommand: str) -> set[str]:
    """The env variables a `bentoml <subcommand>` reads through its click options."""
    import click

    with warnings.catch_warnings():  # bentoml's own dependencies warn on import
        warnings.simplefilter("ignore", DeprecationWarning)
        from bentoml_cli.cli import cli

    def walk(cmd: click.Command) -> set[str]:
        names = set()
        for param in cmd.params:
            envvar = getattr(param, "envvar", None)
            names |= {envvar} if isinstance(envvar, str) else set(envvar or ())
        for sub in getattr(cmd, "commands", {}).values():
            names |= walk(sub)
        return names

    assert subcommand in cli.commands, f"bentoml has no `{subcommand}` command"
    return walk(cli.commands[subcommand])


def env_readers(cmd: list[str]) -> tuple[set[str], set[str]]:
    """(project packages, extra env names) that a container command runs / reads.

    `python -m pkg`, `from pkg... import` (python -c) and `bentoml <sub> [pkg.mod:Svc]`
    are recognised; anything else reads nothing we can vouch for.
    """
    text = " ".join(cmd)
    modules = re.findall(r"\bpython3? -m ([\w.]+)", text)
    modules += re.findall(r"\b(?:from|import) ([\w.]+)", text)
    extra: set[str] = set()
    for sub, target in re.findall(r"\bbentoml ([\w-]+)(?: ([\w.]+):\w+)?", text):
        extra |= bentoml_cli_env(sub)
        if target:
            modules.append(target)
    packages = {MODULE_ALIASES.get(m.split(".")[0], m.split(".")[0]) for m in modules}
    return packages & set(PROJECT_PACKAGES), extra


def env_read_by_command(cmd: list[str]) -> set[str]:
    packages, extra = env_readers(cmd)
    names = set(extra)
    for package in packages:
        names |= env_read_by_package(package)
    return names


# --- Dockerfiles and the build context -----------------------------------------------------


def dockerfiles() -> list[Path]:
    return sorted(
        path for path in DOCKER_DIR.rglob("*Dockerfile*") if not path.name.endswith(".dockerignore")
    )


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pending = f"{pending} {stripped.removesuffix(chr(92)).strip()}".strip()
        if stripped.endswith("\\"):
            continue
        keyword, _, args = pending.partition(" ")
        instructions.append((keyword.upper(), " ".join(args.split())))
        pending = ""
    return instructions


def dockerfile_args(path: Path) -> dict[str, str]:
    args = {}
    for keyword, rest in dockerfile_instructions(path):
        if keyword == "ARG" and "=" in rest:
            key, _, value = rest.partition("=")
            args[key] = value.strip("\"'")
    return args


def dockerfile_env(path: Path) -> dict[str, str]:
    env = {}
    for keyword, rest in dockerfile_instructions(path):
        if keyword == "ENV":
            for token in shlex.split(rest):
                if "=" in token:
                    key, _, value = token.partition("=")
                    env[key] = value
    return env


def dockerignore_excludes(relative: str) -> bool:
    """Docker's rules: patterns in order, `!` re-includes, the last match wins;
    a pattern also matches everything below a matching directory."""
    excluded = False
    for raw in DOCKERIGNORE.read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        parts = Path(relative).parts
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        candidates = prefixes + (
            ["/".join(parts[i:]) for i in range(1, len(parts))] if pattern.startswith("**/") else []
        )
        bare = pattern.removeprefix("**/")
        if any(fnmatch(c, pattern) or fnmatch(c, bare) for c in candidates):
            excluded = not negate
    return excluded

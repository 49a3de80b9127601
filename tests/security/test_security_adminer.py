"""Adminer serves Adminer only, as an unprivileged user."""

from __future__ import annotations

import os
import pwd

import httpx
import pytest
from security_facts import process_uid, program_pids

from config.settings import StackSettings

# every other script of Debian's package, and Adminer's own include files
NOT_ADMINER = [
    "/compile.php",
    "/coverage.php",
    "/editor.php",
    "/adminer.php",
    "/lang.php",
    "/editor/index.php",
    "/adminer/sqlite.php",
    "/adminer/designs.php",
    "/adminer/plugin.php",
    "/adminer/include/bootstrap.inc.php",
    "/adminer/select.inc.php",
    "/plugins/plugin.php",
    "/externals/JsShrink/",
    "/adminer/static/../../compile.php",
    "/adminer/static/%2e%2e/%2e%2e/compile.php",
    "/adminer/index.php/../../compile.php",
    "/%63ompile.php",
    "/designs/",
    "/adminer/static/",
    "/nonexistent.php",
]
ASSETS = [
    "/adminer/static/default.css",
    "/adminer/static/functions.js",
    "/adminer/static/editing.js",
    "/adminer/static/favicon.ico",
    "/externals/jush/jush.css",
]


def _base(settings: StackSettings) -> str:
    services = settings.services
    return f"http://{services.adminer_host}:{services.adminer_port}"


@pytest.mark.parametrize("path", NOT_ADMINER)
def test_other_package_scripts_answer_404(stack_ready: StackSettings, path: str) -> None:
    # the raw path, exactly as written: no client-side normalisation of `..`
    with httpx.Client(base_url=_base(stack_ready), timeout=10) as client:
        request = client.build_request("GET", "/")
        request.url = request.url.copy_with(raw_path=path.encode())
        response = client.send(request)
    assert response.status_code == 404, f"{path}: {response.status_code}"


@pytest.mark.parametrize("path", ASSETS)
def test_adminers_own_assets_are_served(stack_ready: StackSettings, path: str) -> None:
    response = httpx.get(f"{_base(stack_ready)}{path}", timeout=10)
    assert response.status_code == 200, path


def test_the_adminer_page_is_served(stack_ready: StackSettings) -> None:
    response = httpx.get(f"{_base(stack_ready)}/", timeout=10, follow_redirects=True)
    assert response.status_code == 200 and 'name="auth[password]"' in response.text


def test_adminer_runs_unprivileged(stack_ready: StackSettings) -> None:
    uid = process_uid(program_pids(stack_ready)["adminer"])
    if os.geteuid() == 0:
        assert uid != 0
        assert pwd.getpwuid(uid).pw_name == stack_ready.adminer_os_user
    else:
        assert uid == os.geteuid()

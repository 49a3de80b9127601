"""The alert rules are valid and each fires on its fault (promtool, Debian's prometheus
package, installed by `make up`): no running stack needed."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.support import promtool

MONITORING = Path(__file__).resolve().parents[2] / "monitoring"


def test_rules_check() -> None:
    result = promtool("check", "rules", "alerts.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_unit_tests() -> None:
    result = promtool("test", "rules", "alerts.test.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test_and_a_runbook() -> None:
    alerts = {
        rule["alert"]
        for group in yaml.safe_load((MONITORING / "alerts.yaml").read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    tested = {
        case["alertname"]
        for test in yaml.safe_load((MONITORING / "alerts.test.yaml").read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    runbook = (MONITORING.parent / "docs" / "monitoring.md").read_text()
    assert alerts - tested == set(), "alerts that no promtool test sees firing"
    assert {a for a in alerts if f"### {a}" not in runbook} == set(), "alerts without a runbook"

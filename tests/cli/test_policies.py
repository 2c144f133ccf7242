"""``gitops-checker policies list|show`` and every pack end to end through ``scan``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from checker.cli import cli
from checker.policy.packs import load_catalog
from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "gitops-repo"


def test_list_shows_packs_policies_severities_and_controls() -> None:
    result = CliRunner().invoke(cli, ["policies", "list"])
    assert result.exit_code == 0, result.output
    out = result.output
    for pack in ("pss-baseline", "pss-restricted [default]", "cis-kubernetes",
                 "nsa-cisa-hardening", "best-practice [default]"):
        assert pack in out
    assert "pss-privileged" in out and "error" in out
    assert "- cis-kubernetes 5.2.2" in out
    assert "bp-replicas" in out and "(off by default)" in out


def test_list_filters_by_standard() -> None:
    result = CliRunner().invoke(cli, ["policies", "list", "--standard", "cis-kubernetes"])
    assert result.exit_code == 0
    assert "cis-rbac-wildcards" in result.output
    assert "pss-apparmor" not in result.output  # no CIS control
    assert "- pss-baseline" not in result.output


def test_list_json_and_pack_filter() -> None:
    result = CliRunner().invoke(cli, ["policies", "list", "--pack", "pss-restricted",
                                      "--format", "json"])
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert [p["name"] for p in data["packs"]] == ["pss-restricted"]
    ids = {p["id"] for p in data["policies"]}
    assert "pss-privileged" in ids and "pss-run-as-user" in ids  # includes baseline
    assert "cis-rbac-wildcards" not in ids


def test_list_unknown_pack_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["policies", "list", "--pack", "nope"])
    assert result.exit_code == 2
    assert "unknown pack 'nope'" in result.output


def test_show_text_and_json() -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["policies", "show", "pss-run-as-non-root"])
    assert result.exit_code == 0
    assert "cis-kubernetes 5.2.7" in result.output
    assert "runAsNonRoot: true" in result.output
    assert "pss-restricted/tests/run-as-non-root/suite.yaml" in result.output
    result = runner.invoke(cli, ["policies", "show", "bp-replicas", "--format", "json"])
    data = json.loads(result.output)
    assert data["enabled_by_default"] is False
    assert data["referential"] is True
    assert data["default_parameters"] == {"minReplicas": 2}
    assert data["docs"] == "docs/policies/bp-replicas.md"


def test_show_unknown_policy() -> None:
    result = CliRunner().invoke(cli, ["policies", "show", "nope"])
    assert result.exit_code == 2
    assert "unknown policy 'nope'" in result.output


@pytest.mark.parametrize("pack", sorted(load_catalog().packs))
def test_every_pack_scans_end_to_end(pack: str, tmp_path: Path) -> None:
    sarif = tmp_path / "out.sarif"
    result = CliRunner().invoke(cli, ["scan", str(EXAMPLE), "--root", str(EXAMPLE),
                                      "--pack", pack, "--format", "json",
                                      "--sarif", str(sarif)])
    assert result.exit_code in (0, 1), result.output
    report = json.loads(result.stdout)
    assert sarif.is_file()
    assert "gitops-checker: error" not in result.output
    assert report["errors"] == []
    ids = set(load_catalog().resolve([pack]))
    found = {str(f["rule"]) for f in _findings(report) if f["category"] == "policy"}
    assert found, "the example repository breaks a rule of every pack"
    assert found <= ids
    assert result.exit_code == 1


def _findings(report: dict[str, Any]) -> list[dict[str, Any]]:
    items = report.get("findings")
    return items if isinstance(items, list) else []


def test_default_scan_of_example_repository() -> None:
    result = CliRunner().invoke(cli, ["scan", str(EXAMPLE), "--root", str(EXAMPLE),
                                      "--policies", str(EXAMPLE / "policies")])
    assert result.exit_code == 1
    out = result.stdout
    assert "[pss-privileged] container node-exporter" in out
    assert "[pss-host-namespaces] pod must not set hostNetwork to true" in out
    assert "infrastructure/monitoring.yaml:24:7" in out
    assert "[image-tag]" in out
    assert "K8sRequiredLabels/workloads-must-have-owner" in out
    assert "[bp-replicas]" not in out  # off by default

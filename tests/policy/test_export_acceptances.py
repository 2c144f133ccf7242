"""`policies export --acceptances`: accepted risks reach Gatekeeper as constraint exclusions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml
from click.testing import CliRunner

from checker.cli import cli

Write = Callable[[str, str], Path]


def test_export_carries_namespace_acceptances_and_names_the_rest(
        write: Write, tmp_path: Path) -> None:
    acceptances = write("acceptances/platform.yaml", """
        acceptances:
          - id: RA-1
            policy: pss-privileged
            resources:
              - namespace: monitoring
            justification: node agents need host access
            owner: team-platform
            ticket: SEC-1
            expires: "2027-06-30"
          - id: RA-2
            policy: pss-privileged
            resources:
              - namespace: cache
                kind: StatefulSet
                name: redis
            justification: vendor image
            owner: team-data
            ticket: SEC-2
            expires: "2027-06-30"
          - id: RA-3
            policy: pss-privileged
            resources:
              - namespace: legacy
            justification: expired long ago
            owner: team-old
            ticket: SEC-3
            expires: "2025-01-01"
          - id: RA-4
            policy: pss-privileged
            resources:
              - cluster: staging
                namespace: sandbox
            justification: staging only
            owner: team-dev
            ticket: SEC-4
            expires: "2027-06-30"
    """)
    out = tmp_path / "export"
    result = CliRunner().invoke(cli, [
        "policies", "export", "--pack", "pss-baseline", "--out", str(out), "--acceptances",
        str(acceptances), "--cluster", "production", "--today", "2026-11-27",
        "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    constraint = yaml.safe_load((out / "constraints" / "pss-privileged.yaml").read_text())
    excluded = constraint["spec"]["match"]["excludedNamespaces"]
    assert "monitoring" in excluded  # namespace-wide and valid: carried over
    assert "legacy" not in excluded  # expired: the cluster must enforce again
    assert "sandbox" not in excluded  # scoped to another cluster
    assert "RA-2" in result.stderr and "cannot exclude objects by kind or name" in result.stderr
    assert "acceptances/platform.yaml" in result.stderr
    other = yaml.safe_load((out / "constraints" / "pss-host-namespaces.yaml").read_text())
    assert "monitoring" not in (other["spec"]["match"].get("excludedNamespaces") or [])


def test_export_without_acceptances_is_unchanged(tmp_path: Path) -> None:
    runner = CliRunner()
    plain, empty = tmp_path / "plain", tmp_path / "empty"
    assert runner.invoke(cli, ["policies", "export", "--pack", "pss-baseline", "--out",
                               str(plain)]).exit_code == 0
    (tmp_path / "none").mkdir()
    assert runner.invoke(cli, ["policies", "export", "--pack", "pss-baseline", "--out",
                               str(empty), "--acceptances", str(tmp_path / "none")]).exit_code == 0
    files = sorted(p.relative_to(plain) for p in plain.rglob("*.yaml"))
    assert files == sorted(p.relative_to(empty) for p in empty.rglob("*.yaml"))
    for rel in files:
        assert (plain / rel).read_text() == (empty / rel).read_text()

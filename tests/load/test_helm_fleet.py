"""A fleet repository in the shape of the official Flux examples, scanned end to end.

``tests/fixtures/helm/fleet`` follows the layout of fluxcd/flux2-kustomize-helm-example
(clusters/<env> with Flux Kustomizations, apps/base with a HelmRepository and a HelmRelease,
apps/<env> overlays patching the release) and of fluxcd/flux2-monitoring-example (a
HelmRelease whose values come from a ``configMapGenerator`` ConfigMap, its name rewritten by a
``nameReference`` configuration). The HelmRepository is served on loopback by the test.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from checker.load import helmfetch
from checker.options import ScanOptions
from checker.pipeline import scan
from tests.conftest import FIXTURES
from tests.load.test_helm_remote import chart_repo as chart_repo

FLEET = FIXTURES / "helm" / "fleet"


@pytest.fixture
def fleet(tmp_path: Path, chart_repo: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "fleet"
    shutil.copytree(FLEET, root)
    for rel in ("apps/base/web/repository.yaml", ".gitops-checker.yaml"):
        path = root / rel
        path.write_text(path.read_text(encoding="utf-8").replace(
            "charts.fleet.test", chart_repo), encoding="utf-8")
    monkeypatch.setenv(helmfetch.CACHE_ENV, str(tmp_path / "cache"))
    return root


def test_staging_privileged_release_is_found_in_staging_only(fleet: Path) -> None:
    with helmfetch.allow_loopback_for_tests():
        report = scan(ScanOptions(paths=(), root=fleet, fail_on=None))
    privileged = sorted((f.cluster, str(f.location), f.resource) for f in report.findings
                        if f.rule_id == "pss-privileged")
    # A value a Kustomize patch sets on the HelmRelease points at the patch's line that sets
    # it (privileged: true in the staging overlay's patch), not at the HelmRelease's document.
    assert privileged == [("staging", "apps/staging/web-values.yaml:12",
                           "Deployment web/web-web")]
    host_network = sorted((f.cluster, str(f.location)) for f in report.findings
                          if f.rule_id == "pss-host-namespaces")
    # the exporter's hostNetwork comes from the generated ConfigMap's values file; it points
    # at the template line that writes it
    assert host_network == [("production", "charts/exporter/templates/daemonset.yaml:14"),
                            ("staging", "charts/exporter/templates/daemonset.yaml:14")]
    assert [f.message for f in report.findings if f.rule_id.startswith("input.")] == []
    rendered = sorted((c.what, c.produced, c.reason.split(" from ")[0]) for c in report.coverage
                      if c.kind == "helm" and c.state == "rendered")
    # production's 1.0.x and staging's >=1.0.0-0 (a pre-release allowed) pick different charts
    assert rendered == [("HelmRelease monitoring/exporter", 1, ""),
                        ("HelmRelease web/web", 3, "chart web 1.0.0"),
                        ("HelmRelease web/web", 3, "chart web 2.0.0-rc.1")]


def test_without_the_host_allowed_the_releases_are_not_checked(fleet: Path) -> None:
    (fleet / ".gitops-checker.yaml").write_text(
        (fleet / ".gitops-checker.yaml").read_text(encoding="utf-8").split("helm:")[0],
        encoding="utf-8")
    with helmfetch.allow_loopback_for_tests():
        report = scan(ScanOptions(paths=(), root=fleet, fail_on=None))
    gaps = sorted((f.cluster, str(f.location), f.severity.label) for f in report.findings
                  if f.rule_id == "input.not-checked")
    # one finding for the file both clusters share (input findings are reported once)
    assert gaps == [("", "apps/base/web/release.yaml:1", "warning")]
    assert sum(1 for c in report.coverage if c.state == "not-checked" and c.kind == "helm") == 1
    assert not any(f.rule_id == "pss-privileged" for f in report.findings)

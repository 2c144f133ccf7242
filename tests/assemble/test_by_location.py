"""One finding per (rule, source location) in the formats a reviewer reads: a base line that
two overlays render is one SARIF result, one JUnit case and one summary row naming both
objects; the JSON report keeps one finding per object.

Real scans of a Kustomize base with overlays (shipped best-practice pack).
"""

from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

from click.testing import CliRunner

from checker import assemble
from checker.cli import cli
from checker.model import Finding, ObjectRef, Report, Rule, Severity, SourceLocation
from checker.report.common import FINGERPRINT
from tests.report.test_fingerprints import DEPLOYMENT


def _repo(root: Path, overlays: tuple[str, ...] = ("dev", "prod")) -> Path:
    (root / "base").mkdir(parents=True, exist_ok=True)
    (root / "base" / "deployment.yaml").write_text(textwrap.dedent(DEPLOYMENT), "utf-8")
    (root / "base" / "kustomization.yaml").write_text("resources:\n  - deployment.yaml\n")
    for overlay in overlays:
        (root / "overlays" / overlay).mkdir(parents=True, exist_ok=True)
        (root / "overlays" / overlay / "kustomization.yaml").write_text(
            f"namespace: {overlay}\nresources:\n  - ../../base\n")
    return root


def _scan(root: Path, fmt: str) -> str:
    out = CliRunner().invoke(cli, ["scan", str(root / "overlays"), "--root", str(root),
                                   "--pack", "best-practice", "--fail-on", "never",
                                   "--format", fmt])
    assert out.exit_code == 0, out.output
    return out.stdout


def test_a_base_line_through_two_overlays_is_one_result_naming_both(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    findings = json.loads(_scan(root, "json"))["findings"]
    assert len(findings) == 10  # the JSON report: one finding per object
    results = [r for run in json.loads(_scan(root, "sarif"))["runs"] for r in run["results"]]
    assert len(results) == 5
    for r in results:
        assert r["properties"]["objects"] == ["apps/v1/Deployment/dev/web",
                                              "apps/v1/Deployment/prod/web"]
        assert r["message"]["text"].endswith("(Deployment dev/web, Deployment prod/web)")
    assert len({r["partialFingerprints"][FINGERPRINT] for r in results}) == 5
    cases = [c for c in ET.fromstring(_scan(root, "junit")).iter("testcase")
             if c.get("file") == "base/deployment.yaml"]
    assert len(cases) == 5
    summary = _scan(root, "markdown")
    rows = [line for line in summary.splitlines() if "`base/deployment.yaml:13`" in line]
    assert len(rows) == 5 and all("Deployment dev/web, Deployment prod/web" in r for r in rows)
    assert "10 findings at 5 source locations" in summary


def test_another_overlay_keeps_the_fingerprints(tmp_path: Path) -> None:
    """The merged result is the first object's finding: an overlay that sorts after it adds
    an object to the result and changes no fingerprint."""
    def prints(root: Path) -> dict[str, str]:
        return {r["message"]["text"].split(" (")[0]: r["partialFingerprints"][FINGERPRINT]
                for run in json.loads(_scan(root, "sarif"))["runs"] for r in run["results"]}

    root = _repo(tmp_path)
    before = prints(root)
    _repo(root, ("dev", "prod", "qa"))
    assert prints(root) == before


def _finding(cluster: str, ns: str, severity: Severity = Severity.ERROR) -> Finding:
    ref = ObjectRef(cluster, "apps", "v1", "Deployment", ns, "web")
    return Finding("demo", "policy", severity, "container app is privileged",
                   SourceLocation("base/deployment.yaml", 13, 11), resource=ref.display,
                   field_path=("spec", "template", "spec", "containers", 0), cluster=cluster,
                   ref=ref)


def test_clusters_severities_and_lines_are_never_merged() -> None:
    """Each cluster has its own SARIF run (an alert closes only in its own category), and a
    different severity or line is a different finding."""
    moved = _finding("a", "y")
    moved = Finding(**{**moved.__dict__, "location": SourceLocation("base/deployment.yaml", 14)})
    findings = [_finding("a", "x"), _finding("a", "y"), _finding("b", "x"),
                _finding("a", "z", Severity.WARNING), moved]
    merged = assemble.by_location(findings)
    assert [(f.cluster, len(f.affects), f.location.line) for f in merged] == [
        ("a", 2, 13), ("b", 0, 13), ("a", 0, 13), ("a", 0, 14)]
    assert merged[0].ref == findings[0].ref and merged[0].resource == (
        "Deployment x/web, Deployment y/web")
    report = assemble.assemble(Report(findings=tuple(findings), rules={
        "demo": Rule("demo", "Demo", Severity.ERROR)}, resources_checked=5, files_checked=1))
    assert len(assemble.located(report)) == 4
    assert len(report.findings) == 5  # the report itself keeps every object's finding
